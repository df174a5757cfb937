/* SPDX-License-Identifier: MIT */
/*
 * Uploads of a closed window for the push targets (push.h): one per process with samples in
 * the window, as a gzipped pprof profile (export/pprof.h, the same encoding as `profq pprof`)
 * and the query string of Pyroscope's ingest API (POST /ingest?name=APP{LABELS}&from=&until=
 * &format=pprof&sampleRate=&spyName=profq). The labels are the group's: host, comm and pid as
 * the options choose; uploads whose labels are equal (pid left out) are summed by the backend.
 *
 * Reads the store only. Not thread-safe against a writer of the store.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

typedef enum UploadLabel {
	UPLOAD_LABEL_HOST = 1u << 0,
	UPLOAD_LABEL_COMM = 1u << 1,
	UPLOAD_LABEL_PID = 1u << 2,
	UPLOAD_LABEL_UNIT = 1u << 3,	  /* the systemd unit, where the process has one */
	UPLOAD_LABEL_CONTAINER = 1u << 4, /* the container id, where it has one */
} UploadLabel;

typedef struct UploadOptions {
	const char *app;       /* the application name of every series */
	const char *host;      /* the host label's value */
	unsigned labels;       /* UPLOAD_LABEL_* */
	const char *comm_glob; /* only processes whose comm matches (fnmatch); NULL: all */
	const char *unit_glob; /* only processes of a unit that matches (fnmatch); NULL: all */
	uint32_t frequency;    /* sampleRate, Hz */
} UploadOptions;

typedef struct UploadStats {
	uint64_t uploads;
	uint64_t bytes;	   /* gzipped pprof bytes */
	uint64_t failed;   /* processes whose profile could not be built */
	uint64_t build_ns; /* CPU spent here (the thread's clock) */
} UploadStats;

/* Called once per upload: query without '?', body the gzipped pprof profile (borrowed). */
typedef void (*UploadFn)(void *userdata, const char *query, const uint8_t *body, size_t len);

/*
 * Calls fn for every process group with samples in the closed window w of store. Adds to
 * *stats. 0, or -ENOMEM; a process whose profile fails is skipped and counted.
 */
int upload_window(const Store *store, const Window *w, const UploadOptions *o, UploadFn fn,
		  void *userdata, UploadStats *stats);
