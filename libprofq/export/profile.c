/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json-util.h"
#include "base/macro.h"
#include "export/profile.h"
#include "store/store.h"

Profile *profile_free(Profile *p)
{
	if (!p)
		return NULL;
	for (size_t i = 0; i < p->n_frames; i++) {
		free(p->frames[i].function);
		free(p->frames[i].module);
		free(p->frames[i].file);
	}
	free(p->frames);
	for (size_t i = 0; i < p->n_stacks; i++)
		free(p->stacks[i].frames);
	free(p->stacks);
	free(p->comm);
	free(p);
	return NULL;
}

static int bad(char **ret_error, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad(char **ret_error, const char *fmt, ...)
{
	va_list ap;

	if (ret_error) {
		va_start(ap, fmt);
		if (vasprintf(ret_error, fmt, ap) < 0)
			*ret_error = NULL;
		va_end(ap);
	}
	return -EBADMSG;
}

/* A non-negative integer member; absent or null is 0 when optional. */
static int get_uint(json_object *o, const char *key, bool optional, uint64_t max, uint64_t *ret)
{
	json_object *v;
	int64_t x;

	if (!json_object_object_get_ex(o, key, &v) || !v) {
		*ret = 0;
		return optional ? 0 : -EBADMSG;
	}
	if (!json_object_is_type(v, json_type_int))
		return -EBADMSG;
	errno = 0;
	x = json_object_get_int64(v);
	if (errno != 0 || x < 0 || (uint64_t)x > max)
		return -EBADMSG;
	*ret = (uint64_t)x;
	return 0;
}

/* A copy of an optional string member: NULL when absent or null. */
static int get_string(json_object *o, const char *key, bool optional, char **ret)
{
	json_object *v;

	*ret = NULL;
	if (!json_object_object_get_ex(o, key, &v) || !v)
		return optional ? 0 : -EBADMSG;
	if (!json_object_is_type(v, json_type_string))
		return -EBADMSG;
	*ret = strdup(json_object_get_string(v));
	return *ret ? 0 : -ENOMEM;
}

static bool get_bool(json_object *o, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_boolean) &&
	       json_object_get_boolean(v);
}

static int parse_frame(json_object *o, ProfileFrame *f)
{
	uint64_t line, start_line;
	int r;

	if (!json_object_is_type(o, json_type_object))
		return -EBADMSG;
	r = get_string(o, "function", false, &f->function);
	if (r >= 0)
		r = get_string(o, "module", true, &f->module);
	if (r >= 0)
		r = get_string(o, "file", true, &f->file);
	if (r >= 0)
		r = get_uint(o, "line", true, UINT32_MAX, &line);
	if (r >= 0)
		r = get_uint(o, "start_line", true, UINT32_MAX, &start_line);
	if (r < 0)
		return r;
	f->line = (uint32_t)line;
	f->start_line = (uint32_t)start_line;
	f->kernel = get_bool(o, "kernel");
	f->inlined = get_bool(o, "inlined");
	f->python = get_bool(o, "python");
	return 0;
}

static int parse_stack(json_object *o, size_t n_frames, uint64_t most, ProfileStack *s)
{
	json_object *a;
	size_t n;

	if (!json_object_is_type(o, json_type_object) ||
	    get_uint(o, "samples", false, most, &s->samples) < 0 || s->samples == 0)
		return -EBADMSG;
	if (!json_object_object_get_ex(o, "frames", &a) || !json_object_is_type(a, json_type_array))
		return -EBADMSG;
	n = json_object_array_length(a);
	if (n == 0 || n > STORE_STACK_MAX)
		return -EBADMSG;
	s->frames = malloc(n * sizeof(uint32_t));
	if (!s->frames)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		json_object *v = json_object_array_get_idx(a, i);
		int64_t x;

		if (!json_object_is_type(v, json_type_int))
			return -EBADMSG;
		x = json_object_get_int64(v);
		if (x < 0 || (uint64_t)x >= n_frames)
			return -EBADMSG;
		s->frames[i] = (uint32_t)x;
	}
	s->n_frames = n;
	return 0;
}

int profile_from_json(json_object *answer, Profile **ret, char **ret_error)
{
	_cleanup_(profile_freep) Profile *p = NULL;
	json_object *frames, *stacks;
	uint64_t pid, start, end, sum = 0;
	int r;

	if (ret_error)
		*ret_error = NULL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	if (!json_object_is_type(answer, json_type_object))
		return bad(ret_error, "the answer is not an object");
	/* null for the processes a request's labels selected */
	if (get_uint(answer, "pid", true, UINT32_MAX, &pid) < 0 ||
	    get_uint(answer, "processes", true, INT64_MAX, &p->processes) < 0 ||
	    get_uint(answer, "hidden", true, INT64_MAX, &p->hidden) < 0 ||
	    get_uint(answer, "samples", false, INT64_MAX, &p->samples) < 0 ||
	    get_uint(answer, "truncated_samples", true, INT64_MAX, &p->truncated_samples) < 0 ||
	    get_uint(answer, "period_ns", false, INT64_MAX, &p->period_ns) < 0 ||
	    get_uint(answer, "start_ns", true, INT64_MAX, &start) < 0 ||
	    get_uint(answer, "end_ns", true, INT64_MAX, &end) < 0 || end < start)
		return bad(ret_error, "a missing or malformed pid, samples, period or range");
	p->pid = (uint32_t)pid;
	snprintf(p->event, sizeof(p->event), "cpu");
	if (json_object_object_get_ex(answer, "event", &frames)) {
		const char *e = json_object_get_string(frames);

		if (!json_object_is_type(frames, json_type_string) ||
		    (!streq(e, "cpu") && !streq(e, "off-cpu") && !streq(e, "wall") &&
		     !streq(e, "faults")))
			return bad(ret_error, "a malformed event");
		snprintf(p->event, sizeof(p->event), "%s", e);
		p->time = !streq(e, "cpu");
	}
	p->start_ns = (int64_t)start;
	p->end_ns = (int64_t)end;
	r = get_string(answer, "comm", true, &p->comm);
	if (r < 0)
		return r == -ENOMEM ? r : bad(ret_error, "a malformed comm");

	if (!json_object_object_get_ex(answer, "frames", &frames) ||
	    !json_object_is_type(frames, json_type_array) ||
	    !json_object_object_get_ex(answer, "stacks", &stacks) ||
	    !json_object_is_type(stacks, json_type_array))
		return bad(ret_error, "no frames or stacks");
	p->n_frames = json_object_array_length(frames);
	p->frames = calloc(MAX(p->n_frames, (size_t)1), sizeof(ProfileFrame));
	if (!p->frames)
		return -ENOMEM;
	for (size_t i = 0; i < p->n_frames; i++) {
		r = parse_frame(json_object_array_get_idx(frames, i), &p->frames[i]);
		if (r < 0)
			return r == -ENOMEM ? r : bad(ret_error, "frame %zu is malformed", i);
	}
	p->stacks = calloc(MAX(json_object_array_length(stacks), (size_t)1), sizeof(ProfileStack));
	if (!p->stacks)
		return -ENOMEM;
	for (size_t i = 0; i < json_object_array_length(stacks); i++) {
		r = parse_stack(json_object_array_get_idx(stacks, i), p->n_frames, p->samples - sum,
				&p->stacks[i]);
		p->n_stacks = i + 1; /* freed with the profile, also when half parsed */
		if (r < 0)
			return r == -ENOMEM ? r : bad(ret_error, "stack %zu is malformed", i);
		sum += p->stacks[i].samples;
	}
	if (sum + p->truncated_samples != p->samples)
		return bad(ret_error, "the stacks hold %" PRIu64 " samples, %" PRIu64 " expected",
			   sum + p->truncated_samples, p->samples);
	*ret = TAKE_PTR(p);
	return 0;
}
