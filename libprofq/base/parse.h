/* SPDX-License-Identifier: MIT */
/*
 * Strict parsers for user-supplied values (CLI, config file, requests). Each rejects empty
 * strings, signs, trailing garbage and overflow with -EINVAL or -ERANGE and writes *ret only on
 * success. Pure functions; thread-safe.
 */
#pragma once

#include <stdint.h>

/* Decimal unsigned integer in [min, max]. */
int parse_uint64(const char *s, uint64_t min, uint64_t max, uint64_t *ret);
int parse_uint32(const char *s, uint32_t min, uint32_t max, uint32_t *ret);

/* A process id: 1..4194304 (PID_MAX_LIMIT). */
int parse_pid(const char *s, uint32_t *ret);

/*
 * A duration such as "90", "30s", "500ms", "5m", "2h", "1d", "1h30m" to nanoseconds. A bare
 * number means seconds. Units: ns, us, ms, s, m (or min), h, d.
 */
int parse_duration_ns(const char *s, uint64_t *ret);

/* A size such as "64M", "512K", "1G", "4096"; base 1024; optional "B" or "iB" suffix. */
int parse_size(const char *s, uint64_t *ret);

/* Formats ns as the shortest exact duration string ("1h", "90s", "250ms") into buf. */
const char *format_duration(char *buf, size_t len, uint64_t ns);
