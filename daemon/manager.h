/* SPDX-License-Identifier: MIT */
/*
 * Manager: profqd's top level. Owns the event loop and everything on it: the sampler (BPF),
 * the profiler (windows, symbols, processes), the query server, the signal and timer sources.
 * Start order: profiler, sampler, server; then the loop runs until SIGTERM/SIGINT, when the
 * open window is closed and everything is torn down in reverse. Not thread-safe.
 */
#pragma once

#include "config.h"

typedef struct Manager Manager;

int manager_new(const Config *config, Manager **ret);
Manager *manager_free(Manager *m);
/* Runs until a termination signal (0) or a fatal error (negative errno). */
int manager_run(Manager *m);

static inline void manager_freep(Manager **m)
{
	manager_free(*m);
}
