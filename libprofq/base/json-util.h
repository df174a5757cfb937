/* SPDX-License-Identifier: MIT */
/* Cleanup helpers for json-c objects. Header only. */
#pragma once

#include <errno.h>
#include <json-c/json.h>

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

static inline int64_t json_get_int(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v))
		return 0;
	return json_object_get_int64(v);
}

/* Adds a string member, or null when s is NULL. */
static inline void json_add_string(json_object *o, const char *key, const char *s)
{
	json_object_object_add(o, key, s ? json_object_new_string(s) : NULL);
}

static inline void json_add_int(json_object *o, const char *key, int64_t v)
{
	json_object_object_add(o, key, json_object_new_int64(v));
}

/* Adds key -> i to an object used as an index of rows: 0, or -ENOMEM (nothing added). */
static inline int json_add_index(json_object *index, const char *key, size_t i)
{
	json_object *v = json_object_new_int64((int64_t)i);

	if (!v || json_object_object_add(index, key, v) < 0) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

/* Adds a double rounded to the given number of decimals. */
static inline void json_add_double(json_object *o, const char *key, double v, int decimals)
{
	char buf[64];

	snprintf(buf, sizeof(buf), "%.*f", decimals, v);
	json_object_object_add(o, key, json_object_new_double_s(v, buf));
}
