/* SPDX-License-Identifier: MIT */
/*
 * Access: who a query client is and what it may see (profqd(8), ACCESS CONTROL). A Peer is what the
 * socket says of the client at connect time: SO_PEERCRED, its supplementary groups (SO_PEERGROUPS)
 * and whether CAP_SYS_PTRACE is in its effective set (/proc/PID/status of the process that
 * SO_PEERPIDFD names, so a reused pid cannot lend its capabilities). Privileged peers — root,
 * members of the configured group, CAP_SYS_PTRACE — see every process and kernel addresses; the
 * others are judged per process by query_proc_visible() (query.h). Thread-safe.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

#define PEER_GROUPS_MAX 64

typedef struct Peer {
	struct ucred cred;
	gid_t groups[PEER_GROUPS_MAX]; /* supplementary groups (as many as fit) */
	size_t n_groups;
	bool cap_sys_ptrace; /* known to be in the effective set */
} Peer;

/* Fills *ret from a connected Unix socket. Only SO_PEERCRED is required; what else cannot be
 * learnt counts as absent (less privilege, never more). */
int peer_from_socket(int fd, Peer *ret);

bool peer_in_group(const Peer *p, gid_t gid);

/* Root, a member of group (primary or supplementary; have_group false: no group) or a holder
 * of CAP_SYS_PTRACE. */
bool peer_privileged(const Peer *p, bool have_group, gid_t group);

/* Whether unprivileged users may profile the kernel: /proc/sys/kernel/perf_event_paranoid
 * at most 1. Unreadable or unparsable: no. */
bool access_kernel_profiling_allowed(void);
/* The same from the file's text (for tests and fuzzing). */
bool access_paranoid_allows_kernel(const char *text);
