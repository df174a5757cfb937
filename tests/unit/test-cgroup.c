/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "base/cgroup.h"
#include "base/macro.h"

#define ID64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/* Parses text from an exact-size heap copy (no NUL after it), so ASan sees any overread. */
static int parse(const char *text, char **ret)
{
	size_t len = strlen(text);
	_cleanup_free_ char *copy = malloc(MAX(len, (size_t)1));

	assert_non_null(copy);
	memcpy(copy, text, len);
	return cgroup_parse_proc(copy, len, ret);
}

static void expect_path(const char *text, const char *path)
{
	_cleanup_free_ char *p = NULL;

	assert_int_equal(parse(text, &p), 0);
	assert_string_equal(p, path);
}

static void test_parse(void **state)
{
	char *p = NULL;

	(void)state;
	/* Hybrid: the v2 line wins over name=systemd, wherever it is. */
	expect_path("12:pids:/a\n1:name=systemd:/user.slice/x.scope\n0::/system.slice/b.service\n",
		    "/system.slice/b.service");
	expect_path("0::/system.slice/b.service\n1:name=systemd:/user.slice/x.scope\n",
		    "/system.slice/b.service");
	/* v1 only: systemd's hierarchy, not a controller's. */
	expect_path("4:memory:/m\n9:name=systemd:/system.slice/nginx.service\n3:cpu:/c",
		    "/system.slice/nginx.service");
	/* A path may hold colons; a removed cgroup's suffix goes. */
	expect_path("0::/a:b/c.scope (deleted)\n", "/a:b/c.scope");
	expect_path("0::/\n", "/");
	/* Neither hierarchy: -ENOENT; broken lines and paths: -EINVAL. */
	assert_int_equal(parse("4:memory:/m\n", &p), -ENOENT);
	assert_int_equal(parse("", &p), -ENOENT);
	assert_int_equal(parse("0:/x\n", &p), -EINVAL);
	assert_int_equal(parse("0::relative\n", &p), -EINVAL);
	assert_int_equal(parse("0::\n", &p), -EINVAL);
	assert_null(p);
}

static void test_parse_bounds(void **state)
{
	_cleanup_free_ char *big = malloc(CGROUP_PATH_MAX + 16);
	char *p = NULL;

	(void)state;
	assert_non_null(big);
	memcpy(big, "0::/", 4);
	memset(big + 4, 'a', CGROUP_PATH_MAX);
	big[CGROUP_PATH_MAX + 4] = '\0';
	assert_int_equal(parse(big, &p), -ENAMETOOLONG);
	/* A NUL inside the chosen path. */
	assert_int_equal(cgroup_parse_proc("0::/a\0b\n", 8, &p), -EINVAL);
	assert_null(p);
}

static void test_self(void **state)
{
	_cleanup_free_ char *p = NULL;

	(void)state;
	/* Every Linux with cgroups has one of the two lines for every process. */
	assert_int_equal(cgroup_read_pid(getpid(), &p), 0);
	assert_true(p[0] == '/');
}

static void expect_labels(const char *path, const char *unit, const char *slice,
			  const char *container)
{
	CgroupLabels l;

	cgroup_labels(path, &l);
	assert_string_equal(l.unit, unit);
	assert_string_equal(l.slice, slice);
	assert_string_equal(l.container, container);
}

static void test_labels(void **state)
{
	(void)state;
	expect_labels("/system.slice/nginx.service", "nginx.service", "system.slice", "");
	expect_labels("/user.slice/user-1000.slice/session-3.scope", "session-3.scope",
		      "user-1000.slice", "");
	expect_labels("/user.slice/user-1000.slice/user@1000.service", "user@1000.service",
		      "user-1000.slice", "");
	/* The innermost unit, and its own slice: a user manager's units. */
	expect_labels("/user.slice/user-1000.slice/user@1000.service/app.slice/foo.service",
		      "foo.service", "app.slice", "");
	expect_labels("/user.slice/user-1000.slice/user@1000.service/init.scope", "init.scope",
		      "user-1000.slice", "");
	/* A sub-cgroup of a unit still belongs to it. */
	expect_labels("/system.slice/postgresql.service/workers", "postgresql.service",
		      "system.slice", "");
	expect_labels("/machine.slice", "", "machine.slice", "");
	expect_labels("/", "", "", "");
	expect_labels("", "", "", "");
	expect_labels("//", "", "", "");
	expect_labels("/.service", "", "", "");
}

static void test_containers(void **state)
{
	(void)state;
	expect_labels("/system.slice/docker-" ID64 ".scope", "docker-" ID64 ".scope",
		      "system.slice", ID64);
	expect_labels("/docker/" ID64, "", "", ID64);
	expect_labels("/kubepods.slice/kubepods-burstable.slice/"
		      "kubepods-burstable-pod1a2b.slice/cri-containerd-" ID64 ".scope",
		      "cri-containerd-" ID64 ".scope", "kubepods-burstable-pod1a2b.slice", ID64);
	expect_labels("/kubepods/besteffort/pod1a2b-3c4d/" ID64, "", "", ID64);
	expect_labels("/machine.slice/libpod-" ID64 ".scope/container", "libpod-" ID64 ".scope",
		      "machine.slice", ID64);
	expect_labels("/libpod_parent/libpod-" ID64, "", "", ID64);
	expect_labels("/system.slice/crio-" ID64 ".scope", "crio-" ID64 ".scope", "system.slice",
		      ID64);
	/* Not ids: the wrong length, upper case, a 64-hex name under an unknown parent. */
	expect_labels("/docker/" ID64 "0", "", "", "");
	expect_labels("/docker/0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
		      "", "", "");
	expect_labels("/data/" ID64, "", "", "");
	expect_labels("/system.slice/libpod-conmon-" ID64 ".scope", "libpod-conmon-" ID64 ".scope",
		      "system.slice", "");
}

static void test_labels_long(void **state)
{
	char path[CGROUP_PATH_MAX + 400];
	CgroupLabels l;

	(void)state;
	/* A unit name longer than any systemd makes: no label, no overflow. */
	path[0] = '/';
	memset(path + 1, 'x', 300);
	memcpy(path + 301, ".service", 9);
	cgroup_labels(path, &l);
	assert_string_equal(l.unit, "");
	/* Past CGROUP_PATH_MAX nothing is read. */
	memset(path, '/', sizeof(path) - 1);
	path[sizeof(path) - 1] = '\0';
	memcpy(path + CGROUP_PATH_MAX + 10, "a.service", 9);
	cgroup_labels(path, &l);
	assert_string_equal(l.unit, "");
}

/* As parse(), for mountinfo. */
static int parse_mountinfo(const char *text, char **ret)
{
	size_t len = strlen(text);
	_cleanup_free_ char *copy = malloc(MAX(len, (size_t)1));

	assert_non_null(copy);
	memcpy(copy, text, len);
	return cgroup_parse_mountinfo(copy, len, ret);
}

static void test_mountinfo(void **state)
{
	char *p = NULL;

	(void)state;
	{
		static const char text[] = "22 1 0:21 / /sys rw shared:7 - sysfs sysfs rw\n"
					   "35 22 0:30 / /sys/fs/cgroup/unified rw,nosuid "
					   "shared:10 - cgroup2 cgroup2 rw\n"
					   "36 22 0:31 / /sys/fs/cgroup/systemd rw - cgroup "
					   "cgroup rw,name=systemd\n";
		_cleanup_free_ char *m = NULL;

		assert_int_equal(cgroup_parse_mountinfo(text, sizeof(text) - 1, &m), 0);
		assert_string_equal(m, "/sys/fs/cgroup/unified");
	}
	/* Optional fields before the separator; the separator's fields in the wrong place. */
	assert_int_equal(parse_mountinfo("1 2 3:4 / /x rw - ext4 /dev/sda rw\n", &p), -ENOENT);
	assert_int_equal(parse_mountinfo("1 2 3:4 / /a\\040b rw - cgroup2 none rw\n", &p), -EINVAL);
	assert_int_equal(parse_mountinfo("1 2 - cgroup2\n", &p), -ENOENT);
	assert_int_equal(parse_mountinfo("", &p), -ENOENT);
	assert_null(p);
}

typedef struct Found {
	uint64_t want;
	char path[CGROUP_PATH_MAX];
	size_t dirs;
	bool root_first;
} Found;

static int on_cgroup(void *userdata, uint64_t id, const char *path)
{
	Found *f = userdata;

	if (f->dirs++ == 0)
		f->root_first = streq(path, "/");
	if (id == f->want)
		snprintf(f->path, sizeof(f->path), "%s", path);
	return 0;
}

/* The walk names this process's own cgroup by the inode of its directory, as /proc/self/cgroup
 * names it (where the host mounts v2). */
static void test_walk(void **state)
{
	_cleanup_free_ char *mount = NULL, *self = NULL, *dir = NULL;
	Found f = { 0 };
	struct stat st;

	(void)state;
	if (cgroup_v2_mount(&mount) < 0) {
		skip();
		return;
	}
	assert_int_equal(cgroup_read_pid(getpid(), &self), 0);
	assert_true(asprintf(&dir, "%s%s", mount, streq(self, "/") ? "" : self) > 0);
	if (stat(dir, &st) < 0) {
		skip(); /* the v2 line names another hierarchy's path (a v1-only host) */
		return;
	}
	f.want = (uint64_t)st.st_ino;
	assert_int_equal(cgroup_walk(mount, on_cgroup, &f), 0);
	assert_true(f.root_first);
	assert_string_equal(f.path, self);
	assert_int_equal(cgroup_walk("/nonexistent-profq", on_cgroup, &f), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),	   cmocka_unit_test(test_parse_bounds),
		cmocka_unit_test(test_self),	   cmocka_unit_test(test_labels),
		cmocka_unit_test(test_containers), cmocka_unit_test(test_labels_long),
		cmocka_unit_test(test_mountinfo),  cmocka_unit_test(test_walk),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
