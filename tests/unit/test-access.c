/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "base/macro.h"
#include "service/access.h"

/* Who is privileged (profqd(8), ACCESS CONTROL): root, the group (primary or supplementary),
 * CAP_SYS_PTRACE. */
static void test_privileged(void **state)
{
	Peer p = { .cred = { .pid = 1, .uid = 1000, .gid = 1000 } };

	(void)state;
	assert_false(peer_privileged(&p, false, 0));
	assert_false(peer_privileged(&p, true, 500));
	/* Supplementary group. */
	p.groups[0] = 27;
	p.groups[1] = 500;
	p.n_groups = 2;
	assert_true(peer_in_group(&p, 500));
	assert_true(peer_privileged(&p, true, 500));
	/* Without a configured group, membership of gid 500 means nothing. */
	assert_false(peer_privileged(&p, false, 500));
	/* Primary group. */
	p.n_groups = 0;
	p.cred.gid = 500;
	assert_true(peer_privileged(&p, true, 500));
	p.cred.gid = 1000;
	assert_false(peer_privileged(&p, true, 500));
	p.cap_sys_ptrace = true;
	assert_true(peer_privileged(&p, false, 0));
	p = (Peer){ .cred = { .uid = 0, .gid = 1234 } };
	assert_true(peer_privileged(&p, false, 0));
}

static void test_paranoid(void **state)
{
	(void)state;
	assert_true(access_paranoid_allows_kernel("-1\n"));
	assert_true(access_paranoid_allows_kernel("0\n"));
	assert_true(access_paranoid_allows_kernel("1\n"));
	assert_false(access_paranoid_allows_kernel("2\n"));
	assert_false(access_paranoid_allows_kernel("4\n"));
	assert_false(access_paranoid_allows_kernel(""));
	assert_false(access_paranoid_allows_kernel("1x"));
	assert_false(access_paranoid_allows_kernel("99999999999999999999999"));
}

/* A real socket pair: the peer is this process, with its groups. */
static void test_from_socket(void **state)
{
	_cleanup_close_ int a = -1, b = -1;
	int sv[2];
	gid_t groups[PEER_GROUPS_MAX];
	int n;
	Peer p;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	a = sv[0];
	b = sv[1];
	assert_int_equal(peer_from_socket(a, &p), 0);
	assert_int_equal(p.cred.pid, getpid());
	assert_int_equal(p.cred.uid, geteuid());
	assert_int_equal(p.cred.gid, getegid());
	n = getgroups(PEER_GROUPS_MAX, groups);
	assert_true(n >= 0);
	assert_int_equal(p.n_groups, (size_t)n);
	for (int i = 0; i < n; i++)
		assert_true(peer_in_group(&p, groups[i]));
	/* Root is privileged by uid; the capability is looked up for the others only. */
	if (geteuid() == 0)
		assert_false(p.cap_sys_ptrace);
	assert_int_equal(peer_from_socket(-1, &p), -EBADF);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_privileged),
		cmocka_unit_test(test_paranoid),
		cmocka_unit_test(test_from_socket),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
