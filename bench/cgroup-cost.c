/* SPDX-License-Identifier: MIT */
/*
 * profq-bench-cgroup: what naming a process's cgroup costs profqd (docs/PERFORMANCE.md,
 * "Process labels"): reading and parsing /proc/PID/cgroup with the labels of its path, once per
 * new process and exec; and for a process already gone, a cgroup id to its path, by the
 * kernel's handle lookup (one per new id) or by a walk of the v2 hierarchy.
 *
 *   profq-bench-cgroup [--reads N] [--cgroups K]
 *
 * Needs root for the second part: it makes K cgroups under the v2 mount (removed at exit).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/cgroup.h"
#include "base/macro.h"
#include "process/cgroupids.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int count_cgroup(void *userdata, uint64_t id, const char *path)
{
	(void)id, (void)path;
	(*(size_t *)userdata)++;
	return 0;
}

static void proc_reads(unsigned reads)
{
	double t0 = now_s();

	for (unsigned i = 0; i < reads; i++) {
		_cleanup_free_ char *path = NULL;
		CgroupLabels l;

		if (cgroup_read_pid(getpid(), &path) < 0) {
			fprintf(stderr, "cannot read /proc/self/cgroup\n");
			exit(1);
		}
		cgroup_labels(path, &l);
	}
	printf("/proc/PID/cgroup read, parsed, labels: %.2f us each (%u reads)\n",
	       (now_s() - t0) / reads * 1e6, reads);
}

/* Makes k cgroups under mount/profq-bench-PID.slice; their ids into ids. */
static int make_cgroups(const char *mount, unsigned k, char *base, size_t len, uint64_t *ids)
{
	char path[512];
	struct stat st;

	snprintf(base, len, "%s/profq-bench-%d.slice", mount, (int)getpid());
	if (mkdir(base, 0755) < 0)
		return -errno;
	for (unsigned i = 0; i < k; i++) {
		snprintf(path, sizeof(path), "%s/u%u.service", base, i);
		if (mkdir(path, 0755) < 0 || stat(path, &st) < 0)
			return -errno;
		ids[i] = (uint64_t)st.st_ino;
	}
	return 0;
}

static void remove_cgroups(const char *base, unsigned k)
{
	char path[512];

	for (unsigned i = 0; i < k; i++) {
		snprintf(path, sizeof(path), "%s/u%u.service", base, i);
		rmdir(path);
	}
	rmdir(base);
}

static void id_lookups(unsigned k)
{
	_cleanup_free_ uint64_t *ids = calloc(k, sizeof(uint64_t));
	_cleanup_free_ char *mount = NULL;
	CgroupIds *c = NULL;
	CgroupIdsStats st;
	char base[256];
	size_t n = 0;
	double t0;

	if (!ids || cgroup_v2_mount(&mount) < 0) {
		printf("no cgroup v2 hierarchy: no id lookups\n");
		return;
	}
	if (make_cgroups(mount, k, base, sizeof(base), ids) < 0) {
		printf("cannot make cgroups under %s (root?): no id lookups\n", mount);
		remove_cgroups(base, k);
		return;
	}
	if (cgroup_ids_new(&c) < 0)
		goto out;
	t0 = now_s();
	for (unsigned i = 0; i < k; i++)
		if (!cgroup_ids_path(c, ids[i], 0)) {
			printf("id %u not found\n", i);
			break;
		}
	cgroup_ids_stats(c, &st);
	printf("id -> path, each new: %.2f us each (%u ids; by handle %llu, walks %llu)\n",
	       (now_s() - t0) / k * 1e6, k, (unsigned long long)st.by_handle,
	       (unsigned long long)st.walks);
	t0 = now_s();
	for (unsigned r = 0; r < 10; r++) {
		n = 0;
		cgroup_walk(mount, count_cgroup, &n);
	}
	printf("walk of the v2 hierarchy: %.2f ms (%zu cgroups)\n", (now_s() - t0) / 10 * 1e3, n);
	cgroup_ids_free(c);
out:
	remove_cgroups(base, k);
}

int main(int argc, char **argv)
{
	static const struct option options[] = { { "reads", required_argument, NULL, 'r' },
						 { "cgroups", required_argument, NULL, 'k' },
						 {} };
	unsigned reads = 20000, k = 300;
	int c;

	while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0) {
		if (c == 'r')
			reads = (unsigned)strtoul(optarg, NULL, 10);
		else if (c == 'k')
			k = (unsigned)strtoul(optarg, NULL, 10);
		else
			return 2;
	}
	if (reads == 0 || k == 0 || k > 10000)
		return 2;
	proc_reads(reads);
	id_lookups(k);
	return 0;
}
