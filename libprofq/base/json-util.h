/* SPDX-License-Identifier: MIT */
/*
 * Helpers for json-c objects: cleanup, typed getters, and adders of members.
 *
 * Allocation failures: every json_add_*() returns 0 or -ENOMEM. On -ENOMEM nothing was added
 * (never a NULL member in place of the value) and json_alloc_failures(), a process-wide count
 * that only grows, went up. Code that builds a document need not check each add: whoever sends
 * or prints the document notes json_alloc_failures() before building it and, if it grew, sends
 * JSON_OUT_OF_MEMORY instead of a partial document (profqd's server does so for every answer).
 * The count is atomic; the rest has json-c's thread-safety (none per object).
 */
#pragma once

#include <errno.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/macro.h"

static inline void json_object_putp(json_object **o)
{
	if (*o)
		json_object_put(*o);
}

static inline void json_tokener_freep(json_tokener **t)
{
	if (*t)
		json_tokener_free(*t);
}

#define _cleanup_json_ _cleanup_(json_object_putp)

/* What is sent or printed instead of a document that lost a member to a failed allocation. */
#define JSON_OUT_OF_MEMORY "{\"error\":\"out of memory\",\"code\":\"unavailable\"}"

/* Failed allocations in the adders below since the process started. */
uint64_t json_alloc_failures(void);
/* Counts one (for code that adds members itself) and returns -ENOMEM. */
int json_alloc_failed(void);

/* Adds key -> v, v taken (put on failure). A NULL v is a null member: only when asked for. */
static inline int json_add_value(json_object *o, const char *key, json_object *v)
{
	if (json_object_object_add(o, key, v) < 0) {
		json_object_put(v);
		return json_alloc_failed();
	}
	return 0;
}

/* A string member, or NULL when absent or not a string. */
static inline const char *json_get_string(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* A numeric member as double (0 when absent). */
static inline double json_get_double(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v))
		return 0;
	return json_object_get_double(v);
}

/* A boolean member: false when absent or not a boolean. */
static inline bool json_get_bool(json_object *o, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_boolean) &&
	       json_object_get_boolean(v);
}

static inline int64_t json_get_int(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v))
		return 0;
	return json_object_get_int64(v);
}

/* Adds a string member, or null when s is NULL: 0 or -ENOMEM (nothing added). */
static inline int json_add_string(json_object *o, const char *key, const char *s)
{
	json_object *v = NULL;

	if (s && !(v = json_object_new_string(s)))
		return json_alloc_failed();
	return json_add_value(o, key, v);
}

/* 0 or -ENOMEM (nothing added). */
static inline int json_add_int(json_object *o, const char *key, int64_t i)
{
	json_object *v = json_object_new_int64(i);

	if (!v)
		return json_alloc_failed();
	return json_add_value(o, key, v);
}

/* Adds key -> i to an object used as an index of rows: 0, or -ENOMEM (nothing added). */
static inline int json_add_index(json_object *index, const char *key, size_t i)
{
	return json_add_int(index, key, (int64_t)i);
}

/* Adds a double rounded to the given number of decimals: 0 or -ENOMEM (nothing added). */
static inline int json_add_double(json_object *o, const char *key, double d, int decimals)
{
	json_object *v;
	char buf[64];

	snprintf(buf, sizeof(buf), "%.*f", decimals, d);
	v = json_object_new_double_s(d, buf);
	if (!v)
		return json_alloc_failed();
	return json_add_value(o, key, v);
}
