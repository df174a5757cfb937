/* SPDX-License-Identifier: MIT */
/*
 * MemReader: reads another process's memory in a child process, with a time limit.
 *
 * A read of a process's memory faults its pages in, and a page of a file on a FUSE file system
 * is fetched from that file system's daemon, which any user may run (fusermount3 is setuid, and
 * user namespaces allow FUSE mounts): it answers when it likes, and the reader waits in the
 * kernel until it does. So the reads are made by a child process (forked at the first read;
 * the descriptor of /proc/PID/mem it is handed was opened, and checked, by its parent, so it
 * gives up the rest: an unprivileged uid and no capabilities where profqd may, run as root),
 * over a socket pair: a read not answered within the time limit kills the child and fails with
 * -ETIMEDOUT; the next read starts another. (A fatal signal ends a wait for a FUSE request its
 * daemon has not taken yet; one it has taken is waited out: such a child is reaped once the
 * file system answers or goes.)
 * Each read costs a round trip between the two processes (tens of microseconds, not one).
 * Not thread-safe.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "python/pycode.h"

typedef struct MemReader MemReader;

/* Bytes one read may ask for; larger reads are made in pieces. */
#define MEM_READER_MAX (64u << 10)

typedef struct MemReaderStats {
	uint64_t reads;	   /* reads made through the child */
	uint64_t timeouts; /* ... not answered in time: the child killed */
	uint64_t children; /* children started */
	uint64_t stuck;	   /* killed children still waiting in the kernel now */
} MemReaderStats;

int mem_reader_new(uint64_t timeout_ns, MemReader **ret);
/* Stops the child (if any) and frees m. */
MemReader *mem_reader_free(MemReader *m);

/*
 * Reads len bytes at addr through fd (an open /proc/PID/mem of a process of uid): 0, or -errno
 * (all or nothing; -EFAULT for a short read, -ETIMEDOUT when the child did not answer in time).
 * The processes of a uid that timed out twice are read no more (-ETIMEDOUT at once): a user
 * can make reads of their own processes wait, and costs others nothing but the time limit,
 * twice. A killed child that waits on in the kernel is reaped when it can be; while 16 do,
 * every read fails.
 */
int mem_reader_read(MemReader *m, int fd, uint32_t uid, uint64_t addr, void *buf, size_t len);
/*
 * Reads and parses the code object at addr (pycode_read()) in the child: one round trip, and
 * whatever the object holds is parsed where a fault costs nothing. Its identity bytes first:
 * -ECHILD, nothing else read, when they are not ident's (py_ident_hash()). Else as
 * pycode_read(), or as mem_reader_read() for the reader's own errors; the child's answer is
 * checked (lengths within pycode.h's bounds) before it is used.
 */
int mem_reader_code(MemReader *m, int fd, uint32_t uid, const PyLayout *l, uint64_t addr,
		    uint64_t code_type, uint32_t ident, PyCode *ret);
/* Walks the interpreters' thread lists (pythreads_read()) in the child: out holds
 * PY_THREADS_MAX. As pythreads_read(), or as mem_reader_read() for the reader's own errors. */
int mem_reader_threads(MemReader *m, int fd, uint32_t uid, const PyLayout *l, uint64_t runtime,
		       PyThreadRef *out, size_t *ret_n);
void mem_reader_stats(const MemReader *m, MemReaderStats *ret);

static inline void mem_reader_freep(MemReader **m)
{
	mem_reader_free(*m);
}
