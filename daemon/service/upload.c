/* SPDX-License-Identifier: MIT */
#include <fnmatch.h>
#include <inttypes.h>
#include <time.h>

#include "base/json-util.h"
#include "base/macro.h"
#include "export/pprof.h"
#include "export/profile.h"
#include "query/query.h"
#include "service/upload.h"

#define QUERY_BUF 2048

/* A label value as the backend's series keys take it: anything outside [A-Za-z0-9._:@/-]
 * (the separators "{}=," and spaces among them) becomes '_'. */
static void put_value(char *out, size_t len, const char *v)
{
	size_t i = 0;

	for (; v && *v && i + 1 < len; v++) {
		char c = *v;

		out[i++] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
					   (c >= '0' && c <= '9') || strchr("._:@/-", c)
				   ? c
				   : '_';
	}
	out[i] = '\0';
}

/* Percent-encodes s for a query string, everything but RFC 3986's unreserved characters. */
static int percent_encode(const char *s, char *out, size_t len)
{
	size_t i = 0;

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (i + 4 > len)
			return -ENAMETOOLONG;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    strchr("-._~", c))
			out[i++] = (char)c;
		else
			i += (size_t)snprintf(out + i, len - i, "%%%02X", c);
	}
	out[i] = '\0';
	return 0;
}

/* Appends ",name=value" (value escaped) to out at *n when value is set. */
static void put_label(char *out, size_t len, size_t *n, const char *name, const char *value)
{
	char escaped[256];
	int k;

	if (!value || !*value || *n >= len)
		return;
	put_value(escaped, sizeof(escaped), value);
	k = snprintf(out + *n, len - *n, "%s=%s,", name, escaped);
	*n += k > 0 ? (size_t)k : 0;
}

/*
 * The series name of a process's group: APP{label=value,...}. The one place that decides a
 * group's labels; unit and container only where the process has them.
 */
static int group_name(const Store *store, const StoreProc *sp, const UploadOptions *o, char *out,
		      size_t len)
{
	char value[256];
	size_t n;
	int k;

	k = snprintf(out, len, "%s{", o->app);
	if (k < 0 || (size_t)k >= len)
		return -ENAMETOOLONG;
	n = (size_t)k;
	if (o->labels & UPLOAD_LABEL_HOST) {
		put_value(value, sizeof(value), o->host);
		k = snprintf(out + n, len - n, "host=%s,", value);
		n += k > 0 ? (size_t)k : 0;
	}
	if (n < len && (o->labels & UPLOAD_LABEL_COMM)) {
		put_value(value, sizeof(value), store_string(store, sp->comm));
		k = snprintf(out + n, len - n, "comm=%s,", value[0] ? value : "_");
		n += k > 0 ? (size_t)k : 0;
	}
	if (n < len && (o->labels & UPLOAD_LABEL_PID)) {
		k = snprintf(out + n, len - n, "pid=%" PRIu32 ",", sp->pid);
		n += k > 0 ? (size_t)k : 0;
	}
	if (o->labels & UPLOAD_LABEL_UNIT)
		put_label(out, len, &n, "unit", store_string(store, sp->unit));
	if (o->labels & UPLOAD_LABEL_CONTAINER)
		put_label(out, len, &n, "container", store_string(store, sp->container));
	if (n >= len)
		return -ENAMETOOLONG;
	if (out[n - 1] == ',')
		n--;
	if (n + 2 > len)
		return -ENAMETOOLONG;
	out[n++] = '}';
	out[n] = '\0';
	return 0;
}

static int build_query(const Store *store, const StoreProc *sp, const Window *w,
		       const UploadOptions *o, char *out, size_t len)
{
	char name[512], encoded[1536];
	int64_t from = w->start_ns / (int64_t)NSEC_PER_SEC;
	int64_t until = (w->end_ns + (int64_t)NSEC_PER_SEC - 1) / (int64_t)NSEC_PER_SEC;
	int k, r;

	r = group_name(store, sp, o, name, sizeof(name));
	if (r >= 0)
		r = percent_encode(name, encoded, sizeof(encoded));
	if (r < 0)
		return r;
	k = snprintf(out, len,
		     "name=%s&from=%" PRId64 "&until=%" PRId64 "&format=pprof&sampleRate=%" PRIu32
		     "&spyName=profq",
		     encoded, from, until, o->frequency);
	return k < 0 || (size_t)k >= len ? -ENAMETOOLONG : 0;
}

/* The gzipped pprof profile of process sp's samples in w, through the `stacks` answer. */
static int build_profile(const Store *store, const Window *w, const StoreProc *sp, uint8_t **ret,
			 size_t *ret_len)
{
	QueryContext ctx = {
		.store = store,
		/* The range [now - 1 ns, now] selects w alone: the next one starts at its end. */
		.now_ns = w->end_ns,
		.viewer = { .uid = 0, .privileged = true, .kernel_names = true },
	};
	_cleanup_json_ json_object *answer = NULL;
	_cleanup_(profile_freep) Profile *p = NULL;
	_cleanup_free_ char *error = NULL;
	Request req;
	int r;

	request_init(&req, COMMAND_STACKS);
	req.pid = sp->pid;
	req.start_ns = sp->start_ns;
	req.has_since = req.has_until = true;
	req.since_ns = 1;
	req.until_ns = 0;
	r = query_answer(&ctx, &req, &answer);
	if (r < 0)
		return r;
	if (answer_error_code(answer, NULL, NULL) >= 0)
		return -ENOENT;
	r = profile_from_json(answer, &p, &error);
	if (r < 0)
		return r;
	return pprof_encode(p, ret, ret_len);
}

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

int upload_window(const Store *store, const Window *w, const UploadOptions *o, UploadFn fn,
		  void *userdata, UploadStats *stats)
{
	uint64_t start = thread_cpu_ns();
	ProcId last = 0;
	int r = 0;

	/* Closed windows are sorted by process: each process once. */
	for (size_t i = 0; i < w->n_entries; i++) {
		_cleanup_free_ uint8_t *body = NULL;
		const StoreProc *sp;
		char query[QUERY_BUF];
		size_t len;

		if (i > 0 && w->entries[i].proc == last)
			continue;
		last = w->entries[i].proc;
		sp = store_proc(store, last);
		if (!sp ||
		    (o->comm_glob &&
		     fnmatch(o->comm_glob, store_string(store, sp->comm) ?: "", 0) != 0) ||
		    (o->unit_glob &&
		     (!sp->unit || fnmatch(o->unit_glob, store_string(store, sp->unit), 0) != 0)))
			continue;
		r = build_query(store, sp, w, o, query, sizeof(query));
		if (r >= 0)
			r = build_profile(store, w, sp, &body, &len);
		if (r == -ENOMEM)
			break;
		if (r < 0) {
			stats->failed++;
			r = 0;
			continue;
		}
		fn(userdata, query, body, len);
		stats->uploads++;
		stats->bytes += len;
	}
	stats->build_ns += thread_cpu_ns() - start;
	return r;
}
