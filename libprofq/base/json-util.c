/* SPDX-License-Identifier: MIT */
#include "base/json-util.h"

static uint64_t failures;

uint64_t json_alloc_failures(void)
{
	return __atomic_load_n(&failures, __ATOMIC_RELAXED);
}

int json_alloc_failed(void)
{
	__atomic_fetch_add(&failures, 1, __ATOMIC_RELAXED);
	return -ENOMEM;
}
