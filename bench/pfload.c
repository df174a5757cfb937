/* SPDX-License-Identifier: MIT */
/*
 * pfload: loads a BPF object file, attaches its programs (tp_btf), runs a command, and prints
 * each program's run_cnt and ns per run (kernel.bpf_stats_enabled must be 1) and the first
 * 24 bytes of its .bss summed over 1024 slots of 24 bytes (the counters of
 * bench/variants/pfuser.bpf.c).
 *
 *   pfload OBJ.o COMMAND [ARGS...]
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct bpf_object *obj;
	struct bpf_program *prog;
	struct bpf_map *bss;
	pid_t pid;
	int status;

	if (argc < 3) {
		fprintf(stderr, "usage: pfload OBJ.o COMMAND [ARGS...]\n");
		return 2;
	}
	obj = bpf_object__open_file(argv[1], NULL);
	if (!obj || bpf_object__load(obj) < 0) {
		fprintf(stderr, "cannot load %s\n", argv[1]);
		return 1;
	}
	bpf_object__for_each_program(prog, obj) if (!bpf_program__attach(prog))
	{
		fprintf(stderr, "cannot attach %s\n", bpf_program__name(prog));
		return 1;
	}
	pid = fork();
	if (pid == 0) {
		execvp(argv[2], argv + 2);
		_exit(127);
	}
	waitpid(pid, &status, 0);
	bpf_object__for_each_program(prog, obj)
	{
		struct bpf_prog_info info = { 0 };
		__u32 len = sizeof(info);

		bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len);
		printf("%s run_cnt=%llu ns/run=%.1f\n", bpf_program__name(prog),
		       (unsigned long long)info.run_cnt,
		       info.run_cnt ? (double)info.run_time_ns / info.run_cnt : 0.0);
	}
	bss = bpf_object__find_map_by_name(obj, ".bss");
	if (bss) {
		static unsigned long long v[1024 * 3];
		unsigned long long s[3] = { 0 };
		__u32 zero = 0;

		if (bpf_map_lookup_elem(bpf_map__fd(bss), &zero, v) == 0) {
			for (int i = 0; i < 1024; i++)
				for (int j = 0; j < 3; j++)
					s[j] += v[3 * i + j];
			printf("counters %llu %llu %llu\n", s[0], s[1], s[2]);
		}
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
