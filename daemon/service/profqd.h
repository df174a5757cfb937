/* SPDX-License-Identifier: MIT */
/*
 * Profqd: profqd's top level. Owns the event loop and everything on it: the sampler (BPF),
 * the profiler (windows, symbols, processes), the query server, the signal and timer sources.
 * Start order: profiler, sampler, server; then the loop runs until SIGTERM/SIGINT, when the
 * open window is closed and everything is torn down in reverse. Not thread-safe.
 */
#pragma once

#include "service/config.h"

typedef struct Profqd Profqd;

int profqd_new(const Config *config, Profqd **ret);
Profqd *profqd_free(Profqd *m);
/* Runs until a termination signal (0) or a fatal error (negative errno). */
int profqd_run(Profqd *m);

static inline void profqd_freep(Profqd **m)
{
	profqd_free(*m);
}
