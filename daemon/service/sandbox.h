/* SPDX-License-Identifier: MIT */
/*
 * Sandbox: a child process of profqd that does for it the work a hostile input can turn into a
 * crash, a fault, an endless wait or a memory bomb (reading a process's memory, parsing DWARF
 * with libdw), so that such a failure costs the child, never profqd.
 *
 * The child is forked (at its owner's first request), talks to its parent over a
 * SOCK_SEQPACKET pair (one message per request and per answer, descriptors passed with
 * SCM_RIGHTS), keeps no other descriptor of profqd's, dies with profqd, and gives up what it
 * does not need where profqd may (run as root): an unprivileged uid, every capability but those
 * its owner keeps, new privileges (no_new_privs), forks, core dumps, heap past a limit, and every
 * system call but those its work needs (a seccomp filter: reading and writing what it was given,
 * memory, its socket, time; opening files for reading only if its owner says so).
 * The owner bounds each request's time and stops the child when one takes too long.
 * Not thread-safe.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Children killed while waiting in the kernel (a FUSE request its daemon has taken is waited
 * out whatever the signal) are reaped when they can be; past this many, none is started. */
#define SANDBOX_STUCK_MAX 16
/* The uid the child gives root's up for. */
#define SANDBOX_UID 65534

typedef struct SandboxOptions {
	uint64_t keep_caps;  /* capabilities kept by the child (1 << CAP_*), all others dropped */
	uint64_t max_data;   /* private writable memory the child may add to what it starts with
			     * (RLIMIT_DATA), 0: no limit but profqd's */
	int sndbuf;	     /* SO_SNDBUF of the child's end, 0: the default */
	bool open_read_only; /* the child may open files (for reading only) */
} SandboxOptions;

typedef struct Sandbox {
	pid_t pid; /* 0: no child */
	int sock;  /* our end of the pair, -1 without a child */
	pid_t stuck[SANDBOX_STUCK_MAX];
	size_t n_stuck;
	uint64_t started; /* children started */
} Sandbox;

/* The child's work: answers requests on sock until it closes, then _exit()s. */
typedef void (*SandboxMain)(int sock, void *userdata);

void sandbox_init(Sandbox *s);
/* Forks the child, which gives up its rights (see above) and runs main(sock, userdata);
 * -ETIMEDOUT while SANDBOX_STUCK_MAX killed children are still waiting in the kernel. */
int sandbox_start(Sandbox *s, const SandboxOptions *o, SandboxMain main, void *userdata);
/* Kills the child and waits for it up to wait_ns; one that does not end by then is reaped
 * later (sandbox_reap()). Its wait status (how it ended, if it had before the kill), or -1. */
int sandbox_stop(Sandbox *s, uint64_t wait_ns);
/* Waits for the stuck children that have ended since. */
void sandbox_reap(Sandbox *s);

/* Sends one message of len bytes, with descriptor fd unless it is negative (flags as
 * sendmsg()'s): 0 or -errno. */
int sandbox_send(int sock, const void *buf, size_t len, int fd, int flags);
/* Receives one message into buf (flags as recvmsg()'s): its size (0 at the other end's close),
 * or -errno; the descriptor it carried in *ret_fd (close-on-exec), -1 if none. A message longer
 * than len is -EMSGSIZE. */
ssize_t sandbox_recv(int sock, void *buf, size_t len, int flags, int *ret_fd);
