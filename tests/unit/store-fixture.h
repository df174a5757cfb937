/* SPDX-License-Identifier: MIT */
/*
 * Building a store by hand for the query and CLI tests: interned strings and process records
 * whose references the store keeps until it is freed as a whole.
 */
#pragma once

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "store/store.h"

static inline StrId str(Store *s, const char *v)
{
	StrId id;

	assert_int_equal(store_intern_string(s, v, &id), 0);
	return id;
}

/* A process record started at start_ns (realtime, also its boot-time identity), parent 1. */
static inline ProcId proc(Store *s, uint32_t pid, uint32_t uid, int64_t start_ns, const char *comm)
{
	StoreProc p = { .pid = pid,
			.ppid = 1,
			.uid = uid,
			.start_ns = start_ns,
			.start_boot_ns = (uint64_t)start_ns };
	ProcId id;

	p.comm = str(s, comm);
	assert_int_equal(store_proc_add(s, &p, &id), 0);
	return id;
}
