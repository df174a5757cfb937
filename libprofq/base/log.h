/* SPDX-License-Identifier: MIT */
/*
 * Logging to stderr with syslog levels. journald adds timestamps, so none are printed; a
 * "<N>" prefix tells journald the level when stderr is the journal stream (JOURNAL_STREAM).
 * log_*_errno(r, ...) sets errno to -r so "%m" prints the reason, and returns -|r| so a
 * caller can write `return log_error_errno(r, "Failed to ...: %m");`.
 * Not thread-safe to reconfigure; logging itself is safe from one thread.
 */
#pragma once

#include <syslog.h>

#include "base/macro.h"

void log_set_max_level(int level);
int log_get_max_level(void);
/* Parses "debug", "info", "notice", "warning", "err" (or "error"), or a number 0..7. */
int log_level_from_string(const char *s);
void log_open(void);

int log_internal(int level, int error, const char *fmt, ...) _printf_(3, 4);

#define log_full_errno(level, error, ...)                                                       \
	({                                                                                      \
		int _l_ = (level), _e_ = (error);                                               \
		(_l_ <= log_get_max_level()) ? log_internal(_l_, _e_, __VA_ARGS__) : -abs(_e_); \
	})

#define log_debug(...) log_full_errno(LOG_DEBUG, 0, __VA_ARGS__)
#define log_info(...) log_full_errno(LOG_INFO, 0, __VA_ARGS__)
#define log_notice(...) log_full_errno(LOG_NOTICE, 0, __VA_ARGS__)
#define log_warning(...) log_full_errno(LOG_WARNING, 0, __VA_ARGS__)
#define log_error(...) log_full_errno(LOG_ERR, 0, __VA_ARGS__)

#define log_debug_errno(e, ...) log_full_errno(LOG_DEBUG, e, __VA_ARGS__)
#define log_info_errno(e, ...) log_full_errno(LOG_INFO, e, __VA_ARGS__)
#define log_warning_errno(e, ...) log_full_errno(LOG_WARNING, e, __VA_ARGS__)
#define log_error_errno(e, ...) log_full_errno(LOG_ERR, e, __VA_ARGS__)
