/* SPDX-License-Identifier: MIT */
/*
 * Loop: a minimal epoll event loop. Sources are file descriptors with a callback; the loop does
 * not own the fds. A callback may remove any source, itself included (removal is deferred to
 * the end of the dispatch round). Single-threaded.
 */
#pragma once

#include <stdint.h>
#include <sys/epoll.h>

typedef struct Loop Loop;
typedef struct LoopSource LoopSource;

/* Returning a negative errno stops the loop with that error. */
typedef int (*loop_callback_t)(LoopSource *src, int fd, uint32_t events, void *userdata);

int loop_new(Loop **ret);
Loop *loop_free(Loop *l);

int loop_add(Loop *l, int fd, uint32_t events, loop_callback_t cb, void *userdata,
	     LoopSource **ret);
int loop_modify(Loop *l, LoopSource *src, uint32_t events);
/* Stops watching; the fd is not closed. NULL is a no-op. */
void loop_remove(Loop *l, LoopSource *src);

/* Runs until loop_exit() or a callback fails: 0 or the callback's error. */
int loop_run(Loop *l);
void loop_exit(Loop *l);

static inline void loop_freep(Loop **l)
{
	loop_free(*l);
}
