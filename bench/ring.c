/* SPDX-License-Identifier: MIT */
/*
 * profq-bench-ring: the profile ring over an hour, for bench/ring.sh.
 *
 *   profq-bench-ring inspect DIR
 *   profq-bench-ring generate [OPTIONS] DIR
 *
 * inspect reads the segment files of a state dir (DIR/segments) with the project's own
 * decoder and prints what they hold, one "key value..." line each: records and bytes by type,
 * the bytes each window cost on disk (its own record plus every definition written for it since
 * the window before), entries, samples and processes per window, stack depths, string lengths,
 * how many frames carry a source file. For a state dir written by the real profqd this gives
 * the shape the generator imitates; for a generated one, the check that it does.
 *
 * generate writes a state dir holding DURATION seconds (default: an hour) of simulated windows
 * ending at the last window boundary before now, so that all of them are inside profqd's
 * default retention when it starts on DIR. It goes through the project's own Store and
 * PersistWriter (libprofq/store/: store.c, persist.c, segment.c), with the segment span
 * profqd uses (a sixth of the retention), so the files are what profqd would have written. The
 * simulated host: PROCESSES processes alive at any time (a share of them kernel threads, a share
 * short-lived and replaced by new ones as they exit), instances of a few dozen programs that
 * share libraries (libc, libpython, libstdc++, the kernel...); each process has 20-200
 * distinct stacks (user depth 10-40, some with kernel frames on top) drawn from its program's
 * stack pool, so instances of one program share stacks as they do in profqd's interned store.
 * Every window takes CPUS x FREQUENCY x WINDOW x BUSY samples, assigned to live processes by a
 * Zipf weight and to their stacks by another, exactly as profqd would count them.
 * Deterministic for a given --seed and end time.
 */
#include <dirent.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <xxhash.h>

#include "base/macro.h"
#include "store/persist.h"
#include "base/procfs.h"
#include "store/segment.h"
#include "store/store.h"
#include "base/timeutil.h"

#define RECORD_OVERHEAD 12 /* type, length, crc */
#define KERNEL_FUNCS 3000

/* ---- statistics ---- */

typedef struct Series {
	double *v;
	size_t n, allocated;
} Series;

static int series_add(Series *s, double v)
{
	if (GREEDY_REALLOC(s->v, s->allocated, s->n + 1) < 0)
		return -ENOMEM;
	s->v[s->n++] = v;
	return 0;
}

static int dbl_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* "KEY median min max mean n" */
static void series_print(const char *key, Series *s)
{
	double sum = 0, med;

	if (s->n == 0) {
		printf("%s nan nan nan nan 0\n", key);
		return;
	}
	qsort(s->v, s->n, sizeof(double), dbl_cmp);
	for (size_t i = 0; i < s->n; i++)
		sum += s->v[i];
	med = s->n % 2 ? s->v[s->n / 2] : (s->v[s->n / 2 - 1] + s->v[s->n / 2]) / 2;
	printf("%s %.1f %.1f %.1f %.1f %zu\n", key, med, s->v[0], s->v[s->n - 1],
	       sum / (double)s->n, s->n);
}

/* ---- inspect ---- */

typedef struct Inspect {
	uint64_t records[SEGMENT_WINDOW + 1], bytes[SEGMENT_WINDOW + 1];
	uint64_t pending; /* definition bytes since the last window */
	bool first_in_segment;
	uint64_t frames_with_file, frames_with_function, frames_kernel, frames_inlined;
	uint64_t string_bytes;
	uint8_t *seen_procs; /* segment-local proc ids seen in the current window */
	size_t n_seen;
	Series window_bytes, window_bytes_first, window_bytes_rest, entries, samples, procs, depth,
		fault_entries, records_per_window;
	uint64_t window_record_bytes;
	int64_t first_start_ns, last_end_ns;
	/* Per segment, by segment-local id: strings, the comm of processes, and whether a stack
	 * was defined since the last window (so the window brought it). */
	char **strs;
	uint32_t *proc_comm;
	uint8_t *stack_new;
	size_t n_strs, n_procs, n_stacks;
	/* New stack definitions by the comm of the process that first used them. */
	struct {
		char *comm;
		uint64_t n;
	} * by_comm;
	size_t n_comms, allocated_comms;
} Inspect;

/* Makes a[id] valid in an array of n elements of size sz, zero-filled. */
static int grow(void *pa, size_t *n, size_t sz, uint32_t id)
{
	void **a = pa;
	size_t m;
	char *b;

	if (id < *n)
		return 0;
	m = MAX((size_t)id + 1, *n * 2);
	b = realloc(*a, m * sz);
	if (!b)
		return -ENOMEM;
	memset(b + *n * sz, 0, (m - *n) * sz);
	*a = b;
	*n = m;
	return 0;
}

static void inspect_segment_done(Inspect *in)
{
	for (size_t i = 0; i < in->n_strs; i++)
		free(in->strs[i]);
	in->strs = mfree(in->strs);
	in->proc_comm = mfree(in->proc_comm);
	in->stack_new = mfree(in->stack_new);
	in->n_strs = in->n_procs = in->n_stacks = 0;
}

static int count_comm(Inspect *in, uint32_t proc)
{
	const char *comm = proc < in->n_procs && in->proc_comm[proc] < in->n_strs
				   ? in->strs[in->proc_comm[proc]]
				   : NULL;

	comm = comm ?: "?";
	for (size_t i = 0; i < in->n_comms; i++)
		if (streq(in->by_comm[i].comm, comm)) {
			in->by_comm[i].n++;
			return 0;
		}
	if (GREEDY_REALLOC(in->by_comm, in->allocated_comms, in->n_comms + 1) < 0)
		return -ENOMEM;
	in->by_comm[in->n_comms].comm = strdup(comm);
	if (!in->by_comm[in->n_comms].comm)
		return -ENOMEM;
	in->by_comm[in->n_comms++].n = 1;
	return 0;
}

static int comm_cmp(const void *a, const void *b)
{
	const typeof(((Inspect *)NULL)->by_comm[0]) *x = a, *y = b;

	return x->n > y->n ? -1 : x->n < y->n;
}

static int on_string(void *userdata, uint32_t id, const char *s, size_t len)
{
	Inspect *in = userdata;

	if (grow(&in->strs, &in->n_strs, sizeof(char *), id) < 0)
		return -ENOMEM;
	free(in->strs[id]);
	in->strs[id] = strndup(s, len);
	if (!in->strs[id])
		return -ENOMEM;
	in->records[SEGMENT_STRING]++;
	in->bytes[SEGMENT_STRING] += RECORD_OVERHEAD + 4 + len;
	in->pending += RECORD_OVERHEAD + 4 + len;
	in->string_bytes += len;
	return 0;
}

static int on_frame(void *userdata, uint32_t id, const StoreFrame *f)
{
	Inspect *in = userdata;

	(void)id;
	in->records[SEGMENT_FRAME]++;
	in->bytes[SEGMENT_FRAME] += RECORD_OVERHEAD + 48;
	in->pending += RECORD_OVERHEAD + 48;
	in->frames_with_file += f->file != 0;
	in->frames_with_function += f->function != 0;
	in->frames_kernel += (f->flags & FRAME_KERNEL) != 0;
	in->frames_inlined += (f->flags & FRAME_INLINED) != 0;
	return 0;
}

static int on_stack(void *userdata, uint32_t id, const uint32_t *frames, size_t n)
{
	Inspect *in = userdata;

	(void)frames;
	if (grow(&in->stack_new, &in->n_stacks, 1, id) < 0)
		return -ENOMEM;
	in->stack_new[id] = 1;
	in->records[SEGMENT_STACK]++;
	in->bytes[SEGMENT_STACK] += RECORD_OVERHEAD + 8 + 4 * n;
	in->pending += RECORD_OVERHEAD + 8 + 4 * n;
	return series_add(&in->depth, (double)n);
}

static int on_proc(void *userdata, const SegmentProc *p)
{
	Inspect *in = userdata;

	if (grow(&in->proc_comm, &in->n_procs, sizeof(uint32_t), p->id) < 0)
		return -ENOMEM;
	in->proc_comm[p->id] = p->p.comm;
	in->records[SEGMENT_PROC]++;
	in->bytes[SEGMENT_PROC] += RECORD_OVERHEAD + 96;
	in->pending += RECORD_OVERHEAD + 96;
	return 0;
}

static int on_window(void *userdata, const SegmentWindow *w)
{
	Inspect *in = userdata;
	uint64_t own = RECORD_OVERHEAD + 52 + 24 * (uint64_t)w->n_entries;
	size_t procs = 0;
	int r;

	in->records[SEGMENT_WINDOW]++;
	in->bytes[SEGMENT_WINDOW] += own;
	in->first_start_ns = MIN(in->first_start_ns, w->start_ns);
	in->last_end_ns = MAX(in->last_end_ns, w->end_ns);
	in->window_record_bytes += own;
	r = series_add(&in->window_bytes, (double)(own + in->pending));
	if (r >= 0)
		r = series_add(in->first_in_segment ? &in->window_bytes_first
						    : &in->window_bytes_rest,
			       (double)(own + in->pending));
	if (r >= 0)
		r = series_add(&in->entries, (double)w->n_entries);
	if (r >= 0)
		r = series_add(&in->samples, (double)w->samples);
	for (size_t i = 0, faults = 0; r >= 0 && i <= w->n_entries; i++) {
		WindowEntry e;

		if (i == w->n_entries) {
			r = series_add(&in->fault_entries, (double)faults);
			break;
		}
		segment_window_entry(w, i, &e);
		faults += e.kind == KIND_FAULTS;
		if (e.stack < in->n_stacks && in->stack_new[e.stack]) {
			in->stack_new[e.stack] = 0;
			if (count_comm(in, e.proc) < 0)
				return -ENOMEM;
		}
		if (e.proc >= in->n_seen) {
			size_t n = MAX((size_t)e.proc + 1, in->n_seen * 2);
			uint8_t *s = realloc(in->seen_procs, n);

			if (!s)
				return -ENOMEM;
			memset(s + in->n_seen, 0, n - in->n_seen);
			in->seen_procs = s;
			in->n_seen = n;
		}
		if (!in->seen_procs[e.proc]) {
			in->seen_procs[e.proc] = 1;
			procs++;
		}
	}
	if (r >= 0)
		r = series_add(&in->procs, (double)procs);
	if (in->n_seen)
		memset(in->seen_procs, 0, in->n_seen);
	in->pending = 0;
	in->first_in_segment = false;
	return r;
}

static int read_all(const char *path, uint8_t **ret, size_t *ret_len)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	char *buf = NULL;
	size_t len = 0;
	int r;

	if (fd < 0)
		return -errno;
	r = procfs_read_fd(fd, SIZE_MAX / 2, &buf, &len);
	if (r < 0)
		return r;
	*ret = (uint8_t *)buf;
	*ret_len = len;
	return 0;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int inspect(const char *dir)
{
	static const SegmentVisitor visitor = {
		.string = on_string,
		.frame = on_frame,
		.stack = on_stack,
		.proc = on_proc,
		.window = on_window,
	};
	static const char *const names[] = { [SEGMENT_STRING] = "string",
					     [SEGMENT_FRAME] = "frame",
					     [SEGMENT_STACK] = "stack",
					     [SEGMENT_PROC] = "proc",
					     [SEGMENT_WINDOW] = "window" };
	_cleanup_free_ char *path = NULL;
	Inspect in = { .first_start_ns = INT64_MAX, .last_end_ns = INT64_MIN };
	char **files = NULL;
	size_t n_files = 0, allocated = 0;
	uint64_t total = 0, headers = 0, frames;
	struct dirent *de;
	DIR *d;
	int r = 0;

	if (asprintf(&path, "%s/segments", dir) < 0)
		return -ENOMEM;
	d = opendir(path);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);

		if (len < 6 || strcmp(de->d_name + len - 6, ".pqseg") != 0)
			continue;
		if (GREEDY_REALLOC(files, allocated, n_files + 1) < 0) {
			closedir(d);
			return -ENOMEM;
		}
		files[n_files] = strdup(de->d_name);
		if (!files[n_files++]) {
			closedir(d);
			return -ENOMEM;
		}
	}
	closedir(d);
	qsort(files, n_files, sizeof(char *), name_cmp);

	for (size_t i = 0; i < n_files; i++) {
		_cleanup_free_ char *file = NULL;
		_cleanup_free_ uint8_t *buf = NULL;
		SegmentParseResult res = { 0 };
		size_t len = 0;

		if (asprintf(&file, "%s/%s", path, files[i]) < 0) {
			r = -ENOMEM;
			break;
		}
		r = read_all(file, &buf, &len);
		if (r < 0) {
			fprintf(stderr, "Failed to read '%s': %s\n", file, strerror(-r));
			break;
		}
		in.pending = 0;
		in.first_in_segment = true;
		r = segment_parse(buf, len, &visitor, &in, &res);
		inspect_segment_done(&in);
		if (r < 0 || res.tail_error) {
			fprintf(stderr, "Segment '%s': %s after %zu of %zu bytes\n", file,
				strerror(-(r < 0 ? r : res.tail_error)), res.good_bytes, len);
			if (r < 0)
				break;
		}
		total += len;
		headers += SEGMENT_HEADER_SIZE;
	}
	for (size_t i = 0; i < n_files; i++)
		free(files[i]);
	free(files);
	if (r < 0)
		return r;

	printf("segments %zu\n", n_files);
	printf("bytes %" PRIu64 "\n", total);
	printf("windows %" PRIu64 "\n", in.records[SEGMENT_WINDOW]);
	printf("span_s %.1f\n",
	       in.records[SEGMENT_WINDOW]
		       ? (double)(in.last_end_ns - in.first_start_ns) / NSEC_PER_SEC
		       : 0.0);
	printf("bytes_per_window %.1f\n",
	       in.records[SEGMENT_WINDOW] ? (double)total / (double)in.records[SEGMENT_WINDOW]
					  : 0.0);
	for (int t = SEGMENT_STRING; t <= SEGMENT_WINDOW; t++)
		printf("records_%s %" PRIu64 " bytes %" PRIu64 " share %.3f\n", names[t],
		       in.records[t], in.bytes[t],
		       total ? (double)in.bytes[t] / (double)total : 0.0);
	printf("header_bytes %" PRIu64 "\n", headers);
	frames = in.records[SEGMENT_FRAME];
	printf("frames_with_function %.3f\n",
	       frames ? (double)in.frames_with_function / frames : 0.0);
	printf("frames_with_file %.3f\n", frames ? (double)in.frames_with_file / frames : 0.0);
	printf("frames_kernel %.3f\n", frames ? (double)in.frames_kernel / frames : 0.0);
	printf("frames_inlined %.3f\n", frames ? (double)in.frames_inlined / frames : 0.0);
	printf("string_mean_len %.1f\n",
	       in.records[SEGMENT_STRING] ? (double)in.string_bytes / in.records[SEGMENT_STRING]
					  : 0.0);
	series_print("window_disk_bytes", &in.window_bytes);
	series_print("window_disk_bytes_first_in_segment", &in.window_bytes_first);
	series_print("window_disk_bytes_later_in_segment", &in.window_bytes_rest);
	series_print("window_entries", &in.entries);
	series_print("window_samples", &in.samples);
	series_print("window_fault_entries", &in.fault_entries);
	series_print("window_processes", &in.procs);
	series_print("stack_depth", &in.depth);
	if (in.n_comms > 1)
		qsort(in.by_comm, in.n_comms, sizeof(in.by_comm[0]), comm_cmp);
	for (size_t i = 0; i < in.n_comms; i++) {
		if (i < 12)
			printf("new_stacks_by_comm %s %" PRIu64 "\n", in.by_comm[i].comm,
			       in.by_comm[i].n);
		free(in.by_comm[i].comm);
	}
	free(in.by_comm);
	free(in.seen_procs);
	free(in.window_bytes.v);
	free(in.window_bytes_first.v);
	free(in.window_bytes_rest.v);
	free(in.entries.v);
	free(in.samples.v);
	free(in.fault_entries.v);
	free(in.procs.v);
	free(in.depth.v);
	return 0;
}

/* ---- generate ---- */

typedef struct Options {
	uint32_t processes, programs, window_s, duration_s, frequency, cpus;
	uint32_t stacks_min, stacks_max, depth_min, depth_max, life_min_s, life_max_s;
	double busy, kthreads, churn, active, kernel_share, debug_share, unresolved, fresh;
	uint64_t seed, span_s;
} Options;

typedef struct Rng {
	uint64_t s;
} Rng;

/* splitmix64: small, fast, and good enough to draw shapes from. */
static uint64_t rng_next(Rng *r)
{
	uint64_t z = (r->s += 0x9E3779B97F4A7C15ULL);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

static Rng rng_for(uint64_t a, uint64_t b, uint64_t c)
{
	const uint64_t v[3] = { a, b, c };

	return (Rng){ XXH3_64bits(v, sizeof(v)) };
}

static double rng_unit(Rng *r)
{
	return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

/* Uniform in [lo, hi]. */
static uint32_t rng_range(Rng *r, uint32_t lo, uint32_t hi)
{
	return lo + (uint32_t)(rng_next(r) % ((uint64_t)hi - lo + 1));
}

/* In [0, n), small values much more often than large ones. */
static uint32_t rng_skewed(Rng *r, uint32_t n, double power)
{
	return MIN((uint32_t)(n * pow(rng_unit(r), power)), n - 1);
}

static const char *rng_pick(Rng *r, const char *const *v, size_t n)
{
	return v[rng_next(r) % n];
}

static const char *const words[] = {
	"alloc",  "buffer", "parse",	"read",	   "write",    "hash",	  "table",   "insert",
	"lookup", "event",  "loop",	"poll",	   "dispatch", "request", "handle",  "send",
	"recv",	  "queue",  "lock",	"unlock",  "flush",    "commit",  "index",   "scan",
	"merge",  "sort",   "deflate",	"encode",  "decode",   "frame",	  "eval",    "call",
	"object", "dict",   "list",	"string",  "format",   "log",	  "signal",  "timer",
	"task",	  "worker", "thread",	"cache",   "page",     "node",	  "tree",    "json",
	"http",	  "socket", "conn",	"session", "query",    "plan",	  "exec",    "tuple",
	"heap",	  "visit",  "update",	"init",	   "free",     "copy",	  "compare", "match",
	"token",  "stream", "file",	"block",   "map",      "set",	  "get",     "resolve",
	"load",	  "store",  "apply",	"check",   "validate", "render",  "emit",    "sync",
	"wait",	  "notify", "schedule", "backend", "executor", "slot",	  "vector",  "chunk",
};

static const char *const upper_words[] = {
	"Buffer", "Parser",  "Request", "Handler", "Queue",   "Table",	  "Index",     "Session",
	"Stream", "Channel", "Node",	"Tree",	   "Planner", "Executor", "Cache",     "Worker",
	"Object", "Frame",   "Codec",	"Reader",  "Writer",  "Pool",	  "Scheduler", "Map",
};

typedef enum NameStyle {
	STYLE_C,
	STYLE_CXX,
	STYLE_PY,
	STYLE_KERNEL,
} NameStyle;

#define SITES_MAX 3

typedef struct Func {
	FrameId sites[SITES_MAX];   /* one frame per call site (return addresses differ) */
	FrameId inlined[SITES_MAX]; /* a call inlined at that site: an extra frame, or 0 */
	uint32_t n_sites;
} Func;

typedef struct Module {
	NameStyle style;
	bool kernel;
	Func *funcs;
	uint32_t n_funcs;
} Module;

/* A function name and, for C++, its mangled symbol. */
static void make_name(Rng *r, NameStyle style, const char *prefix, uint32_t i, char *name,
		      size_t len, char *symbol, size_t symlen)
{
	const char *a = rng_pick(r, words, ARRAY_SIZE(words)),
		   *b = rng_pick(r, words, ARRAY_SIZE(words));
	const char *c = rng_pick(r, upper_words, ARRAY_SIZE(upper_words));

	*symbol = '\0';
	switch (style) {
	case STYLE_CXX: {
		const char *d = rng_pick(r, upper_words, ARRAY_SIZE(upper_words));

		/* Templates make C++ names long, and their mangled symbols longer. */
		snprintf(name, len, "%s::%s%u<%s::%s, std::allocator<%s::%s> >::%s_%s(%s const&)",
			 prefix, c, i % 97, prefix, d, prefix, d, a, b, d);
		snprintf(symbol, symlen, "_ZN%zu%s%zu%s%uIN%zu%s%zu%sESaIS2_EE%zu%s_%sERKS2_",
			 strlen(prefix), prefix, strlen(c) + (i % 97 >= 10 ? 2 : 1), c, i % 97,
			 strlen(prefix), prefix, strlen(d), d, strlen(a) + strlen(b) + 1, a, b);
		break;
	}
	case STYLE_PY:
		snprintf(name, len, "_Py%s_%s%s%u", c, a, b, i);
		break;
	case STYLE_KERNEL:
		if (i % 5 == 0)
			snprintf(name, len, "__x64_sys_%s%u", a, i);
		else
			snprintf(name, len, "%s_%s_%s%u", a, b,
				 rng_pick(r, words, ARRAY_SIZE(words)), i);
		break;
	case STYLE_C:
		snprintf(name, len, "%s_%s_%s%u", prefix, a, b, i);
		break;
	}
}

static Module *module_free(Module *m)
{
	if (m)
		free(m->funcs);
	free(m);
	return NULL;
}

static void module_freep(Module **m)
{
	module_free(*m);
}

/*
 * A binary's functions and their frames, interned up front (the store holds them; only those
 * stacks use reach the segments). debug: file:line and inlined calls from DWARF; unresolved:
 * the share of functions without a symbol (module+offset frames).
 */
static int module_new(Store *s, Rng *r, const char *name, NameStyle style, bool kernel, bool debug,
		      double unresolved, uint32_t n_funcs, Module **ret)
{
	_cleanup_(module_freep) Module *m = calloc(1, sizeof(Module));
	char prefix[16], dirs[8][64];
	StrId module;
	int k = 0;

	if (!m)
		return -ENOMEM;
	m->funcs = calloc(n_funcs, sizeof(Func));
	if (!m->funcs)
		return -ENOMEM;
	m->style = style;
	m->kernel = kernel;
	m->n_funcs = n_funcs;
	/* A short identifier prefix from the module name ("libfoo.so.1" -> "foo"). */
	for (const char *p = strncmp(name, "lib", 3) == 0 ? name + 3 : name; *p && k < 8; p++)
		if ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9'))
			prefix[k++] = *p;
		else if (*p == '.')
			break;
	prefix[k] = '\0';
	if (!k)
		snprintf(prefix, sizeof(prefix), "m");
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++)
		snprintf(dirs[i], sizeof(dirs[i]), "/usr/src/%s-1.2.3/%s/%s", prefix,
			 rng_pick(r, words, ARRAY_SIZE(words)),
			 rng_pick(r, words, ARRAY_SIZE(words)));
	if (store_intern_string(s, kernel ? "[kernel.kallsyms]" : name, &module) < 0)
		return -ENOMEM;
	for (uint32_t i = 0; i < n_funcs; i++) {
		char fname[200], symbol[200], file[160];
		/* The first few functions are entry points (_start, main...): always named. */
		bool named = i < 16 || rng_unit(r) >= unresolved;
		StrId fn = 0, sym = 0, fileid = 0;
		uint32_t decl = 0;
		int rr = 0;

		make_name(r, style, prefix, i, fname, sizeof(fname), symbol, sizeof(symbol));
		if (named)
			rr = store_intern_string(s, fname, &fn);
		if (rr >= 0 && named && *symbol)
			rr = store_intern_string(s, symbol, &sym);
		if (rr >= 0 && named && debug) {
			/* Source files hold a dozen functions each. */
			snprintf(file, sizeof(file), "%s/%s_%u.c",
				 dirs[(i / 12) % ARRAY_SIZE(dirs)],
				 words[(i / 12) % ARRAY_SIZE(words)], i / 12);
			rr = store_intern_string(s, file, &fileid);
			decl = rng_range(r, 10, 3000);
		}
		if (rr < 0)
			return -ENOMEM;
		m->funcs[i].n_sites = rng_range(r, 1, SITES_MAX);
		for (uint32_t j = 0; j < m->funcs[i].n_sites; j++) {
			StoreFrame f = {
				.function = fn,
				.module = module,
				.file = fileid,
				.line = fileid ? decl + 1 + rng_range(r, 0, 80) : 0,
				.flags = kernel ? FRAME_KERNEL : 0,
				.address = (kernel ? 0xffffffff81000000ULL : 0x1000ULL) +
					   (uint64_t)i * 0x240 + j * 0x31 + 5,
				.symbol = sym,
				.decl_file = fileid,
				.decl_line = decl,
			};

			if (store_intern_frame(s, &f, &m->funcs[i].sites[j]) < 0)
				return -ENOMEM;
			/* With DWARF, a third of the call sites are in code inlined there. */
			if (fileid && rng_unit(r) < 1.0 / 3) {
				f.flags |= FRAME_INLINED;
				f.line = decl + 100 + rng_range(r, 0, 400);
				f.decl_line = decl + 90;
				if (store_intern_frame(s, &f, &m->funcs[i].inlined[j]) < 0)
					return -ENOMEM;
			}
		}
		store_string_unref(s, fn);
		store_string_unref(s, sym);
		store_string_unref(s, fileid);
	}
	store_string_unref(s, module);
	*ret = TAKE_PTR(m);
	return 0;
}

/* One call of a path: the function called, in its module. */
typedef struct Call {
	const Module *m;
	uint32_t f;
} Call;

typedef struct Path {
	Call *calls; /* outermost first */
	uint32_t n;
	uint32_t kernel; /* user paths: index+1 of the syscall path on top, 0 for none */
} Path;

typedef struct Pool {
	Path *paths;
	uint32_t n;
} Pool;

/* How a pool's paths begin and go on. */
typedef struct Walk {
	Call root[4];
	uint32_t n_root;
	const Module *body; /* where the path goes on: the binary, the kernel */
	const Module *libs[8];
	uint32_t n_libs;
	bool python; /* the body alternates with the interpreter's eval loop */
	const Module *interp;
	uint32_t depth_min, depth_max;
} Walk;

/* The function a call makes from (m, f): few callees per function, as in real call graphs. */
/*
 * The function a call makes from (m, f): few callees per function, as in real call graphs; or,
 * with any_callee, any function of the module (a stack never seen before: JIT code, deep
 * recursion, an interpreter's variety).
 */
static Call next_call(const Walk *wk, Rng *r, Call from, uint32_t depth, uint32_t target,
		      bool any_callee)
{
	uint64_t h = any_callee ? rng_next(r)
				: XXH3_64bits(&from.f, sizeof(from.f)) + rng_range(r, 0, 2);
	Call c = { from.m, (uint32_t)(h % from.m->n_funcs) };

	/* Near the leaf, into a library (memcpy, malloc, a lock...); then stay there. */
	if (from.m == wk->body && wk->n_libs && depth + 1 + rng_range(r, 0, 3) >= target) {
		c.m = wk->libs[rng_range(r, 0, wk->n_libs - 1)];
		c.f = (uint32_t)(h % c.m->n_funcs);
	} else if (wk->python && from.m == wk->body && rng_unit(r) < 0.6) {
		c = (Call){ wk->interp, rng_unit(r) < 0.7 ? 7 : 11 }; /* the eval loop */
	} else if (wk->python && from.m == wk->interp) {
		c = (Call){ wk->body, (uint32_t)(h % wk->body->n_funcs) };
	}
	return c;
}

/* A path that keeps the outer part of b (or starts at the root without b) and goes on
 * somewhere else for a few calls. p->calls holds wk->depth_max calls. */
static void path_grow(const Walk *wk, Rng *r, const Path *b, bool any_callee, Path *p)
{
	uint32_t target = rng_range(r, wk->depth_min, wk->depth_max), keep;

	if (b) {
		keep = b->n > wk->n_root + 1 ? b->n - rng_range(r, 1, MIN(8, b->n - wk->n_root))
					     : b->n;
		memcpy(p->calls, b->calls, keep * sizeof(Call));
		target = MAX(keep + rng_range(r, 1, 8), wk->depth_min);
		target = MIN(target, wk->depth_max);
	} else {
		memcpy(p->calls, wk->root, wk->n_root * sizeof(Call));
		keep = wk->n_root;
	}
	p->n = keep;
	while (p->n < target) {
		p->calls[p->n] = next_call(wk, r, p->calls[p->n - 1], p->n, target, any_callee);
		p->n++;
	}
}

/*
 * n paths: the first one walks from the root; each later one takes an earlier one, keeps its
 * outer part and goes on somewhere else for a few calls. So stacks share long prefixes and
 * differ near the leaf, and a new stack brings only a few frames no other stack has.
 */
static int pool_build(const Walk *wk, Rng *r, uint32_t n, Pool *ret)
{
	Path *paths = calloc(n, sizeof(Path));

	if (!paths)
		return -ENOMEM;
	for (uint32_t k = 0; k < n; k++) {
		paths[k].calls = calloc(wk->depth_max, sizeof(Call));
		if (!paths[k].calls) {
			*ret = (Pool){ paths, k };
			return -ENOMEM;
		}
		path_grow(wk, r,
			  k > 0 && rng_unit(r) < 0.95 ? &paths[rng_range(r, 0, k - 1)] : NULL,
			  false, &paths[k]);
	}
	*ret = (Pool){ paths, n };
	return 0;
}

static void pool_done(Pool *p)
{
	for (uint32_t i = 0; i < p->n; i++)
		free(p->paths[i].calls);
	free(p->paths);
	*p = (Pool){ 0 };
}

/* Appends the frames of a path, outermost first: each call's site depends on what it calls. */
static size_t path_frames(const Path *p, uint64_t leaf_salt, FrameId *out, size_t max)
{
	size_t n = 0;

	for (uint32_t i = 0; i < p->n && n + 2 <= max; i++) {
		const Func *f = &p->calls[i].m->funcs[p->calls[i].f];
		uint64_t salt = i + 1 < p->n ? p->calls[i + 1].f : leaf_salt;
		uint32_t j = (uint32_t)(salt % f->n_sites);

		out[n++] = f->sites[j];
		if (f->inlined[j])
			out[n++] = f->inlined[j];
	}
	return n;
}

typedef struct Program {
	char comm[16];
	char cmdline[512];
	bool kthread;
	Module *bin;
	uint32_t threads;
	StrId thread_names[16];
	Walk walk;	    /* how its stacks go */
	Pool pool;	    /* its distinct stacks */
	StackId *stacks;    /* interned on first use; 0: not yet */
	bool *kernel_stack; /* the stack has kernel frames on top */
} Program;

typedef struct World {
	Options o;
	Store *store;
	Module *kernel;
	Module *libs[16];
	size_t n_libs;
	Pool syscalls, kworks; /* kernel paths: under a system call, in a kernel thread */
	Walk kwalk;	       /* how the kernel threads' go */
	Program *programs;
	size_t n_programs;
	uint64_t boot_id;
	int64_t boot_real_ns;
} World;

static const struct {
	const char *name;
	NameStyle style;
	uint32_t funcs;
	bool debug; /* libc6-dbg and friends are often installed: DWARF for some libraries */
} lib_specs[] = {
	{ "libc.so.6", STYLE_C, 2400, true },
	{ "ld-linux-x86-64.so.2", STYLE_C, 250, true },
	{ "libm.so.6", STYLE_C, 500, false },
	{ "libstdc++.so.6.0.30", STYLE_CXX, 3000, false },
	{ "libpython3.11.so.1.0", STYLE_PY, 4000, true },
	{ "libssl.so.3", STYLE_C, 900, false },
	{ "libcrypto.so.3", STYLE_C, 3500, false },
	{ "libz.so.1.2.13", STYLE_C, 120, false },
	{ "libsystemd.so.0.35.0", STYLE_C, 1200, false },
	{ "libglib-2.0.so.0.7400.6", STYLE_C, 1800, false },
	{ "libpq.so.5.15", STYLE_C, 400, false },
	{ "libuv.so.1.0.0", STYLE_C, 300, false },
};
#define LIB_LIBC 0
#define LIB_LD 1
#define LIB_PYTHON 4

static const char *const program_names[] = {
	"postgres",
	"python3",
	"nginx",
	"bash",
	"sshd",
	"node",
	"java",
	"redis-server",
	"systemd",
	"systemd-journal",
	"dockerd",
	"containerd",
	"cron",
	"rsyslogd",
	"envoy",
	"mysqld",
	"gunicorn",
	"celery",
	"prometheus",
	"grafana",
	"haproxy",
	"memcached",
	"php-fpm",
	"ruby",
	"sidekiq",
	"kubelet",
	"etcd",
	"consul",
	"vault",
	"fluent-bit",
	"node_exporter",
	"chronyd",
	"dbus-daemon",
	"polkitd",
	"udisksd",
	"snapd",
	"unattended-upgr",
	"gcc",
	"cc1",
	"ld",
	"make",
	"git",
};

static void world_done(World *w)
{
	for (size_t i = 0; i < w->n_programs; i++) {
		Program *p = &w->programs[i];

		for (uint32_t k = 0; p->stacks && k < p->pool.n; k++)
			store_stack_unref(w->store, p->stacks[k]);
		for (uint32_t t = 0; t < ARRAY_SIZE(p->thread_names); t++)
			store_string_unref(w->store, p->thread_names[t]);
		pool_done(&p->pool);
		free(p->stacks);
		free(p->kernel_stack);
		module_free(p->bin);
	}
	free(w->programs);
	pool_done(&w->syscalls);
	pool_done(&w->kworks);
	for (size_t i = 0; i < w->n_libs; i++)
		module_free(w->libs[i]);
	module_free(w->kernel);
}

static int program_build(World *w, Program *p, size_t i)
{
	const Options *o = &w->o;
	Rng r = rng_for(o->seed, 2, i);
	const char *base = program_names[(i - 1) % ARRAY_SIZE(program_names)];
	bool python = strstr(base, "python") || strstr(base, "gunicorn") ||
		      strstr(base, "celery") || strstr(base, "unattended");
	Walk wk = { .depth_min = o->depth_min, .depth_max = o->depth_max, .python = python };
	char bin[64];
	int k;

	if (i <= ARRAY_SIZE(program_names))
		snprintf(p->comm, sizeof(p->comm), "%s", base);
	else
		snprintf(p->comm, sizeof(p->comm), "%.10s-%u", base, (unsigned)(i % 1000));
	/* Command lines run long: paths, options, a job's arguments. */
	snprintf(p->cmdline, sizeof(p->cmdline),
		 "/usr/bin/%s --config /etc/%s/%s.conf --log-level info --%s-dir /var/lib/%s/%s "
		 "%s --%s %s-%s",
		 python ? "python3.11 -m app.worker" : p->comm, p->comm,
		 rng_pick(&r, words, ARRAY_SIZE(words)), rng_pick(&r, words, ARRAY_SIZE(words)),
		 p->comm, rng_pick(&r, words, ARRAY_SIZE(words)), python ? "--queue" : "--workers",
		 rng_pick(&r, words, ARRAY_SIZE(words)), rng_pick(&r, words, ARRAY_SIZE(words)),
		 rng_pick(&r, words, ARRAY_SIZE(words)));
	snprintf(bin, sizeof(bin), "%s", python ? "python3.11" : p->comm);
	/* The program's own binary (for python the script's "functions" live in it too: a
	 * stand-in for what profq shows of interpreted code). */
	k = module_new(w->store, &r, bin, rng_unit(&r) < 0.3 ? STYLE_CXX : STYLE_C, false,
		       rng_unit(&r) < o->debug_share, o->unresolved,
		       (uint32_t)(200.0 * pow(20.0, rng_unit(&r))), &p->bin);
	if (k < 0)
		return k;
	wk.body = p->bin;
	wk.interp = w->libs[LIB_PYTHON];
	/* _start -> __libc_start_main -> main */
	wk.root[wk.n_root++] = (Call){ p->bin, 0 };
	wk.root[wk.n_root++] = (Call){ w->libs[LIB_LIBC], 0 };
	wk.root[wk.n_root++] = (Call){ python ? w->libs[LIB_PYTHON] : p->bin, 1 };
	wk.libs[wk.n_libs++] = w->libs[LIB_LIBC];
	wk.libs[wk.n_libs++] = w->libs[LIB_LD];
	if (python)
		wk.libs[wk.n_libs++] = w->libs[LIB_PYTHON];
	for (uint32_t extra = rng_range(&r, 0, 3); extra > 0; extra--) {
		const Module *m = w->libs[rng_range(&r, 2, (uint32_t)w->n_libs - 1)];
		bool dup = false;

		for (uint32_t j = 0; j < wk.n_libs; j++)
			dup |= wk.libs[j] == m;
		if (!dup)
			wk.libs[wk.n_libs++] = m;
	}
	p->walk = wk;
	k = pool_build(&wk, &r, 2 * o->stacks_max, &p->pool);
	if (k < 0)
		return k;
	/* A share of the stacks end in a system call: which one, hot ones more often. */
	for (uint32_t s = 0; s < p->pool.n; s++)
		if (rng_unit(&r) < o->kernel_share)
			p->pool.paths[s].kernel = 1 + rng_skewed(&r, w->syscalls.n, 3.0);
	p->threads = rng_unit(&r) < 0.6 ? 1 : rng_range(&r, 2, 16);
	for (uint32_t t = 0; t < p->threads; t++) {
		char name[32];

		if (t == 0)
			snprintf(name, sizeof(name), "%s", p->comm);
		else
			snprintf(name, sizeof(name), "%.8s-wrk%u", p->comm, t);
		if (store_intern_string(w->store, name, &p->thread_names[t]) < 0)
			return -ENOMEM;
	}
	return 0;
}

static int world_build(World *w)
{
	const Options *o = &w->o;
	Rng r = rng_for(o->seed, 1, 0);
	Walk wk;
	int k;

	/* The kernel: one big module every process shares. */
	k = module_new(w->store, &r, "vmlinux", STYLE_KERNEL, true, false, 0.0, KERNEL_FUNCS,
		       &w->kernel);
	if (k < 0)
		return k;
	for (size_t i = 0; i < ARRAY_SIZE(lib_specs); i++) {
		k = module_new(w->store, &r, lib_specs[i].name, lib_specs[i].style, false,
			       lib_specs[i].debug, w->o.unresolved / 4, lib_specs[i].funcs,
			       &w->libs[w->n_libs]);
		if (k < 0)
			return k;
		w->n_libs++;
	}
	/* entry_SYSCALL_64 -> do_syscall_64 -> ...; ret_from_fork -> kthread -> worker_thread */
	wk = (Walk){ .root = { { w->kernel, 0 }, { w->kernel, 1 } },
		     .n_root = 2,
		     .body = w->kernel,
		     .depth_min = 4,
		     .depth_max = 18 };
	k = pool_build(&wk, &r, 600, &w->syscalls);
	if (k < 0)
		return k;
	wk = (Walk){ .root = { { w->kernel, 2 }, { w->kernel, 3 }, { w->kernel, 4 } },
		     .n_root = 3,
		     .body = w->kernel,
		     .depth_min = 5,
		     .depth_max = 14 };
	w->kwalk = wk;
	k = pool_build(&wk, &r, 200, &w->kworks);
	if (k < 0)
		return k;

	/* Programs: the first runs the kernel threads, the others are user programs. */
	w->n_programs = o->programs + 1;
	w->programs = calloc(w->n_programs, sizeof(Program));
	if (!w->programs)
		return -ENOMEM;
	for (size_t i = 0; i < w->n_programs; i++) {
		Program *p = &w->programs[i];

		if (i == 0) {
			p->kthread = true;
			p->threads = 1;
			p->pool = w->kworks;
			p->walk = w->kwalk;
			w->kworks = (Pool){ 0 };
		} else {
			k = program_build(w, p, i);
			if (k < 0)
				return k;
		}
		p->stacks = calloc(p->pool.n, sizeof(StackId));
		p->kernel_stack = calloc(p->pool.n, sizeof(bool));
		if (!p->stacks || !p->kernel_stack)
			return -ENOMEM;
	}
	return 0;
}

/* Stack k of program p, interned on first use. */
static int program_stack(World *w, Program *p, uint32_t k, StackId *ret, bool *ret_kernel)
{
	FrameId outer[STORE_STACK_MAX], leaf_first[STORE_STACK_MAX];
	const Path *path = &p->pool.paths[k];
	size_t n;
	int r;

	if (!p->stacks[k]) {
		n = path_frames(path, k, outer, ARRAY_SIZE(outer));
		p->kernel_stack[k] = p->kthread || path->kernel;
		if (path->kernel)
			n += path_frames(&w->syscalls.paths[path->kernel - 1], k, outer + n,
					 ARRAY_SIZE(outer) - n);
		for (size_t i = 0; i < n; i++)
			leaf_first[i] = outer[n - 1 - i];
		r = store_intern_stack(w->store, leaf_first, n, &p->stacks[k]);
		if (r < 0)
			return r;
	}
	*ret = p->stacks[k];
	*ret_kernel = p->kernel_stack[k];
	return 0;
}

/* A stack nobody had: stack k of p with its inner part redone at random. A new reference. */
static int fresh_stack(World *w, Program *p, uint32_t k, Rng *r, StackId *ret, bool *ret_kernel)
{
	FrameId outer[STORE_STACK_MAX], leaf_first[STORE_STACK_MAX];
	const Path *base = &p->pool.paths[k];
	_cleanup_free_ Call *calls = calloc(p->walk.depth_max, sizeof(Call));
	Path path = { .calls = calls, .kernel = base->kernel };
	size_t n;

	if (!calls)
		return -ENOMEM;
	path_grow(&p->walk, r, base, true, &path);
	n = path_frames(&path, rng_next(r), outer, ARRAY_SIZE(outer));
	if (path.kernel)
		n += path_frames(&w->syscalls.paths[path.kernel - 1], k, outer + n,
				 ARRAY_SIZE(outer) - n);
	for (size_t i = 0; i < n; i++)
		leaf_first[i] = outer[n - 1 - i];
	*ret_kernel = p->kthread || path.kernel;
	return store_intern_stack(w->store, leaf_first, n, ret);
}

typedef struct Proc {
	Program *prog;
	uint32_t pid;
	int64_t start_ns, exit_ns; /* exit_ns: INT64_MAX when it outlives the run */
	ProcId id;		   /* 0 until it is in the store */
	bool exited;
	uint32_t n_stacks;
	uint32_t *stacks; /* indices into the program's pool */
	double *cum;	  /* cumulative weights of its stacks */
	double weight;
	uint64_t user, kernel; /* samples */
	char comm[16];
} Proc;

/* A process's stacks: K of its program's pool, the first ones most often (instances of a
 * program share their hot stacks), and a Zipf weight for each. */
static int proc_init(World *w, Proc *pr, Rng *r)
{
	Program *p = pr->prog;
	uint32_t k = p->kthread ? rng_range(r, 2, 12)
				: rng_range(r, w->o.stacks_min, w->o.stacks_max);
	double sum = 0;

	pr->stacks = calloc(k, sizeof(uint32_t));
	pr->cum = calloc(k, sizeof(double));
	if (!pr->stacks || !pr->cum)
		return -ENOMEM;
	for (uint32_t i = 0; i < k; i++) {
		for (int tries = 0; tries < 20; tries++) {
			uint32_t c = rng_skewed(r, p->pool.n, 2.0);
			bool dup = false;

			for (uint32_t j = 0; j < pr->n_stacks && !dup; j++)
				dup = pr->stacks[j] == c;
			if (!dup) {
				pr->stacks[pr->n_stacks++] = c;
				break;
			}
		}
	}
	for (uint32_t i = 0; i < pr->n_stacks; i++) {
		sum += 1.0 / (i + 1.0);
		pr->cum[i] = sum;
	}
	if (p->kthread)
		snprintf(pr->comm, sizeof(pr->comm), "kworker/%u:%u", (unsigned)rng_range(r, 0, 1),
			 (unsigned)rng_range(r, 0, 9));
	else
		snprintf(pr->comm, sizeof(pr->comm), "%s", p->comm);
	return 0;
}

static void proc_done(Proc *pr)
{
	free(pr->stacks);
	free(pr->cum);
}

static size_t pick(const double *cum, size_t n, double u)
{
	size_t lo = 0, hi = n - 1;
	double x = u * cum[n - 1];

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (cum[mid] < x)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int proc_add(World *w, Proc *pr)
{
	StoreProc sp = {
		.pid = pr->pid,
		.ppid = 1,
		.uid = pr->prog->kthread || pr->pid % 2 ? 0 : 1000,
		.flags = pr->prog->kthread ? PROC_KTHREAD : 0,
		.start_ns = pr->start_ns,
		.boot_id = w->boot_id,
		/* As from an exec event: boot-time ns (kept positive for processes older than
		 * this boot). */
		.start_boot_ns = (uint64_t)MAX(pr->start_ns - w->boot_real_ns,
					       (int64_t)NSEC_PER_SEC),
	};
	int r;

	r = store_intern_string(w->store, pr->comm, &sp.comm);
	if (r >= 0 && !pr->prog->kthread)
		r = store_intern_string(w->store, pr->prog->cmdline, &sp.cmdline);
	if (r >= 0)
		r = store_proc_add(w->store, &sp, &pr->id);
	store_string_unref(w->store, sp.comm);
	store_string_unref(w->store, sp.cmdline);
	return r;
}

/* Its exit, as profqd records it from the exit event: time, status, the kernel's figures. */
static void proc_exit(World *w, Proc *pr, uint64_t period_ns)
{
	StoreProc *sp;

	pr->exited = true;
	if (!pr->id)
		return;
	sp = store_proc_mut(w->store, pr->id);
	sp->exit_ns = pr->exit_ns;
	sp->exit_code = 0;
	sp->user_ns = pr->user * period_ns;
	sp->sys_ns = pr->kernel * period_ns;
	sp->flags |= PROC_EXITED | PROC_ACCOUNTING;
	/* Its windows hold it from now on. */
	store_proc_unref(w->store, pr->id);
}

static uint64_t read_boot_id(void)
{
	_cleanup_free_ char *id = NULL;
	size_t len;

	/* As profqd's proctable_boot_id(). */
	if (procfs_read_file("/proc/sys/kernel/random/boot_id", 128, &id, &len) < 0)
		return 0;
	return XXH3_64bits(id, len);
}

typedef struct Run {
	Proc *procs;
	size_t n, allocated;
} Run;

static void run_done(Run *run)
{
	for (size_t i = 0; i < run->n; i++)
		proc_done(&run->procs[i]);
	free(run->procs);
}

/*
 * Processes: each slot holds one process at a time. Kernel threads and most user processes
 * live through the run; churn slots run short-lived processes back to back. A share of the
 * user processes is active (a Zipf weight); the others sleep and are sampled now and then.
 */
static int run_plan(World *w, int64_t begin, int64_t end, Run *run)
{
	const Options *o = &w->o;
	Rng r = rng_for(o->seed, 4, 0);
	uint32_t next_pid = 1000000; /* above any pid_max: never a live process of this host */
	int k;

	for (uint32_t slot = 0; slot < o->processes; slot++) {
		bool kthread = slot < (uint32_t)(o->processes * o->kthreads);
		bool churn = !kthread && rng_unit(&r) < o->churn / (1.0 - o->kthreads);
		bool active = !kthread && !churn && rng_unit(&r) < o->active;
		/* Programs by a skewed draw: a few have many instances. */
		size_t prog = kthread ? 0 : 1 + rng_skewed(&r, o->programs, 2.0);
		double weight = 0.0003;
		int64_t t;

		if (churn) /* short-lived processes work while they run (jobs, compilers) */
			weight = 1.0 / pow(rng_range(&r, 1, 30), 1.1);
		else if (active)
			weight = 1.0 / pow(rng_range(&r, 1, o->processes), 1.1);
		t = churn ? begin - (int64_t)rng_range(&r, 0, o->life_max_s) * (int64_t)NSEC_PER_SEC
			  : begin - (int64_t)rng_range(&r, 60, 7 * 86400) * (int64_t)NSEC_PER_SEC;
		do {
			double life = o->life_min_s *
				      pow((double)o->life_max_s / o->life_min_s, rng_unit(&r));
			Proc *pr;

			if (GREEDY_REALLOC(run->procs, run->allocated, run->n + 1) < 0)
				return -ENOMEM;
			pr = &run->procs[run->n++];
			*pr = (Proc){ .prog = &w->programs[prog],
				      .pid = next_pid++,
				      .start_ns = t,
				      .exit_ns = churn ? t + (int64_t)(life * NSEC_PER_SEC)
						       : INT64_MAX,
				      .weight = weight };
			k = proc_init(w, pr, &r);
			if (k < 0)
				return k;
			t = pr->exit_ns + (int64_t)rng_range(&r, 0, 5) * (int64_t)NSEC_PER_SEC;
		} while (churn && t < end);
	}
	return 0;
}

/* Processes for the queries of bench/ring.sh: the busiest one that lives through the run, and
 * the busiest one whose whole life lies in the newest 10 minutes of the ring but not its last
 * 2: its windows are the last to go (to the retention or the memory budget) and no
 * later sample changes it, so its answers can be compared across a restart. */
static void print_picks(const Run *run, int64_t begin, int64_t end)
{
	const int64_t min = 60 * (int64_t)NSEC_PER_SEC;
	const Proc *busy = NULL, *late = NULL;

	for (size_t i = 0; i < run->n; i++) {
		const Proc *pr = &run->procs[i];
		uint64_t n = pr->user + pr->kernel;

		if (pr->exit_ns == INT64_MAX && (!busy || n > busy->user + busy->kernel))
			busy = pr;
		if (pr->exit_ns != INT64_MAX && pr->start_ns >= MAX(begin, end - 10 * min) &&
		    pr->exit_ns <= end - 2 * min && (!late || n > late->user + late->kernel))
			late = pr;
	}
	if (busy)
		printf("pick_busy %" PRIu32 " %s %" PRIu64 "\n", busy->pid, busy->comm,
		       busy->user + busy->kernel);
	if (late)
		printf("pick_exited %" PRIu32 " %s %" PRIu64 "\n", late->pid, late->comm,
		       late->user + late->kernel);
}

/* Gives the newest segment file in segdir the time t (realtime ns) as its mtime, as profqd's
 * writer leaves it when it writes the window that ends then: profqd and `profq --state-dir`
 * read a segment's last window end from its mtime. */
static void touch_newest_segment(const char *segdir, int64_t t)
{
	struct timespec ts[2] = { { .tv_sec = t / NSEC_PER_SEC, .tv_nsec = t % NSEC_PER_SEC } };
	char newest[256] = "";
	struct dirent *de;
	DIR *d = opendir(segdir);

	if (!d)
		return;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.' && strlen(de->d_name) < sizeof(newest) &&
		    strcmp(de->d_name, newest) > 0)
			snprintf(newest, sizeof(newest), "%s", de->d_name);
	ts[1] = ts[0];
	if (newest[0])
		(void)utimensat(dirfd(d), newest, ts, 0);
	closedir(d);
}

static int generate(const Options *o, const char *dir)
{
	_cleanup_(store_freep) Store *store = NULL;
	_cleanup_(persist_writer_freep) PersistWriter *writer = NULL;
	_cleanup_free_ double *cum = NULL;
	_cleanup_free_ size_t *alive = NULL;
	_cleanup_free_ char *segdir = NULL;
	World w = { .o = *o };
	Run run = { 0 };
	int64_t window_ns = (int64_t)o->window_s * (int64_t)NSEC_PER_SEC, now = now_real_ns();
	/* The last window ends at the last boundary before now: profqd's next one is after. */
	int64_t end = now - now % window_ns;
	int64_t begin = end - (int64_t)o->duration_s * (int64_t)NSEC_PER_SEC;
	uint64_t period_ns = NSEC_PER_SEC / o->frequency, samples = 0, t0 = now_mono_ns();
	uint32_t capacity = o->cpus * o->frequency * o->window_s;
	uint32_t per_window = (uint32_t)lround(capacity * o->busy);
	size_t n_windows = o->duration_s / o->window_s, peak_alive = 0, added = 0;
	Rng r = rng_for(o->seed, 5, 0);
	PersistStats ps;
	struct stat st;
	int k;

	if (asprintf(&segdir, "%s/segments", dir) < 0)
		return -ENOMEM;
	if (stat(segdir, &st) == 0) {
		fprintf(stderr, "'%s' exists: generate into a new directory.\n", segdir);
		return -EEXIST;
	}
	k = store_new(&store);
	if (k < 0)
		return k;
	w.store = store;
	w.boot_id = read_boot_id();
	w.boot_real_ns = boot_to_real_offset();
	k = world_build(&w);
	if (k >= 0)
		k = run_plan(&w, begin, end, &run);
	if (k >= 0) {
		cum = calloc(run.n, sizeof(double));
		alive = calloc(run.n, sizeof(size_t));
		k = cum && alive ? 0 : -ENOMEM;
	}
	if (k >= 0)
		k = persist_writer_new(store, dir, o->span_s * NSEC_PER_SEC, &writer);
	for (size_t wi = 0; k >= 0 && wi < n_windows; wi++) {
		int64_t ws = begin + (int64_t)wi * window_ns, we = ws + window_ns;
		size_t n_alive = 0;
		double sum = 0;

		k = store_window_open(store, ws, we, period_ns);
		for (size_t i = 0; k >= 0 && i < run.n; i++) {
			Proc *pr = &run.procs[i];
			int64_t from = MAX(ws, pr->start_ns), to = MIN(we, pr->exit_ns);

			if (to <= from)
				continue;
			/* profqd learns of a process at its exec, or at its first sample. */
			if (!pr->id && pr->start_ns >= ws) {
				k = proc_add(&w, pr);
				added++;
			}
			sum += pr->weight * (double)(to - from) / (double)window_ns;
			cum[n_alive] = sum;
			alive[n_alive++] = i;
		}
		peak_alive = MAX(peak_alive, n_alive);
		for (uint32_t s = 0; k >= 0 && s < per_window && n_alive > 0; s++) {
			Proc *pr = &run.procs[alive[pick(cum, n_alive, rng_unit(&r))]];
			size_t j = pick(pr->cum, pr->n_stacks, rng_unit(&r));
			Program *p = pr->prog;
			uint32_t thread = pr->stacks[j] % p->threads;
			StackId stack;
			bool kern;

			bool fresh = o->fresh > 0 && rng_unit(&r) < o->fresh;

			k = fresh ? fresh_stack(&w, p, pr->stacks[j], &r, &stack, &kern)
				  : program_stack(&w, p, pr->stacks[j], &stack, &kern);
			if (k >= 0 && !pr->id) {
				k = proc_add(&w, pr);
				added++;
			}
			/* A stack with kernel frames on top was taken in kernel mode. */
			if (k >= 0)
				k = store_window_add(store, pr->id, pr->pid + thread,
						     p->kthread ? 0 : p->thread_names[thread],
						     stack, kern, 1);
			if (fresh)
				store_stack_unref(store, stack);
			if (k < 0)
				break;
			if (kern)
				pr->kernel++;
			else
				pr->user++;
			samples++;
		}
		if (k < 0)
			break;
		store_window_current(store)->idle += capacity - MIN(capacity, per_window);
		for (size_t i = 0; i < run.n; i++) {
			Proc *pr = &run.procs[i];

			if (!pr->exited && pr->exit_ns >= ws && pr->exit_ns < we)
				proc_exit(&w, pr, period_ns);
		}
		k = store_window_close(store);
		if (k >= 0)
			k = persist_write_window(
				writer, store_window(store, store_window_count(store) - 1));
		if (k >= 0)
			touch_newest_segment(segdir, we);
	}
	if (k >= 0) {
		persist_stats(writer, &ps);
		printf("generated_windows %zu\n", n_windows);
		printf("generated_begin_ns %" PRId64 "\n", begin);
		printf("generated_end_ns %" PRId64 "\n", end);
		printf("generated_processes %zu\n", run.n);
		printf("generated_processes_stored %zu\n", added);
		printf("generated_peak_alive %zu\n", peak_alive);
		printf("generated_samples %" PRIu64 "\n", samples);
		printf("generated_bytes_written %" PRIu64 "\n", ps.bytes_written);
		printf("generated_segments %" PRIu64 "\n", ps.segments);
		printf("generated_seconds %.2f\n", (double)(now_mono_ns() - t0) / NSEC_PER_SEC);
		print_picks(&run, begin, end);
	}
	/* References first: the writer's, the processes' and programs', then the store. */
	writer = persist_writer_free(writer);
	for (size_t i = 0; i < run.n; i++)
		if (run.procs[i].id && !run.procs[i].exited)
			store_proc_unref(store, run.procs[i].id);
	run_done(&run);
	world_done(&w);
	return k;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: profq-bench-ring inspect DIR\n"
		"       profq-bench-ring generate [OPTIONS] DIR\n"
		"\n"
		"generate options (defaults in brackets):\n"
		"  --processes N       processes alive at any time [300]\n"
		"  --programs N        distinct user programs they run [40]\n"
		"  --kthreads F        share of kernel threads among them [0.3]\n"
		"  --churn F           share of slots running short-lived processes [0.1]\n"
		"  --active F          share of the other user processes that use CPU [0.15]\n"
		"  --life MIN-MAX      their lifetimes, seconds (log-uniform) [5-600]\n"
		"  --stacks MIN-MAX    distinct stacks per user process [20-200]\n"
		"  --depth MIN-MAX     user frames per stack [10-40]\n"
		"  --kernel-share F    share of stacks with kernel frames on top [0.25]\n"
		"  --debug-share F     share of program binaries with DWARF (file:line) [0.3]\n"
		"  --unresolved F      share of a binary's functions without a symbol [0.15]\n"
		"  --fresh F           share of samples whose stack is new: redone near the leaf\n"
		"                      with any callees (JIT code, recursion, interpreters) [0]\n"
		"  --window S          window length [10]\n"
		"  --duration S        simulated span [3600]\n"
		"  --frequency HZ      [99]\n"
		"  --cpus N            [2]\n"
		"  --busy F            share of samples that are not idle [0.9]\n"
		"  --span S            segment span: a sixth of profqd's retention [600]\n"
		"  --seed N            [1]\n");
}

static int parse_range(const char *s, uint32_t *lo, uint32_t *hi)
{
	char *end;
	unsigned long a = strtoul(s, &end, 10), b;

	if (end == s || *end != '-')
		return -EINVAL;
	s = end + 1;
	b = strtoul(s, &end, 10);
	if (end == s || *end || a == 0 || b < a || b > 100000)
		return -EINVAL;
	*lo = (uint32_t)a;
	*hi = (uint32_t)b;
	return 0;
}

static int parse_u32(const char *s, uint32_t *ret)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (end == s || *end || v == 0 || v > 10000000)
		return -EINVAL;
	*ret = (uint32_t)v;
	return 0;
}

static int parse_share(const char *s, double *ret)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || *end || !(v >= 0 && v <= 1))
		return -EINVAL;
	*ret = v;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "processes", required_argument, NULL, 'p' },
		{ "programs", required_argument, NULL, 'P' },
		{ "kthreads", required_argument, NULL, 'k' },
		{ "churn", required_argument, NULL, 'c' },
		{ "life", required_argument, NULL, 'l' },
		{ "stacks", required_argument, NULL, 's' },
		{ "depth", required_argument, NULL, 'd' },
		{ "kernel-share", required_argument, NULL, 'K' },
		{ "debug-share", required_argument, NULL, 'D' },
		{ "active", required_argument, NULL, 'a' },
		{ "unresolved", required_argument, NULL, 'u' },
		{ "fresh", required_argument, NULL, 'F' },
		{ "window", required_argument, NULL, 'w' },
		{ "duration", required_argument, NULL, 't' },
		{ "frequency", required_argument, NULL, 'f' },
		{ "cpus", required_argument, NULL, 'C' },
		{ "busy", required_argument, NULL, 'b' },
		{ "span", required_argument, NULL, 'S' },
		{ "seed", required_argument, NULL, 'x' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	Options o = {
		.processes = 300,
		.programs = 40,
		.window_s = 10,
		.duration_s = 3600,
		.frequency = 99,
		.cpus = 2,
		.stacks_min = 20,
		.stacks_max = 200,
		.depth_min = 10,
		.depth_max = 40,
		.life_min_s = 5,
		.life_max_s = 600,
		.busy = 0.9,
		.kthreads = 0.3,
		.churn = 0.1,
		.active = 0.15,
		.kernel_share = 0.25,
		.debug_share = 0.3,
		.unresolved = 0.15,
		.seed = 1,
		.span_s = 600,
	};
	uint32_t seed = 1, span = 600;
	int c, idx = 0, r = 0;

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (streq(argv[1], "--help") || streq(argv[1], "-h")) {
		usage(stdout);
		return 0;
	}
	if (streq(argv[1], "inspect")) {
		if (argc != 3) {
			usage(stderr);
			return 2;
		}
		r = inspect(argv[2]);
		if (r < 0)
			fprintf(stderr, "Failed to inspect '%s': %s\n", argv[2], strerror(-r));
		return r < 0 ? 1 : 0;
	}
	if (!streq(argv[1], "generate")) {
		usage(stderr);
		return 2;
	}
	argv++;
	argc--;
	while ((c = getopt_long(argc, argv, "h", options, &idx)) >= 0) {
		switch (c) {
		case 'p':
			r = parse_u32(optarg, &o.processes);
			break;
		case 'P':
			r = parse_u32(optarg, &o.programs);
			break;
		case 'k':
			r = parse_share(optarg, &o.kthreads);
			break;
		case 'c':
			r = parse_share(optarg, &o.churn);
			break;
		case 'l':
			r = parse_range(optarg, &o.life_min_s, &o.life_max_s);
			break;
		case 's':
			r = parse_range(optarg, &o.stacks_min, &o.stacks_max);
			break;
		case 'd':
			r = parse_range(optarg, &o.depth_min, &o.depth_max);
			if (r >= 0 && o.depth_max > STORE_STACK_MAX / 2)
				r = -EINVAL;
			break;
		case 'K':
			r = parse_share(optarg, &o.kernel_share);
			break;
		case 'D':
			r = parse_share(optarg, &o.debug_share);
			break;
		case 'a':
			r = parse_share(optarg, &o.active);
			break;
		case 'u':
			r = parse_share(optarg, &o.unresolved);
			break;
		case 'F':
			r = parse_share(optarg, &o.fresh);
			break;
		case 'w':
			r = parse_u32(optarg, &o.window_s);
			break;
		case 't':
			r = parse_u32(optarg, &o.duration_s);
			break;
		case 'f':
			r = parse_u32(optarg, &o.frequency);
			break;
		case 'C':
			r = parse_u32(optarg, &o.cpus);
			break;
		case 'b':
			r = parse_share(optarg, &o.busy);
			break;
		case 'S':
			r = parse_u32(optarg, &span);
			o.span_s = span;
			break;
		case 'x':
			r = parse_u32(optarg, &seed);
			o.seed = seed;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
		if (r < 0) {
			fprintf(stderr, "Bad value '%s' for --%s.\n", optarg, options[idx].name);
			return 2;
		}
	}
	if (optind != argc - 1 || o.kthreads + o.churn > 0.95 || o.duration_s < o.window_s) {
		usage(stderr);
		return 2;
	}
	r = generate(&o, argv[optind]);
	if (r < 0) {
		fprintf(stderr, "Failed to generate '%s': %s\n", argv[optind], strerror(-r));
		return 1;
	}
	return 0;
}
