/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>
#include <zlib.h>

#include "base/hashindex.h"
#include "base/macro.h"
#include "export/pprof.h"
#include "profile.pb-c.h"

typedef Perftools__Profiles__Function PbFunction;
typedef Perftools__Profiles__Location PbLocation;
typedef Perftools__Profiles__Line PbLine;
typedef Perftools__Profiles__Mapping PbMapping;
typedef Perftools__Profiles__Sample PbSample;
typedef Perftools__Profiles__ValueType PbValueType;

/* A location: a run of frame indexes, innermost first, stored in Builder.runs. */
typedef struct Run {
	size_t start, n;
} Run;

/*
 * Everything the encoded profile points into. Strings are borrowed from the Profile (or are
 * literals) and never freed here; all arrays are indexed by id - 1.
 */
typedef struct Builder {
	const Profile *p;

	const char **strings;
	size_t n_strings, a_strings;
	HashIndex *string_index;

	PbFunction *functions;
	size_t n_functions, a_functions;
	HashIndex *function_index;
	uint64_t *function_of_frame; /* 0: not looked up yet */

	PbMapping *mappings;
	size_t n_mappings, a_mappings;
	uint64_t *mapping_of_string; /* by string index; 0: none yet */
	size_t a_mapping_of_string;

	Run *locations;
	size_t n_locations, a_locations;
	uint32_t *runs; /* the frames of every location, back to back */
	size_t n_runs, a_runs;
	HashIndex *location_index;
} Builder;

static void builder_done(Builder *b)
{
	free(b->strings);
	hash_index_free(b->string_index);
	free(b->functions);
	hash_index_free(b->function_index);
	free(b->function_of_frame);
	free(b->mappings);
	free(b->mapping_of_string);
	free(b->locations);
	free(b->runs);
	hash_index_free(b->location_index);
}

static bool string_eq(uint32_t idx, const void *key, void *userdata)
{
	const Builder *b = userdata;

	return streq(b->strings[idx], key);
}

/* The string table index of s (added when new). */
static int intern(Builder *b, const char *s, int64_t *ret)
{
	uint64_t hash = XXH3_64bits(s, strlen(s));
	uint32_t idx;
	int r;

	if (hash_index_find(b->string_index, hash, string_eq, s, b, &idx) == 0) {
		*ret = idx;
		return 0;
	}
	if (b->n_strings >= INT32_MAX ||
	    GREEDY_REALLOC(b->strings, b->a_strings, b->n_strings + 1) < 0)
		return -ENOMEM;
	r = hash_index_insert(b->string_index, hash, (uint32_t)b->n_strings);
	if (r < 0)
		return r;
	b->strings[b->n_strings] = s;
	*ret = (int64_t)b->n_strings++;
	return 0;
}

typedef struct FunctionKey {
	int64_t name, file;
} FunctionKey;

static bool function_eq(uint32_t idx, const void *key, void *userdata)
{
	const Builder *b = userdata;
	const FunctionKey *k = key;

	return b->functions[idx].name == k->name && b->functions[idx].filename == k->file;
}

/* The function id of a (name, file) pair (added when new, starting at start_line, 0 if
 * unknown). */
static int function_of(Builder *b, const char *name, const char *file, uint32_t start_line,
		       uint64_t *ret)
{
	FunctionKey k;
	PbFunction f = PERFTOOLS__PROFILES__FUNCTION__INIT;
	uint32_t idx;
	uint64_t hash;
	int r;

	r = intern(b, name, &k.name);
	if (r >= 0)
		r = intern(b, strempty(file), &k.file);
	if (r < 0)
		return r;
	hash = XXH3_64bits(&k, sizeof(k));
	if (hash_index_find(b->function_index, hash, function_eq, &k, b, &idx) == 0) {
		*ret = b->functions[idx].id;
		return 0;
	}
	if (GREEDY_REALLOC(b->functions, b->a_functions, b->n_functions + 1) < 0)
		return -ENOMEM;
	r = hash_index_insert(b->function_index, hash, (uint32_t)b->n_functions);
	if (r < 0)
		return r;
	f.id = b->n_functions + 1;
	f.name = f.system_name = k.name;
	f.filename = k.file;
	f.start_line = start_line;
	b->functions[b->n_functions++] = f;
	*ret = f.id;
	return 0;
}

static int function_of_frame(Builder *b, uint32_t frame, uint64_t *ret)
{
	const ProfileFrame *f = &b->p->frames[frame];
	int r;

	if (b->function_of_frame[frame] == 0) {
		r = function_of(b, f->function, f->file, f->start_line,
				&b->function_of_frame[frame]);
		if (r < 0)
			return r;
	}
	*ret = b->function_of_frame[frame];
	return 0;
}

/* The mapping id of a module, 0 for none. */
static int mapping_of(Builder *b, const ProfileFrame *f, uint64_t *ret)
{
	PbMapping m = PERFTOOLS__PROFILES__MAPPING__INIT;
	int64_t name;
	size_t old;
	int r;

	*ret = 0;
	if (!f->module)
		return 0;
	r = intern(b, f->module, &name);
	if (r < 0)
		return r;
	old = b->a_mapping_of_string;
	if (GREEDY_REALLOC(b->mapping_of_string, b->a_mapping_of_string, (size_t)name + 1) < 0)
		return -ENOMEM;
	memset(b->mapping_of_string + old, 0, (b->a_mapping_of_string - old) * sizeof(uint64_t));
	if (b->mapping_of_string[name] == 0) {
		if (GREEDY_REALLOC(b->mappings, b->a_mappings, b->n_mappings + 1) < 0)
			return -ENOMEM;
		m.id = b->n_mappings + 1;
		m.filename = name;
		m.has_functions = true;
		m.has_inline_frames = true;
		b->mappings[b->n_mappings++] = m;
		b->mapping_of_string[name] = m.id;
	}
	*ret = b->mapping_of_string[name];
	if (f->file) {
		b->mappings[*ret - 1].has_filenames = true;
		b->mappings[*ret - 1].has_line_numbers |= f->line != 0;
	}
	return 0;
}

typedef struct RunKey {
	const uint32_t *frames;
	size_t n;
} RunKey;

static bool location_eq(uint32_t idx, const void *key, void *userdata)
{
	const Builder *b = userdata;
	const RunKey *k = key;
	const Run *l = &b->locations[idx];

	return l->n == k->n && memcmp(b->runs + l->start, k->frames, k->n * sizeof(uint32_t)) == 0;
}

/* The location id of a run of frames (added when new). */
static int location_of(Builder *b, const uint32_t *frames, size_t n, uint64_t *ret)
{
	RunKey k = { frames, n };
	uint64_t hash = XXH3_64bits(frames, n * sizeof(uint32_t));
	uint32_t idx;
	int r;

	if (hash_index_find(b->location_index, hash, location_eq, &k, b, &idx) == 0) {
		*ret = idx + 1;
		return 0;
	}
	if (b->n_locations >= UINT32_MAX - 1 ||
	    GREEDY_REALLOC(b->locations, b->a_locations, b->n_locations + 1) < 0 ||
	    GREEDY_REALLOC(b->runs, b->a_runs, b->n_runs + n) < 0)
		return -ENOMEM;
	r = hash_index_insert(b->location_index, hash, (uint32_t)b->n_locations);
	if (r < 0)
		return r;
	memcpy(b->runs + b->n_runs, frames, n * sizeof(uint32_t));
	b->locations[b->n_locations] = (Run){ b->n_runs, n };
	b->n_runs += n;
	*ret = ++b->n_locations;
	return 0;
}

/*
 * The location ids of a stack, leaf first: each location is the inlined frames (innermost
 * first) up to and including the frame they are inlined into. A trailing run of inlined frames
 * with no caller in the stack (a truncated stack) is a location of its own.
 */
static int stack_locations(Builder *b, const ProfileStack *s, uint64_t *ids, size_t *ret_n)
{
	size_t n = 0;

	for (size_t i = 0; i < s->n_frames;) {
		size_t j = i;
		int r;

		while (j + 1 < s->n_frames && b->p->frames[s->frames[j]].inlined)
			j++;
		r = location_of(b, s->frames + i, j - i + 1, &ids[n++]);
		if (r < 0)
			return r;
		i = j + 1;
	}
	*ret_n = n;
	return 0;
}

/* Encoding: the protobuf structures point into the Builder and into these arrays. */
typedef struct Encoding {
	PbSample *samples;
	PbSample **sample_ptrs;
	uint64_t *location_ids; /* of all samples, back to back */
	int64_t *values;	/* two per sample */
	PbLocation *locations;
	PbLocation **location_ptrs;
	PbLine *lines;
	PbLine **line_ptrs;
	PbFunction **function_ptrs;
	PbMapping **mapping_ptrs;
} Encoding;

static void encoding_done(Encoding *e)
{
	free(e->samples);
	free(e->sample_ptrs);
	free(e->location_ids);
	free(e->values);
	free(e->locations);
	free(e->location_ptrs);
	free(e->lines);
	free(e->line_ptrs);
	free(e->function_ptrs);
	free(e->mapping_ptrs);
}

static void *array_of(size_t n, size_t size)
{
	return calloc(MAX(n, (size_t)1), size);
}

/* Sample i: its location ids are the n_ids at e->location_ids + *used (taken here). */
static void add_sample(const Builder *b, Encoding *e, size_t i, size_t *used, size_t n_ids,
		       uint64_t samples)
{
	PbSample s = PERFTOOLS__PROFILES__SAMPLE__INIT;
	uint64_t period = b->p->period_ns;

	s.location_id = e->location_ids + *used;
	s.n_location_id = n_ids;
	*used += n_ids;
	e->values[2 * i] = (int64_t)samples;
	e->values[2 * i + 1] = period && samples > (uint64_t)INT64_MAX / period
				       ? INT64_MAX
				       : (int64_t)(samples * period);
	s.value = e->values + 2 * i;
	/* Off-CPU and wall profiles count nanoseconds: one value. */
	s.n_value = b->p->time ? 1 : 2;
	e->samples[i] = s;
	e->sample_ptrs[i] = &e->samples[i];
}

/* The samples, and with them every location, function and mapping they use. */
static int build_samples(Builder *b, Encoding *e, size_t *ret_n)
{
	const Profile *p = b->p;
	size_t n_samples = p->n_stacks + (p->truncated_samples > 0), total_frames = 0, used = 0;
	int r;

	for (size_t i = 0; i < p->n_stacks; i++)
		total_frames += p->stacks[i].n_frames;
	e->samples = array_of(n_samples, sizeof(PbSample));
	e->sample_ptrs = array_of(n_samples, sizeof(PbSample *));
	e->location_ids = array_of(total_frames + 1, sizeof(uint64_t));
	e->values = array_of(2 * n_samples, sizeof(int64_t));
	if (!e->samples || !e->sample_ptrs || !e->location_ids || !e->values)
		return -ENOMEM;
	for (size_t i = 0; i < p->n_stacks; i++) {
		size_t n_ids;

		r = stack_locations(b, &p->stacks[i], e->location_ids + used, &n_ids);
		if (r < 0)
			return r;
		add_sample(b, e, i, &used, n_ids, p->stacks[i].samples);
	}
	if (p->truncated_samples > 0) {
		/* One location of its own for what the answer left out, so totals stay true. */
		uint32_t none = UINT32_MAX; /* no frame has this index */

		r = location_of(b, &none, 1, e->location_ids + used);
		if (r < 0)
			return r;
		add_sample(b, e, p->n_stacks, &used, 1, p->truncated_samples);
	}
	*ret_n = n_samples;
	return 0;
}

/* The locations' Lines, functions and mappings, now that every location is known. */
static int build_locations(Builder *b, Encoding *e)
{
	uint64_t truncated = 0;
	int r;

	e->locations = array_of(b->n_locations, sizeof(PbLocation));
	e->location_ptrs = array_of(b->n_locations, sizeof(PbLocation *));
	e->lines = array_of(b->n_runs, sizeof(PbLine));
	e->line_ptrs = array_of(b->n_runs, sizeof(PbLine *));
	if (!e->locations || !e->location_ptrs || !e->lines || !e->line_ptrs)
		return -ENOMEM;
	for (size_t i = 0; i < b->n_locations; i++) {
		const Run *run = &b->locations[i];
		PbLocation l = PERFTOOLS__PROFILES__LOCATION__INIT;

		l.id = i + 1;
		l.line = e->line_ptrs + run->start;
		l.n_line = run->n;
		for (size_t j = 0; j < run->n; j++) {
			uint32_t frame = b->runs[run->start + j];
			PbLine line = PERFTOOLS__PROFILES__LINE__INIT;

			if (frame == UINT32_MAX) {
				if (truncated == 0) {
					r = function_of(b, "[truncated]", NULL, 0, &truncated);
					if (r < 0)
						return r;
				}
				line.function_id = truncated;
			} else {
				r = function_of_frame(b, frame, &line.function_id);
				if (r < 0)
					return r;
				line.line = b->p->frames[frame].line;
				/* The mapping is the module of the outermost frame of the run. */
				if (j == run->n - 1) {
					r = mapping_of(b, &b->p->frames[frame], &l.mapping_id);
					if (r < 0)
						return r;
				}
			}
			e->lines[run->start + j] = line;
			e->line_ptrs[run->start + j] = &e->lines[run->start + j];
		}
		e->locations[i] = l;
		e->location_ptrs[i] = &e->locations[i];
	}
	e->function_ptrs = array_of(b->n_functions, sizeof(PbFunction *));
	e->mapping_ptrs = array_of(b->n_mappings, sizeof(PbMapping *));
	if (!e->function_ptrs || !e->mapping_ptrs)
		return -ENOMEM;
	for (size_t i = 0; i < b->n_functions; i++)
		e->function_ptrs[i] = &b->functions[i];
	for (size_t i = 0; i < b->n_mappings; i++)
		e->mapping_ptrs[i] = &b->mappings[i];
	return 0;
}

static int write_all(int fd, const uint8_t *buf, size_t n)
{
	while (n > 0) {
		ssize_t k = write(fd, buf, n);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			return negative_errno();
		}
		buf += k;
		n -= (size_t)k;
	}
	return 0;
}

/* gzip (RFC 1952) of buf, in a new buffer. */
static int gzip_buffer(const uint8_t *buf, size_t n, uint8_t **ret, size_t *ret_len)
{
	_cleanup_free_ uint8_t *out = NULL;
	z_stream z = { 0 };
	size_t bound;
	int r;

	if (n > UINT32_MAX)
		return -EFBIG;
	if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
	    Z_OK)
		return -ENOMEM;
	bound = deflateBound(&z, n) + 32; /* + the gzip header and trailer */
	out = malloc(bound);
	if (!out) {
		deflateEnd(&z);
		return -ENOMEM;
	}
	z.next_in = (Bytef *)buf;
	z.avail_in = (uInt)n;
	z.next_out = out;
	z.avail_out = (uInt)bound;
	r = deflate(&z, Z_FINISH);
	deflateEnd(&z);
	if (r != Z_STREAM_END)
		return -EIO;
	*ret_len = bound - z.avail_out;
	*ret = TAKE_PTR(out);
	return 0;
}

static int value_type(Builder *b, const char *type, const char *unit, PbValueType *ret)
{
	PbValueType v = PERFTOOLS__PROFILES__VALUE_TYPE__INIT;
	int r;

	r = intern(b, type, &v.type);
	if (r >= 0)
		r = intern(b, unit, &v.unit);
	*ret = v;
	return r;
}

int pprof_encode(const Profile *p, uint8_t **ret, size_t *ret_len)
{
	Perftools__Profiles__Profile pb = PERFTOOLS__PROFILES__PROFILE__INIT;
	PbValueType types[2], period_type, *type_ptrs[2] = { &types[0], &types[1] };
	_cleanup_free_ char *comment = NULL;
	_cleanup_free_ uint8_t *packed = NULL;
	Builder b = { .p = p };
	Encoding e = { 0 };
	int64_t comment_id, empty;
	size_t n_samples, size;
	int r;

	if ((p->pid ? asprintf(&comment, "profq pid %" PRIu32 " (%s)", p->pid, strempty(p->comm))
		    : asprintf(&comment, "profq %s: %" PRIu64 " processes", strempty(p->comm),
			       p->processes)) < 0) {
		comment = NULL;
		return -ENOMEM;
	}
	b.function_of_frame = array_of(p->n_frames, sizeof(uint64_t));
	if (!b.function_of_frame || hash_index_new(&b.string_index) < 0 ||
	    hash_index_new(&b.function_index) < 0 || hash_index_new(&b.location_index) < 0) {
		r = -ENOMEM;
		goto finish;
	}
	r = intern(&b, "", &empty); /* string_table[0] must be "" */
	if (r >= 0 && streq(p->event, "faults"))
		r = value_type(&b, "faults", "bytes", &types[0]);
	else if (r >= 0 && p->time)
		r = value_type(&b, streq(p->event, "wall") ? "wall" : "off_cpu", "nanoseconds",
			       &types[0]);
	else if (r >= 0)
		r = value_type(&b, "samples", "count", &types[0]);
	if (r >= 0)
		r = value_type(&b, "cpu", "nanoseconds", &types[1]);
	if (r >= 0 && streq(p->event, "faults"))
		r = value_type(&b, "space", "bytes", &period_type);
	else if (r >= 0)
		r = value_type(&b,
			       !p->time			 ? "cpu"
			       : streq(p->event, "wall") ? "wall"
							 : "off_cpu",
			       "nanoseconds", &period_type);
	if (r >= 0)
		r = intern(&b, comment, &comment_id);
	if (r >= 0)
		r = build_samples(&b, &e, &n_samples);
	if (r >= 0)
		r = build_locations(&b, &e);
	if (r < 0)
		goto finish;

	pb.sample_type = type_ptrs;
	pb.n_sample_type = p->time ? 1 : 2;
	pb.sample = e.sample_ptrs;
	pb.n_sample = n_samples;
	pb.location = e.location_ptrs;
	pb.n_location = b.n_locations;
	pb.function = e.function_ptrs;
	pb.n_function = b.n_functions;
	pb.mapping = e.mapping_ptrs;
	pb.n_mapping = b.n_mappings;
	pb.string_table = (char **)b.strings;
	pb.n_string_table = b.n_strings;
	pb.time_nanos = p->start_ns;
	pb.duration_nanos = p->end_ns - p->start_ns;
	pb.period_type = &period_type;
	pb.period = (int64_t)MIN(p->period_ns, (uint64_t)INT64_MAX);
	pb.comment = &comment_id;
	pb.n_comment = 1;
	pb.default_sample_type = p->time ? types[0].type : types[1].type;

	size = perftools__profiles__profile__get_packed_size(&pb);
	packed = malloc(MAX(size, (size_t)1));
	if (!packed) {
		r = -ENOMEM;
		goto finish;
	}
	if (perftools__profiles__profile__pack(&pb, packed) != size) {
		r = -EIO;
		goto finish;
	}
	r = gzip_buffer(packed, size, ret, ret_len);
finish:
	encoding_done(&e);
	builder_done(&b);
	return r;
}

int pprof_write(const Profile *p, int fd)
{
	_cleanup_free_ uint8_t *buf = NULL;
	size_t len;
	int r;

	r = pprof_encode(p, &buf, &len);
	if (r < 0)
		return r;
	return write_all(fd, buf, len);
}
