/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer: the /proc parsers: maps, stat, status, cmdline and cgroup, each fed the same
 * input, and the labels of the cgroup path. Nothing may crash; what parses holds together (a
 * mapping ends after it starts, a cgroup path is absolute and bounded, labels are names).
 *
 *   fuzz-procfs -max_total_time=60 CORPUS_DIR tests/fuzz/corpus/procfs
 */
#include <stdio.h>
#include <stdlib.h>

#include "base/cgroup.h"
#include "base/macro.h"
#include "base/procfs.h"

#define CHECK(cond)                                                                              \
	do {                                                                                     \
		if (!(cond)) {                                                                   \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
			abort();                                                                 \
		}                                                                                \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	_cleanup_free_ char *text = malloc(size + 1);
	_cleanup_free_ char *cgroup = NULL;
	ProcMap *maps = NULL;
	CgroupLabels labels;
	size_t n = 0, bad = 0;
	ProcStatus status;
	ProcStat st;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';

	if (procfs_parse_maps((const char *)data, size, &maps, &n, &bad) == 0) {
		for (size_t i = 0; i < n; i++)
			CHECK(maps[i].start < maps[i].end);
		procfs_maps_free(maps, n);
	}
	/* The string parsers read up to the first NUL, as they do with a file's copy. */
	if (procfs_parse_stat(text, &st) == 0)
		CHECK(st.comm[sizeof(st.comm) - 1] == '\0');
	(void)procfs_parse_status(text, &status);
	if (cgroup_parse_proc((const char *)data, size, &cgroup) == 0) {
		CHECK(cgroup[0] == '/' && strlen(cgroup) < CGROUP_PATH_MAX);
		cgroup_labels(cgroup, &labels);
		CHECK(!strchr(labels.unit, '/') && !strchr(labels.slice, '/'));
		CHECK(!labels.container[0] || strlen(labels.container) == CGROUP_CONTAINER_ID_LEN);
	}
	free(cgroup);
	cgroup = NULL;
	if (cgroup_parse_mountinfo((const char *)data, size, &cgroup) == 0)
		CHECK(cgroup[0] == '/' && strlen(cgroup) < CGROUP_PATH_MAX);
	/* Any string as a path, too (the store's, loaded from a segment). */
	cgroup_labels(text, &labels);
	memcpy(text, data, size);
	procfs_cmdline_to_string(text, size);
	CHECK(strlen(text) <= size);
	return 0;
}
