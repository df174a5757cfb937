/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <linux/capability.h>
#include <seccomp.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/macro.h"
#include "service/sandbox.h"

void sandbox_init(Sandbox *s)
{
	*s = (Sandbox){ .sock = -1 };
}

void sandbox_reap(Sandbox *s)
{
	for (size_t i = 0; i < s->n_stuck;) {
		if (waitpid(s->stuck[i], NULL, WNOHANG) != 0)
			s->stuck[i] = s->stuck[--s->n_stuck];
		else
			i++;
	}
}

int sandbox_stop(Sandbox *s, uint64_t wait_ns)
{
	const struct timespec step = { .tv_nsec = NSEC_PER_MSEC };
	int status = -1;
	pid_t r;

	if (s->sock >= 0)
		close(s->sock);
	s->sock = -1;
	if (s->pid > 0) {
		(void)kill(s->pid, SIGKILL);
		while ((r = waitpid(s->pid, &status, WNOHANG)) == 0 && wait_ns >= NSEC_PER_MSEC) {
			nanosleep(&step, NULL);
			wait_ns -= NSEC_PER_MSEC;
		}
		if (r == 0 && s->n_stuck < SANDBOX_STUCK_MAX)
			s->stuck[s->n_stuck++] = s->pid;
		if (r != s->pid)
			status = -1;
	}
	s->pid = 0;
	return status;
}

/* The bytes of private writable memory the process has (what RLIMIT_DATA counts): a fork
 * starts with its parent's. */
static uint64_t data_now(void)
{
	char buf[256];
	unsigned long long pages[6];
	ssize_t n;
	int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	if (sscanf(buf, "%llu %llu %llu %llu %llu %llu", &pages[0], &pages[1], &pages[2], &pages[3],
		   &pages[4], &pages[5]) != 6)
		return 0;
	return pages[5] * (uint64_t)sysconf(_SC_PAGESIZE);
}

/*
 * In the child, before its work: nothing of profqd's but the socket; an unprivileged uid and
 * only the capabilities kept (where profqd may: the shipped unit's system call filter refuses
 * setresuid() and capset() to user profq, which then stays as profqd is); no new privileges,
 * no child of its own, no core dump, heap bounded (max_data more than the fork started with).
 */
static void child_confine(int sock, const SandboxOptions *o)
{
	struct __user_cap_header_struct header = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct caps[2] = { { 0 } };
	struct rlimit none = { 0, 0 };

	if ((sock > 3 && syscall(SYS_close_range, 3, sock - 1, 0) < 0) ||
	    syscall(SYS_close_range, sock + 1, ~0u, 0) < 0)
		_exit(1);
	/* Capabilities kept across the change of uid, then cut down to those asked for. */
	if (o->keep_caps)
		(void)prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0);
	if (syscall(SYS_setgroups, 0, NULL) == 0 &&
	    syscall(SYS_setresgid, SANDBOX_UID, SANDBOX_UID, SANDBOX_UID) == 0)
		(void)syscall(SYS_setresuid, SANDBOX_UID, SANDBOX_UID, SANDBOX_UID);
	for (unsigned i = 0; i < 2; i++) {
		caps[i].effective = caps[i].permitted = (uint32_t)(o->keep_caps >> (32 * i));
		caps[i].inheritable = 0;
	}
	if (syscall(SYS_capset, &header, caps) < 0) {
		/* Not all kept ones were ours: keep none. */
		memset(caps, 0, sizeof(caps));
		(void)syscall(SYS_capset, &header, caps);
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		_exit(1);
	(void)setrlimit(RLIMIT_CORE, &none);
	(void)setrlimit(RLIMIT_NPROC, &none);
	if (o->max_data) {
		uint64_t limit = o->max_data + data_now();

		(void)setrlimit(RLIMIT_DATA, &(struct rlimit){ limit, limit });
	}
}

/*
 * The system calls a child may make: reading and writing the descriptors it has, memory, its
 * socket, time, signals of its own and its end (and sysinfo(), which glibc's qsort() asks for the
 * memory size). Anything else fails with EPERM: no new socket, no other process's memory or
 * signals, no file written, no exec, no ptrace, no BPF; files are opened only for reading, and
 * only where the owner allows it. Calls of another ABI (i386, x32) kill the child (libseccomp's
 * default for an architecture the filter was not made for).
 */
static const int child_syscalls[] = {
	SCMP_SYS(read),		 SCMP_SYS(pread64),	    SCMP_SYS(readv),
	SCMP_SYS(preadv),	 SCMP_SYS(write),	    SCMP_SYS(pwrite64),
	SCMP_SYS(writev),	 SCMP_SYS(lseek),	    SCMP_SYS(close),
	SCMP_SYS(fstat),	 SCMP_SYS(newfstatat),	    SCMP_SYS(statx),
	SCMP_SYS(fcntl),	 SCMP_SYS(ftruncate),	    SCMP_SYS(memfd_create),
	SCMP_SYS(mmap),		 SCMP_SYS(munmap),	    SCMP_SYS(mremap),
	SCMP_SYS(mprotect),	 SCMP_SYS(madvise),	    SCMP_SYS(brk),
	SCMP_SYS(poll),		 SCMP_SYS(ppoll),	    SCMP_SYS(recvmsg),
	SCMP_SYS(recvfrom),	 SCMP_SYS(sendmsg),	    SCMP_SYS(sendto),
	SCMP_SYS(clock_gettime), SCMP_SYS(clock_nanosleep), SCMP_SYS(nanosleep),
	SCMP_SYS(gettimeofday),	 SCMP_SYS(getpid),	    SCMP_SYS(gettid),
	SCMP_SYS(getppid),	 SCMP_SYS(futex),	    SCMP_SYS(getrandom),
	SCMP_SYS(rt_sigaction),	 SCMP_SYS(rt_sigprocmask),  SCMP_SYS(rt_sigreturn),
	SCMP_SYS(sigaltstack),	 SCMP_SYS(restart_syscall), SCMP_SYS(sched_yield),
	SCMP_SYS(exit),		 SCMP_SYS(exit_group),	    SCMP_SYS(sysinfo),
};

/* Files opened for reading only, which is what the reading calls above need besides. */
static const int open_syscalls[] = {
	SCMP_SYS(readlink), SCMP_SYS(readlinkat), SCMP_SYS(getcwd),
	SCMP_SYS(access),   SCMP_SYS(faccessat),  SCMP_SYS(faccessat2),
};

/* The filter: -errno if it could not be made or loaded (the other limits hold either way). */
static int child_filter(const SandboxOptions *o)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
	int r = ctx ? 0 : -ENOMEM;

	for (size_t i = 0; r >= 0 && i < ARRAY_SIZE(child_syscalls); i++)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, child_syscalls[i], 0);
	if (o->open_read_only) {
		for (size_t i = 0; r >= 0 && i < ARRAY_SIZE(open_syscalls); i++)
			r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, open_syscalls[i], 0);
		/* Neither written nor made: no access mode but O_RDONLY, no O_CREAT or O_TRUNC. */
		if (r >= 0)
			r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(openat), 1,
					     SCMP_A2(SCMP_CMP_MASKED_EQ,
						     O_ACCMODE | O_CREAT | O_TRUNC, 0));
	}
	if (r >= 0)
		r = seccomp_load(ctx);
	seccomp_release(ctx);
	return r;
}

int sandbox_start(Sandbox *s, const SandboxOptions *o, SandboxMain main, void *userdata)
{
	pid_t parent = getpid(), pid;
	int sv[2];

	sandbox_reap(s);
	if (s->n_stuck >= SANDBOX_STUCK_MAX)
		return -ETIMEDOUT;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return negative_errno();
	if (o->sndbuf > 0)
		(void)setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &o->sndbuf, sizeof(int));
	pid = fork();
	if (pid < 0) {
		int r = negative_errno();

		close(sv[0]);
		close(sv[1]);
		return r;
	}
	if (pid == 0) {
		/* A fork of a process with threads: system calls, and glibc's malloc (which makes
		 * itself whole in a forked child), from here on. */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
			_exit(0);
		close(sv[0]);
		child_confine(sv[1], o);
		/* Again: a change of uid clears it. */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
			_exit(0);
		/* Last: what comes before it makes calls the filter refuses. Without seccomp in
		 * the kernel (or allowed by profqd's own filter), the other limits still hold. */
		(void)child_filter(o);
		main(sv[1], userdata);
		_exit(0);
	}
	close(sv[1]);
	s->sock = sv[0];
	s->pid = pid;
	s->started++;
	return 0;
}

int sandbox_send(int sock, const void *buf, size_t len, int fd, int flags)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *c;

	if (fd >= 0) {
		msg.msg_control = cbuf;
		msg.msg_controllen = sizeof(cbuf);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	if (sendmsg(sock, &msg, flags | MSG_NOSIGNAL) != (ssize_t)len)
		return errno ? negative_errno() : -EIO;
	return 0;
}

ssize_t sandbox_recv(int sock, void *buf, size_t len, int flags, int *ret_fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov,
			      .msg_iovlen = 1,
			      .msg_control = cbuf,
			      .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c;
	ssize_t n;
	int fd = -1;

	*ret_fd = -1;
	n = recvmsg(sock, &msg, flags | MSG_CMSG_CLOEXEC);
	if (n < 0)
		return negative_errno();
	for (c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
		    c->cmsg_len == CMSG_LEN(sizeof(int)) && fd < 0)
			memcpy(&fd, CMSG_DATA(c), sizeof(int));
	if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
		if (fd >= 0)
			close(fd);
		return -EMSGSIZE;
	}
	*ret_fd = fd;
	return n;
}
