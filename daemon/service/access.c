/* SPDX-License-Identifier: MIT */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/macro.h"
#include "base/procfs.h"
#include "service/access.h"

#ifndef SO_PEERGROUPS
#define SO_PEERGROUPS 59
#endif
#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif

#define CAP_SYS_PTRACE_BIT 19

/* The pid a pidfd names, from /proc/self/fdinfo ("Pid:\t1234"; -1 once it has exited). */
static int pidfd_get_pid(int pidfd, pid_t *ret)
{
	_cleanup_free_ char *buf = NULL;
	char path[64];
	const char *p;
	long pid;
	int r;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", pidfd);
	r = procfs_read_file(path, 4096, &buf, NULL);
	if (r < 0)
		return r;
	p = strstr(buf, "\nPid:\t");
	if (!p)
		return -ENOENT;
	pid = strtol(p + 6, NULL, 10);
	if (pid <= 0 || pid > INT32_MAX)
		return -ESRCH;
	*ret = (pid_t)pid;
	return 0;
}

/* A pidfd polls readable once its process has exited. */
static bool pidfd_alive(int pidfd)
{
	struct pollfd pfd = { .fd = pidfd, .events = POLLIN };

	return poll(&pfd, 1, 0) == 0;
}

static bool peer_has_ptrace(int fd, const struct ucred *cred)
{
	_cleanup_close_ int pidfd = -1;
	socklen_t len = sizeof(pidfd);
	ProcStatus st;
	pid_t pid = cred->pid;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) == 0 && pidfd >= 0) {
		if (pidfd_get_pid(pidfd, &pid) < 0)
			return false;
	} else {
		/* An older kernel: the pid of connect time, trusted only if its status then
		 * still names the peer's uid. */
		pidfd = -1;
	}
	if (pid <= 0 || procfs_read_status(pid, &st) < 0)
		return false;
	/* The process must still be the peer after the read, or the pid may name another. */
	if (pidfd >= 0 && !pidfd_alive(pidfd))
		return false;
	if (st.uid[1] != cred->uid && cred->uid != 0)
		return false;
	return st.cap_eff & (1ULL << CAP_SYS_PTRACE_BIT);
}

int peer_from_socket(int fd, Peer *ret)
{
	Peer p = { 0 };
	socklen_t len = sizeof(p.cred);
	gid_t groups[PEER_GROUPS_MAX * 2];

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &p.cred, &len) < 0)
		return negative_errno();
	len = sizeof(groups);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) == 0) {
		p.n_groups = MIN((size_t)len / sizeof(gid_t), (size_t)PEER_GROUPS_MAX);
		memcpy(p.groups, groups, p.n_groups * sizeof(gid_t));
	}
	/* Root needs no more; the others may hold the capability. */
	if (p.cred.uid != 0)
		p.cap_sys_ptrace = peer_has_ptrace(fd, &p.cred);
	*ret = p;
	return 0;
}

bool peer_in_group(const Peer *p, gid_t gid)
{
	if (p->cred.gid == gid)
		return true;
	for (size_t i = 0; i < p->n_groups; i++)
		if (p->groups[i] == gid)
			return true;
	return false;
}

bool peer_privileged(const Peer *p, bool have_group, gid_t group)
{
	return p->cred.uid == 0 || (have_group && peer_in_group(p, group)) || p->cap_sys_ptrace;
}

bool access_paranoid_allows_kernel(const char *text)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(text, &end, 10);
	if (errno != 0 || end == text || (*end != '\0' && *end != '\n'))
		return false;
	return v <= 1;
}

bool access_kernel_profiling_allowed(void)
{
	_cleanup_free_ char *buf = NULL;

	if (procfs_read_file("/proc/sys/kernel/perf_event_paranoid", 64, &buf, NULL) < 0)
		return false;
	return access_paranoid_allows_kernel(buf);
}
