/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <cmocka.h>

#include "base/macro.h"
#include "symbolize/mounts.h"

typedef struct Seen {
	uint32_t major[16], minor[16];
	bool fuse[16];
	size_t n;
} Seen;

static void seen_add(void *userdata, uint32_t major, uint32_t minor, bool fuse)
{
	Seen *s = userdata;

	assert_true(s->n < ARRAY_SIZE(s->major));
	s->major[s->n] = major;
	s->minor[s->n] = minor;
	s->fuse[s->n++] = fuse;
}

/* Parses text from an exact-size heap copy (no NUL after it), so ASan sees any overread. */
static void parse(const char *text, Seen *s)
{
	size_t len = strlen(text);
	_cleanup_free_ char *copy = malloc(MAX(len, (size_t)1));

	assert_non_null(copy);
	memcpy(copy, text, len);
	*s = (Seen){ 0 };
	mounts_parse(copy, len, seen_add, s);
}

static void test_parse(void **state)
{
	static const char text[] =
		"27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
		"40 27 0:45 / /home/u/mnt rw,nosuid,nodev shared:12 master:3 - fuse.sshfs "
		"u@host:/ rw,user_id=1000,group_id=1000\n"
		"41 27 0:46 / /media/x rw - fuse /dev/fuse rw,user_id=0\n"
		"42 27 8:17 / /media/ntfs rw - fuseblk /dev/sdb1 rw,user_id=0\n"
		"43 27 0:47 / /run/user/1000 rw - tmpfs tmpfs rw\n"
		"44 27 0:48 / /x rw - fusectl fusectl rw\n" /* not a FUSE file system */
		/* malformed: no separator, a bad device, short; a "-" root is no separator */
		"45 27 0:49 / /y rw fuse\n"
		"46 27 a:b / /z rw - fuse x rw\n"
		"47 27 0:50 - / rw - fuse x rw\n"
		"48 27\n"
		"\n"
		"49 27 0:51 / /last rw - fuse.bindfs x rw"; /* no newline at the end */
	Seen s;

	(void)state;
	parse(text, &s);
	assert_int_equal(s.n, 8);
	assert_true(s.major[0] == 254 && s.minor[0] == 0 && !s.fuse[0]);
	assert_true(s.major[1] == 0 && s.minor[1] == 45 && s.fuse[1]);
	assert_true(s.minor[2] == 46 && s.fuse[2]);
	assert_true(s.major[3] == 8 && s.minor[3] == 17 && s.fuse[3]);
	assert_true(s.minor[4] == 47 && !s.fuse[4]);
	assert_true(s.minor[5] == 48 && !s.fuse[5]);
	assert_true(s.minor[6] == 50 && s.fuse[6]);
	assert_true(s.minor[7] == 51 && s.fuse[7]);
	parse("", &s);
	assert_int_equal(s.n, 0);
}

/* This process's own mounts: the file system of / is readable; an anonymous device that no
 * table lists is refused unless the FUSE control file system says it is not FUSE. */
static void test_check_self(void **state)
{
	_cleanup_(mounts_freep) Mounts *m = NULL;
	MountsStats st;
	struct stat root;

	(void)state;
	assert_int_equal(mounts_new(&m), 0);
	assert_int_equal(stat("/", &root), 0);
	assert_int_equal(mounts_check(m, getpid(), major(root.st_dev), minor(root.st_dev), 1), 0);
	mounts_stats(m, &st);
	assert_int_equal(st.tables_read, 1);
	assert_int_equal(st.namespaces, 1);
	/* Known now: not read again. */
	assert_int_equal(mounts_check(m, getpid(), major(root.st_dev), minor(root.st_dev), 2), 0);
	mounts_stats(m, &st);
	assert_int_equal(st.tables_read, 1);
	/* Unlisted: read again once a second at most. The control file system is not mounted in
	 * the test environments (no FUSE connection could tell): refused. */
	assert_int_equal(mounts_check(m, getpid(), 0, 0xfffff, 3), -EREMOTE);
	mounts_stats(m, &st);
	assert_int_equal(st.tables_read, 1); /* within a second of the last read */
	assert_int_equal(mounts_check(m, getpid(), 0, 0xfffff, 2 * NSEC_PER_SEC), -EREMOTE);
	mounts_stats(m, &st);
	assert_int_equal(st.tables_read, 2);
	assert_int_equal(st.refused, 2);
	/* A real block device no table lists: allowed. */
	assert_int_equal(mounts_check(m, getpid(), 259, 4242, 3 * NSEC_PER_SEC), 0);
	/* A process that is gone: anonymous devices refused, real ones allowed. */
	assert_int_equal(mounts_check(m, 0x3fffffff, 0, 45, 4 * NSEC_PER_SEC), -EREMOTE);
	assert_int_equal(mounts_check(m, 0x3fffffff, 254, 0, 4 * NSEC_PER_SEC), 0);
	assert_true(mounts_memory(m) >= sizeof(void *));
}

/*
 * Opening a file of a process's root: found through real directories only, never through a
 * symbolic link (file or directory), never above the root.
 */
static void test_open_in_root(void **state)
{
	_cleanup_(mounts_freep) Mounts *m = NULL;
	_cleanup_free_ char *dir = NULL, *sub = NULL, *file = NULL, *link = NULL, *dlink = NULL;
	char rel[PATH_MAX];
	int fd;

	(void)state;
	assert_int_equal(mounts_new(&m), 0);
	assert_true(asprintf(&dir, "/tmp/profq-test-mounts-%d", (int)getpid()) > 0);
	assert_true(asprintf(&sub, "%s/sub", dir) > 0);
	assert_true(asprintf(&file, "%s/sub/f", dir) > 0);
	assert_true(asprintf(&link, "%s/sub/l", dir) > 0);
	assert_true(asprintf(&dlink, "%s/dl", dir) > 0);
	assert_int_equal(mkdir(dir, 0700), 0);
	assert_int_equal(mkdir(sub, 0700), 0);
	fd = open(file, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(symlink(file, link), 0);
	assert_int_equal(symlink(sub, dlink), 0);

	snprintf(rel, sizeof(rel), "%s/sub", dir + 1);
	fd = mounts_open_in_root(m, getpid(), rel, "f", O_RDONLY, 1);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(mounts_open_in_root(m, getpid(), rel, "l", O_RDONLY, 1), -ELOOP);
	assert_int_equal(mounts_open_in_root(m, getpid(), rel, "nope", O_RDONLY, 1), -ENOENT);
	snprintf(rel, sizeof(rel), "%s/dl", dir + 1);
	assert_int_equal(mounts_open_in_root(m, getpid(), rel, "f", O_RDONLY, 1), -ELOOP);
	assert_int_equal(mounts_open_in_root(m, getpid(), "..", "etc", O_RDONLY, 1), -EXDEV);

	unlink(link);
	unlink(dlink);
	unlink(file);
	rmdir(sub);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_check_self),
		cmocka_unit_test(test_open_in_root),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
