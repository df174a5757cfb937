/* SPDX-License-Identifier: MIT */
/*
 * Profile: the answer of the `stacks` request (every distinct stack of a process in a range,
 * with its sample count, over a table of frames) as C structures, for the exporters: folded
 * stacks, the SVG flame graph (flame.h) and pprof (pprof.h).
 *
 * profile_from_json() checks the answer as hostile input (it may come from a state dir or a
 * daemon of another version): every index in range, every count consistent. The Profile owns
 * copies of all strings. Not thread-safe.
 */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ProfileFrame {
	char *function; /* as the viewer may see it: a name, "module+0xoffset", "[kernel]" */
	char *module;	/* NULL when unknown */
	char *file;	/* the source file of the line executing; NULL when unknown */
	uint32_t line;	/* 0 when unknown */
	bool kernel;
	bool inlined;	     /* inlined into the frame after it (its caller) */
	bool python;	     /* a Python function: module "[python]", file the .py file */
	uint32_t start_line; /* a Python function's first line; 0 when unknown */
} ProfileFrame;

typedef struct ProfileStack {
	uint32_t *frames; /* indexes into Profile.frames, leaf (innermost) first */
	size_t n_frames;
	uint64_t samples; /* > 0 */
} ProfileStack;

typedef struct Profile {
	uint32_t pid; /* 0: the processes a request's labels selected */
	char *comm;   /* the process's name; for pid 0, what selected them ("unit nginx") */
	uint64_t processes, hidden; /* pid 0: the processes summed, those the viewer may not see */
	uint64_t samples;	    /* all samples of the selection; >= the stacks' sum */
	uint64_t truncated_samples; /* samples of stacks the answer left out (size limit) */
	uint64_t period_ns;	    /* sampling period (1e9 / frequency); 1: counts are ns */
	/* counts are weights, one value per stack: nanoseconds (events off-cpu, wall) or
	 * bytes (faults) */
	bool time;
	char event[16];		  /* "cpu", "off-cpu", "wall" */
	int64_t start_ns, end_ns; /* realtime: the range the windows cover */
	ProfileFrame *frames;
	size_t n_frames;
	ProfileStack *stacks; /* hottest first */
	size_t n_stacks;
} Profile;

/* 0, or -EBADMSG with a message in *ret_error (caller frees) for a malformed answer, -ENOMEM. */
int profile_from_json(json_object *answer, Profile **ret, char **ret_error);
Profile *profile_free(Profile *p);

static inline void profile_freep(Profile **p)
{
	profile_free(*p);
}
