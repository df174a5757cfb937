/* SPDX-License-Identifier: MIT */
/*
 * The worker processes' confinement (service/sandbox.c): a child that reads what it is given
 * and answers over its socket, and whose system call filter refuses what a compromised worker
 * would try: a socket, another process, an exec, a file written or (unless allowed) opened.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "base/macro.h"
#include "service/sandbox.h"
#include "tmpdir.h"

#define WAIT_NS (5 * NSEC_PER_SEC)

/* What the child found, one errno per attempt (0: it worked). */
typedef struct Report {
	int read_given; /* pread of the descriptor it was sent */
	int memfd;	/* memfd_create + write, as an answer body is made */
	int open_read;
	int open_write;
	int open_create;
	int socket_inet;
	int kill_parent;
	int ptrace_parent;
	int vm_read_parent;
	int exec;
	char got[16];
} Report;

static const char *open_path;	/* readable by anyone */
static const char *create_path; /* in a directory anyone may write */

static int err(long r)
{
	return r < 0 ? errno : 0;
}

static void child_main(int sock, void *userdata)
{
	Report rep = { 0 };
	char c = 0, buf[16];
	struct iovec local = { .iov_base = buf, .iov_len = 1 };
	struct iovec remote = { .iov_base = userdata, .iov_len = 1 };
	int fd, r;

	if (sandbox_recv(sock, &c, 1, 0, &fd) != 1 || fd < 0)
		return;
	rep.read_given = err(pread(fd, rep.got, sizeof(rep.got) - 1, 0));
	r = memfd_create("answer", MFD_CLOEXEC);
	rep.memfd = r < 0 ? errno : err(write(r, "x", 1));
	r = open(open_path, O_RDONLY | O_CLOEXEC);
	rep.open_read = err(r);
	if (r >= 0)
		close(r);
	rep.open_write = err(open(open_path, O_WRONLY | O_CLOEXEC));
	rep.open_create = err(open(create_path, O_RDONLY | O_CREAT | O_CLOEXEC, 0600));
	rep.socket_inet = err(socket(AF_INET, SOCK_STREAM, 0));
	rep.kill_parent = err(kill(getppid(), 0));
	rep.ptrace_parent = err(ptrace(PTRACE_ATTACH, getppid(), NULL, NULL));
	rep.vm_read_parent = err(process_vm_readv(getppid(), &local, 1, &remote, 1, 0));
	rep.exec = err(execl("/bin/true", "true", (char *)NULL));
	(void)sandbox_send(sock, &rep, sizeof(rep), -1, 0);
}

/* Starts a child with o, sends it a descriptor of a file holding "given", gets its report. */
static void run_child(const SandboxOptions *o, Report *rep, char *status, size_t status_size)
{
	static char probe = 'p';
	_cleanup_tmpdir_ char *dir = tmpdir_new_named("profq-sandbox");
	_cleanup_free_ char *file = NULL, *created = NULL;
	_cleanup_close_ int fd = -1;
	char path[64];
	Sandbox s;
	FILE *f;
	int rfd;

	assert_non_null(dir);
	assert_true(asprintf(&file, "%s/given", dir) > 0);
	assert_true(asprintf(&created, "%s/created", dir) > 0);
	assert_int_equal(chmod(dir, 0777), 0);
	fd = open(file, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "given", 5), 5);
	open_path = file;
	create_path = created;

	sandbox_init(&s);
	assert_int_equal(sandbox_start(&s, o, child_main, &probe), 0);
	assert_int_equal(sandbox_send(s.sock, "go", 1, fd, 0), 0);
	memset(rep, 0xff, sizeof(*rep));
	assert_int_equal(sandbox_recv(s.sock, rep, sizeof(*rep), 0, &rfd), (ssize_t)sizeof(*rep));
	assert_int_equal(rfd, -1);
	/* Its status while it waits for the socket's end. */
	snprintf(path, sizeof(path), "/proc/%d/status", (int)s.pid);
	f = fopen(path, "re");
	assert_non_null(f);
	memset(status, 0, status_size);
	assert_true(fread(status, 1, status_size - 1, f) > 0);
	fclose(f);
	assert_int_equal(access(created, F_OK), -1);
	(void)sandbox_stop(&s, WAIT_NS);
}

static void test_filter(void **state)
{
	const SandboxOptions o = { 0 };
	char status[4096];
	Report rep;

	(void)state;
	if (geteuid() != 0)
		skip(); /* the child gives up root's uid */
	run_child(&o, &rep, status, sizeof(status));
	/* The work it is there for. */
	assert_int_equal(rep.read_given, 0);
	assert_string_equal(rep.got, "given");
	assert_int_equal(rep.memfd, 0);
	/* Everything else refused by the filter (EPERM; without it some would be EACCES, or
	 * work: the file is readable by anyone, the parent is root's). */
	assert_int_equal(rep.open_read, EPERM);
	assert_int_equal(rep.open_write, EPERM);
	assert_int_equal(rep.open_create, EPERM);
	assert_int_equal(rep.socket_inet, EPERM);
	assert_int_equal(rep.kill_parent, EPERM);
	assert_int_equal(rep.ptrace_parent, EPERM);
	assert_int_equal(rep.vm_read_parent, EPERM);
	assert_int_equal(rep.exec, EPERM);
	assert_non_null(strstr(status, "\nSeccomp:\t2\n"));
	assert_non_null(strstr(status, "\nUid:\t65534\t65534\t65534\t65534\n"));
	assert_non_null(strstr(status, "\nCapEff:\t0000000000000000\n"));
	assert_non_null(strstr(status, "\nNoNewPrivs:\t1\n"));
}

/* A child allowed to open files opens them for reading only, and makes none. */
static void test_open_read_only(void **state)
{
	const SandboxOptions o = { .open_read_only = true };
	char status[4096];
	Report rep;

	(void)state;
	if (geteuid() != 0)
		skip();
	run_child(&o, &rep, status, sizeof(status));
	assert_int_equal(rep.read_given, 0);
	assert_int_equal(rep.open_read, 0);
	assert_int_equal(rep.open_write, EPERM);
	assert_int_equal(rep.open_create, EPERM);
	assert_int_equal(rep.socket_inet, EPERM);
	assert_int_equal(rep.exec, EPERM);
	assert_non_null(strstr(status, "\nSeccomp:\t2\n"));
}

#ifdef __x86_64__
/* getpid() by the i386 ABI (int 0x80), which the kernel here may run for x86-64 processes. */
static long i386_getpid(void)
{
	long r;

	__asm__ volatile("int $0x80" : "=a"(r) : "a"(20L) : "memory");
	return r;
}

static void i386_main(int sock, void *userdata)
{
	char c;
	int fd;
	long r;

	(void)userdata;
	if (sandbox_recv(sock, &c, 1, 0, &fd) != 1)
		return;
	r = i386_getpid();
	(void)sandbox_send(sock, &r, sizeof(r), -1, 0);
}

/* A system call by another ABI, which the filter was not made for, kills the child. */
static void test_other_abi(void **state)
{
	const SandboxOptions o = { 0 };
	Sandbox s;
	long got;
	int fd, status;

	(void)state;
	if (geteuid() != 0 || i386_getpid() != getpid())
		skip(); /* no i386 emulation: nothing to filter */
	sandbox_init(&s);
	assert_int_equal(sandbox_start(&s, &o, i386_main, NULL), 0);
	assert_int_equal(sandbox_send(s.sock, "go", 1, -1, 0), 0);
	/* No answer: its end closed when it died. */
	assert_int_equal(sandbox_recv(s.sock, &got, sizeof(got), 0, &fd), 0);
	status = sandbox_stop(&s, WAIT_NS);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGSYS);
}
#endif

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_filter),
		cmocka_unit_test(test_open_read_only),
#ifdef __x86_64__
		cmocka_unit_test(test_other_abi),
#endif
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
