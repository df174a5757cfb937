/* SPDX-License-Identifier: MIT */
/*
 * pprof: a Profile as a gzipped profile.proto (github.com/google/pprof, proto/profile.proto),
 * readable by `go tool pprof`, Pyroscope and Parca (`profq pprof`, docs/profq.1).
 *
 * Sample types: samples/count and cpu/nanoseconds (samples × period); period_type
 * cpu/nanoseconds with the sampling period; time_nanos and duration_nanos from the range.
 * A Location per distinct innermost-to-outermost run of frames that ends in a frame that is
 * not inlined: its Lines are the inlined frames innermost first, then that frame (pprof's
 * representation of inlining). Functions by (name, file), a Python function's with its first
 * line as start_line; one Mapping per module (Python functions' is "[python]"). Encoded
 * with protobuf-c, compressed with zlib (gzip format).
 *
 * Used by the CLI (`profq pprof`) and by profqd's pushes. Keeps no state: calls on different
 * Profiles may run in different threads.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "export/profile.h"

/* The gzipped profile in a new buffer (*ret, caller frees; *ret_len bytes). 0, or a negative
 * errno. */
int pprof_encode(const Profile *p, uint8_t **ret, size_t *ret_len);
/* Writes the gzipped profile to fd. 0, or a negative errno. */
int pprof_write(const Profile *p, int fd);
