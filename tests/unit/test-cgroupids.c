/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "base/cgroup.h"
#include "base/macro.h"
#include "process/cgroupids.h"

/* This process's cgroup as /proc names it, and its id (the inode of its directory): skips the
 * test where the host has no v2 hierarchy that holds it. */
static bool own_cgroup(char **ret_path, uint64_t *ret_id)
{
	_cleanup_free_ char *mount = NULL, *dir = NULL;
	char *self = NULL;
	struct stat st;

	if (cgroup_v2_mount(&mount) < 0 || cgroup_read_pid(getpid(), &self) < 0)
		return false;
	if (asprintf(&dir, "%s%s", mount, streq(self, "/") ? "" : self) < 0 || stat(dir, &st) < 0) {
		free(self);
		return false;
	}
	*ret_path = self;
	*ret_id = (uint64_t)st.st_ino;
	return true;
}

/* The id of this process's cgroup names its path, by the kernel's lookup or a walk (whichever
 * this process may use); ids that name nothing name nothing. */
static void test_own(void **state)
{
	_cleanup_(cgroup_ids_freep) CgroupIds *c = NULL;
	_cleanup_free_ char *self = NULL;
	CgroupIdsStats st;
	uint64_t id;
	const char *path;

	(void)state;
	if (!own_cgroup(&self, &id)) {
		skip();
		return;
	}
	assert_int_equal(cgroup_ids_new(&c), 0);
	path = cgroup_ids_path(c, id, 1);
	assert_non_null(path);
	assert_string_equal(path, self);
	/* Again: from the table, no new lookup. */
	cgroup_ids_stats(c, &st);
	assert_string_equal(cgroup_ids_path(c, id, 2), self);
	{
		CgroupIdsStats again;

		cgroup_ids_stats(c, &again);
		assert_int_equal(again.by_handle, st.by_handle);
		assert_int_equal(again.walks, st.walks);
	}
	assert_null(cgroup_ids_path(c, 0, 3));
	assert_null(cgroup_ids_path(c, UINT64_MAX - 1, 4));
	cgroup_ids_stats(c, &st);
	assert_true(st.misses >= 1);
	assert_true(st.memory > 0 && st.memory <= CGROUP_IDS_MAX_MEMORY);
}

/* A cgroup made and removed: known while it is there, gone after (root only). */
static void test_removed(void **state)
{
	_cleanup_(cgroup_ids_freep) CgroupIds *c = NULL;
	_cleanup_free_ char *mount = NULL, *dir = NULL, *want = NULL;
	struct stat st;

	(void)state;
	if (geteuid() != 0 || cgroup_v2_mount(&mount) < 0) {
		skip();
		return;
	}
	assert_true(asprintf(&want, "/profq-unit-%d.scope", (int)getpid()) > 0);
	assert_true(asprintf(&dir, "%s%s", mount, want) > 0);
	if (mkdir(dir, 0755) < 0) {
		skip(); /* a read-only cgroup file system */
		return;
	}
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(cgroup_ids_new(&c), 0);
	assert_string_equal(cgroup_ids_path(c, (uint64_t)st.st_ino, 1), want);
	assert_int_equal(rmdir(dir), 0);
	/* Known from the table still (a process's cgroup outlives it in its record). */
	assert_string_equal(cgroup_ids_path(c, (uint64_t)st.st_ino, 2), want);
	/* A new table does not find it. */
	cgroup_ids_free(TAKE_PTR(c));
	assert_int_equal(cgroup_ids_new(&c), 0);
	assert_null(cgroup_ids_path(c, (uint64_t)st.st_ino, 3));
}

/* In a child without privileges: open_by_handle_at() is refused, and a walk names the id. */
static int unprivileged_lookup(uint64_t id, const char *want)
{
	CgroupIds *c = NULL;
	CgroupIdsStats st;
	const char *path;
	bool ok;

	if (setgid(65534) < 0 || setuid(65534) < 0 || cgroup_ids_new(&c) < 0)
		return 2;
	path = cgroup_ids_path(c, id, 1);
	cgroup_ids_stats(c, &st);
	ok = path && streq(path, want) && st.by_handle == 0 && st.walks == 1;
	/* A second miss within the interval walks no more. */
	(void)cgroup_ids_path(c, UINT64_MAX - 1, 2);
	cgroup_ids_stats(c, &st);
	ok = ok && st.walks == 1;
	cgroup_ids_free(c);
	return ok ? 0 : 1;
}

static void test_walk_fallback(void **state)
{
	_cleanup_free_ char *self = NULL;
	uint64_t id;
	int status;
	pid_t pid;

	(void)state;
	if (geteuid() != 0 || !own_cgroup(&self, &id)) {
		skip();
		return;
	}
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(unprivileged_lookup(id, self));
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_own),
		cmocka_unit_test(test_removed),
		cmocka_unit_test(test_walk_fallback),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
