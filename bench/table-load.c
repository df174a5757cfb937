/* SPDX-License-Identifier: MIT */
/*
 * profq-bench-tables: what reading a binary's symbol table and unwind tables costs profqd's
 * main loop, where they are read (daemon/symbolize/elfsym.c, daemon/unwind/cfi.c): for each
 * BINARY, the CPU time of elfsym_load_fd() and of cfi_load_fd() on the open file, the median of
 * --runs fresh loads (page cache warm after the first), and what each keeps.
 *
 *   profq-bench-tables [--runs N] BINARY...
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/macro.h"
#include "symbolize/elfsym.h"
#include "unwind/cfi.h"

#define RUNS_MAX 101

static double cpu_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(double), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
	static const struct option options[] = { { "runs", required_argument, NULL, 'r' },
						 { NULL, 0, NULL, 0 } };
	int runs = 9, c;

	while ((c = getopt_long(argc, argv, "r:", options, NULL)) != -1) {
		if (c != 'r' || (runs = atoi(optarg)) < 1 || runs > RUNS_MAX) {
			fprintf(stderr, "usage: %s [--runs 1..%d] BINARY...\n", argv[0], RUNS_MAX);
			return 2;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "usage: %s [--runs 1..%d] BINARY...\n", argv[0], RUNS_MAX);
		return 2;
	}
	printf("%-40s %10s %9s %10s %9s %10s %10s\n", "binary", "MiB", "symbols", "symtab_ms",
	       "cfi_ms", "sym_KiB", "cfi_KiB");
	for (int i = optind; i < argc; i++) {
		double sym_ms[RUNS_MAX], cfi_ms[RUNS_MAX];
		size_t symbols = 0, sym_mem = 0, cfi_mem = 0;
		struct stat st;
		int fd = open(argv[i], O_RDONLY | O_CLOEXEC), r = 0;

		if (fd < 0 || fstat(fd, &st) < 0) {
			fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
			return 1;
		}
		for (int k = 0; k < runs && r >= 0; k++) {
			ElfSym *e = NULL;
			Cfi *cfi = NULL;
			double t0 = cpu_ms(), t1, t2;

			r = elfsym_load_fd(fd, &e);
			t1 = cpu_ms();
			/* Optional, as in profqd: a binary without unwind tables costs nothing. */
			(void)cfi_load_fd(fd, &cfi);
			t2 = cpu_ms();
			sym_ms[k] = t1 - t0;
			cfi_ms[k] = t2 - t1;
			symbols = e ? elfsym_count(e) : 0;
			sym_mem = e ? elfsym_memory(e) : 0;
			cfi_mem = cfi ? cfi_memory(cfi) : 0;
			elfsym_freep(&e);
			cfi_freep(&cfi);
		}
		close(fd);
		if (r < 0) {
			fprintf(stderr, "%s: %s\n", argv[i], strerror(-r));
			return 1;
		}
		printf("%-40s %10.1f %9zu %10.2f %9.2f %10zu %10zu\n", argv[i],
		       (double)st.st_size / (1 << 20), symbols, median(sym_ms, runs),
		       median(cfi_ms, runs), sym_mem >> 10, cfi_mem >> 10);
	}
	return 0;
}
