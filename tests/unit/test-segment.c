/* SPDX-License-Identifier: MIT */
/*
 * The segment format on its own: exact bytes of the header and records, every record type
 * through the decoder and back, the decoder's checks of each field, and what it makes of a
 * segment damaged at every byte (profqd(8), PERSISTENCE). Buffers are exact-size heap copies, so
 * ASan sees any read past the end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <zlib.h>
#include <cmocka.h>

#include "base/macro.h"
#include "store/segment.h"

/* ---- what the decoder handed out ---- */

typedef struct Seen {
	uint32_t type;
	uint32_t id;
	char *text; /* strings: a terminated copy */
	size_t len;
	StoreFrame frame;
	uint32_t *frames; /* stacks */
	size_t n_frames;
	SegmentProc proc;
	SegmentWindow window;
	WindowEntry *entries;
	MemPoint *mem;
} Seen;

typedef struct Collector {
	Seen *seen;
	size_t n, allocated;
	int fail_at; /* the visitor refuses the record with this index (-1: none) */
} Collector;

static Seen *next(Collector *c, uint32_t type)
{
	Seen *s;

	assert_int_equal(GREEDY_REALLOC(c->seen, c->allocated, c->n + 1), 0);
	s = &c->seen[c->n++];
	*s = (Seen){ .type = type };
	return s;
}

static int refuse(Collector *c)
{
	return c->fail_at >= 0 && (size_t)c->fail_at == c->n - 1 ? -ENOTRECOVERABLE : 0;
}

static int on_string(void *userdata, uint32_t id, const char *s, size_t len)
{
	Collector *c = userdata;
	Seen *x = next(c, SEGMENT_STRING);

	x->id = id;
	x->len = len;
	x->text = malloc(len + 1);
	assert_non_null(x->text);
	memcpy(x->text, s, len);
	x->text[len] = '\0';
	assert_null(memchr(s, '\0', len));
	return refuse(c);
}

static int on_frame(void *userdata, uint32_t id, const StoreFrame *f)
{
	Collector *c = userdata;
	Seen *x = next(c, SEGMENT_FRAME);

	x->id = id;
	x->frame = *f;
	return refuse(c);
}

static int on_stack(void *userdata, uint32_t id, const uint32_t *frames, size_t n)
{
	Collector *c = userdata;
	Seen *x = next(c, SEGMENT_STACK);

	x->id = id;
	x->n_frames = n;
	x->frames = malloc(n * sizeof(uint32_t));
	assert_non_null(x->frames);
	memcpy(x->frames, frames, n * sizeof(uint32_t));
	return refuse(c);
}

static int on_proc(void *userdata, const SegmentProc *p)
{
	Collector *c = userdata;
	Seen *x = next(c, SEGMENT_PROC);

	x->id = p->id;
	x->proc = *p;
	return refuse(c);
}

static int on_window(void *userdata, const SegmentWindow *w)
{
	Collector *c = userdata;
	Seen *x = next(c, SEGMENT_WINDOW);

	x->window = *w;
	x->window.entries = NULL; /* points into the input, which the caller may free */
	x->entries = calloc(MAX(w->n_entries, (size_t)1), sizeof(WindowEntry));
	assert_non_null(x->entries);
	for (size_t i = 0; i < w->n_entries; i++)
		segment_window_entry(w, i, &x->entries[i]);
	x->window.mem = NULL;
	x->mem = calloc(MAX(w->n_mem, (size_t)1), sizeof(MemPoint));
	assert_non_null(x->mem);
	for (size_t i = 0; i < w->n_mem; i++)
		segment_window_mem(w, i, &x->mem[i]);
	return refuse(c);
}

static const SegmentVisitor visitor = {
	.string = on_string,
	.frame = on_frame,
	.stack = on_stack,
	.proc = on_proc,
	.window = on_window,
};

static void collector_done(Collector *c)
{
	for (size_t i = 0; i < c->n; i++) {
		free(c->seen[i].text);
		free(c->seen[i].frames);
		free(c->seen[i].entries);
		free(c->seen[i].mem);
	}
	free(c->seen);
	*c = (Collector){ .fail_at = -1 };
}

/* Parses an exact-size heap copy of buf[0..len). */
static int parse(const uint8_t *buf, size_t len, Collector *c, SegmentParseResult *ret)
{
	_cleanup_free_ uint8_t *copy = malloc(MAX(len, (size_t)1));
	int r;

	assert_non_null(copy);
	memcpy(copy, buf, len);
	*ret = (SegmentParseResult){ .records = 12345 };
	r = segment_parse(copy, len, &visitor, c, ret);
	return r;
}

/* Field by field: the structs have padding. */
static void assert_frame_equal(const StoreFrame *a, const StoreFrame *b)
{
	assert_int_equal(a->function, b->function);
	assert_int_equal(a->module, b->module);
	assert_int_equal(a->file, b->file);
	assert_int_equal(a->line, b->line);
	assert_int_equal(a->flags, b->flags);
	assert_true(a->address == b->address);
	assert_int_equal(a->symbol, b->symbol);
	assert_int_equal(a->decl_file, b->decl_file);
	assert_int_equal(a->decl_line, b->decl_line);
}

static void assert_proc_equal(const StoreProc *a, const StoreProc *b)
{
	assert_int_equal(a->pid, b->pid);
	assert_int_equal(a->ppid, b->ppid);
	assert_int_equal(a->uid, b->uid);
	assert_int_equal(a->flags, b->flags);
	assert_true(a->start_ns == b->start_ns);
	assert_true(a->exit_ns == b->exit_ns);
	assert_int_equal(a->comm, b->comm);
	assert_int_equal(a->cmdline, b->cmdline);
	assert_true(a->user_ns == b->user_ns);
	assert_true(a->sys_ns == b->sys_ns);
	assert_true(a->child_user_ns == b->child_user_ns);
	assert_true(a->child_sys_ns == b->child_sys_ns);
	assert_int_equal(a->exit_code, b->exit_code);
	assert_true(a->boot_id == b->boot_id);
	assert_true(a->start_boot_ns == b->start_boot_ns);
	assert_int_equal(a->cgroup, b->cgroup);
	assert_int_equal(a->unit, b->unit);
	assert_int_equal(a->slice, b->slice);
	assert_int_equal(a->container, b->container);
}

static uint32_t u32_at(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t u64_at(const uint8_t *p)
{
	return (uint64_t)u32_at(p) | (uint64_t)u32_at(p + 4) << 32;
}

static void set_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t crc(const uint8_t *p, size_t n)
{
	return (uint32_t)crc32(crc32(0L, Z_NULL, 0), p, (uInt)n);
}

/* Appends a record with any payload, with a correct CRC: for testing the field checks. */
static void put_raw(SegmentBuf *b, uint32_t type, const uint8_t *payload, size_t len)
{
	size_t start = b->len;

	assert_int_equal(GREEDY_REALLOC(b->data, b->allocated, b->len + 12 + len), 0);
	set_u32(b->data + start, type);
	set_u32(b->data + start + 4, (uint32_t)len);
	if (len)
		memcpy(b->data + start + 8, payload, len);
	set_u32(b->data + start + 8 + len, crc(b->data + start, 8 + len));
	b->len += 12 + len;
}

/* A segment of one process record as a writer of version (before 5: without the cgroup
 * fields) wrote it. */
static void old_proc_segment(SegmentBuf *b, const SegmentProc *proc, uint32_t version)
{
	_cleanup_(segment_buf_done) SegmentBuf tmp = { 0 };

	segment_put_header(&tmp, 1);
	segment_put_proc(&tmp, proc);
	segment_put_header(b, 1);
	set_u32(b->data + 8, version);
	set_u32(b->data + 28, crc(b->data, 28));
	put_raw(b, SEGMENT_PROC, tmp.data + SEGMENT_HEADER_SIZE + 8, version >= 5 ? 112 : 96);
}

/* ---- header ---- */

static void test_header(void **state)
{
	_cleanup_(segment_buf_done) SegmentBuf b = { 0 };
	Collector c = { .fail_at = -1 };
	SegmentParseResult res;
	uint8_t h[SEGMENT_HEADER_SIZE];

	(void)state;
	segment_put_header(&b, -1234567890123LL);
	assert_int_equal(b.error, 0);
	assert_int_equal(b.len, SEGMENT_HEADER_SIZE);
	assert_memory_equal(b.data, "PROFQSEG", 8);
	assert_int_equal(u32_at(b.data + 8), SEGMENT_VERSION);
	assert_int_equal(u32_at(b.data + 12), 32);
	assert_true((int64_t)u64_at(b.data + 16) == -1234567890123LL);
	assert_int_equal(u32_at(b.data + 24), 0);
	assert_int_equal(u32_at(b.data + 28), crc(b.data, 28));

	assert_int_equal(parse(b.data, b.len, &c, &res), 0);
	assert_true(res.created_ns == -1234567890123LL);
	assert_int_equal(res.records, 0);
	assert_int_equal(res.good_bytes, 32);
	assert_int_equal(res.tail_error, 0);
	assert_int_equal(c.n, 0);

	/* Too short, nothing at all, another magic, a header CRC that does not match. */
	assert_int_equal(parse(b.data, 31, &c, &res), -EBADMSG);
	assert_int_equal(parse(b.data, 0, &c, &res), -EBADMSG);
	memcpy(h, b.data, sizeof(h));
	h[7] = 'H';
	set_u32(h + 28, crc(h, 28));
	assert_int_equal(parse(h, sizeof(h), &c, &res), -EBADMSG);
	memcpy(h, b.data, sizeof(h));
	h[20] ^= 1;
	assert_int_equal(parse(h, sizeof(h), &c, &res), -EBADMSG);

	/* Another version, intact: refused as such, not as damage; before or after ours too. */
	memcpy(h, b.data, sizeof(h));
	set_u32(h + 8, SEGMENT_VERSION + 1);
	set_u32(h + 28, crc(h, 28));
	assert_int_equal(parse(h, sizeof(h), &c, &res), -EPROTONOSUPPORT);
	assert_int_equal(res.version, SEGMENT_VERSION + 1);
	set_u32(h + 8, 0);
	set_u32(h + 28, crc(h, 28));
	assert_int_equal(parse(h, sizeof(h), &c, &res), -EPROTONOSUPPORT);
	/* A damaged version field is damage: the CRC is checked first. */
	memcpy(h, b.data, sizeof(h));
	set_u32(h + 8, SEGMENT_VERSION + 1);
	assert_int_equal(parse(h, sizeof(h), &c, &res), -EBADMSG);
	/* A header size we do not know. */
	memcpy(h, b.data, sizeof(h));
	set_u32(h + 12, 40);
	set_u32(h + 28, crc(h, 28));
	assert_int_equal(parse(h, sizeof(h), &c, &res), -EBADMSG);
	assert_int_equal(c.n, 0);
}

/* ---- every record type, there and back ---- */

/* Version 2 segments (before PROC_PRIVATE) still load; the flag is theirs only from 3 on. */
static void test_proc_private_versions(void **state)
{
	SegmentProc proc = { .id = 3, .p = { .pid = 9, .uid = 1000, .flags = PROC_PRIVATE } };
	_cleanup_(segment_buf_done) SegmentBuf b = { 0 };
	SegmentParseResult res;
	Collector c = { .fail_at = -1 };

	(void)state;
	segment_put_header(&b, 1);
	segment_put_proc(&b, &proc);
	assert_int_equal(parse(b.data, b.len, &c, &res), 0);
	assert_int_equal(res.version, SEGMENT_VERSION);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.seen[0].proc.p.flags, PROC_PRIVATE);

	/* The same as version 2: the flag is unknown there, so the record is damage. */
	segment_buf_done(&b);
	old_proc_segment(&b, &proc, 2);
	free(c.seen);
	c = (Collector){ .fail_at = -1 };
	assert_int_equal(parse(b.data, b.len, &c, &res), 0);
	assert_int_equal(res.version, 2);
	assert_int_equal(res.tail_error, -EBADMSG);
	assert_int_equal(c.n, 0);

	/* A version 2 process without it loads as it was. */
	segment_buf_done(&b);
	proc.p.flags = PROC_EXITED;
	old_proc_segment(&b, &proc, 2);
	free(c.seen);
	c = (Collector){ .fail_at = -1 };
	assert_int_equal(parse(b.data, b.len, &c, &res), 0);
	assert_int_equal(res.tail_error, 0);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.seen[0].proc.p.uid, 1000);
	assert_int_equal(c.seen[0].proc.p.flags, PROC_EXITED);
	free(c.seen);
}

/* Version 5 added the cgroup and its labels; version 4's shorter records still load. */
static void test_proc_cgroup_versions(void **state)
{
	SegmentProc proc = {
		.id = 3,
		.p = { .pid = 9, .uid = 1000, .cgroup = 4, .unit = 5, .slice = 6, .container = 7 }
	};
	_cleanup_(segment_buf_done) SegmentBuf b = { 0 };
	SegmentParseResult res;
	Collector c = { .fail_at = -1 };

	(void)state;
	segment_put_header(&b, 1);
	segment_put_proc(&b, &proc);
	assert_int_equal(parse(b.data, b.len, &c, &res), 0);
	assert_int_equal(c.n, 1);
	assert_proc_equal(&c.seen[0].proc.p, &proc.p);
	free(c.seen);

	/* Version 4: the same record without them. */
	segment_buf_done(&b);
	old_proc_segment(&b, &proc, 4);
	c = (Collector){ .fail_at = -1 };
	assert_int_equal(parse(b.data, b.len, &c, &res), 0);
	assert_int_equal(res.tail_error, 0);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.seen[0].proc.p.pid, 9);
	assert_int_equal(c.seen[0].proc.p.cgroup, 0);
	assert_int_equal(c.seen[0].proc.p.container, 0);
	free(c.seen);

	/* A version 4 record in a version 5 segment, or the reverse, is damage. */
	segment_buf_done(&b);
	old_proc_segment(&b, &proc, 4);
	set_u32(b.data + 8, 5);
	set_u32(b.data + 28, crc(b.data, 28));
	c = (Collector){ .fail_at = -1 };
	assert_int_equal(parse(b.data, b.len, &c, &res), 0);
	assert_int_equal(res.tail_error, -EBADMSG);
	assert_int_equal(c.n, 0);
	free(c.seen);
	segment_buf_done(&b);
	old_proc_segment(&b, &proc, 5);
	set_u32(b.data + 8, 4);
	set_u32(b.data + 28, crc(b.data, 28));
	c = (Collector){ .fail_at = -1 };
	assert_int_equal(parse(b.data, b.len, &c, &res), 0);
	assert_int_equal(res.tail_error, -EBADMSG);
	free(c.seen);
}

static void test_records(void **state)
{
	_cleanup_(segment_buf_done) SegmentBuf b = { 0 };
	_cleanup_free_ char *big = malloc(SEGMENT_MAX_STRING + 2);
	_cleanup_free_ uint32_t *deep = malloc(STORE_STACK_MAX * sizeof(uint32_t));
	const char *utf8 = "f\xc3\xbcnf_\xe2\x9c\x93_\xf0\x9f\x94\xa5";
	Collector c = { .fail_at = -1 };
	SegmentParseResult res;
	const StoreFrame frame = { .function = 1,
				   .module = 2,
				   .file = SEGMENT_MAX_ID - 1,
				   .line = UINT32_MAX,
				   .flags = FRAME_FLAGS_ALL,
				   .address = 0xffffffff81234567ULL };
	const SegmentProc proc = {
		.id = 77,
		.p = { .pid = 4194304,
		       .ppid = 1,
		       .uid = 65534,
		       .flags = PROC_FLAGS_ALL,
		       .start_ns = 1700000000123456789LL,
		       .exit_ns = 1700000100987654321LL,
		       .comm = 1,
		       .cmdline = 2,
		       .user_ns = 1ULL << 40,
		       .sys_ns = 3,
		       .child_user_ns = UINT64_MAX,
		       .child_sys_ns = 5,
		       .exit_code = -2,
		       .boot_id = 0x0123456789abcdefULL,
		       .start_boot_ns = 987654321012ULL },
	};
	const WindowEntry entries[] = {
		{ .proc = 77, .tid = 4194304, .stack = 5, .thread = 0, .user = 7, .kernel = 0 },
		{ .proc = 77, .tid = 9, .stack = 6, .thread = 1, .user = 0, .kernel = UINT32_MAX },
	};
	const Window win = { .start_ns = 1700000000000000000LL,
			     .end_ns = 1700000002000000000LL,
			     .period_ns = 1001001,
			     .samples = UINT32_MAX + 7ULL,
			     .idle = 11,
			     .lost = 13,
			     .entries = (WindowEntry *)entries,
			     .n_entries = 2 };
	const Window empty = { .start_ns = 0, .end_ns = 1, .period_ns = NSEC_PER_SEC };
	size_t rec;

	(void)state;
	assert_non_null(big);
	assert_non_null(deep);
	memset(big, 'x', SEGMENT_MAX_STRING + 1);
	big[SEGMENT_MAX_STRING + 1] = '\0';
	for (uint32_t i = 0; i < STORE_STACK_MAX; i++)
		deep[i] = i + 1;

	segment_put_header(&b, 42);
	rec = b.len;
	segment_put_string(&b, 1, utf8);
	/* Record layout: type, payload length, payload (id, bytes), CRC of all before it. */
	assert_int_equal(u32_at(b.data + rec), SEGMENT_STRING);
	assert_int_equal(u32_at(b.data + rec + 4), 4 + strlen(utf8));
	assert_int_equal(u32_at(b.data + rec + 8), 1);
	assert_memory_equal(b.data + rec + 12, utf8, strlen(utf8));
	assert_int_equal(b.len, rec + 12 + 4 + strlen(utf8));
	assert_int_equal(u32_at(b.data + b.len - 4), crc(b.data + rec, b.len - rec - 4));
	segment_put_string(&b, 2, "");
	/* One byte over the limit: cut to the limit. */
	segment_put_string(&b, 3, big);
	segment_put_frame(&b, SEGMENT_MAX_ID - 1, &frame);
	segment_put_stack(&b, 5, (const uint32_t[]){ SEGMENT_MAX_ID - 1 }, 1);
	segment_put_stack(&b, 6, deep, STORE_STACK_MAX);
	segment_put_proc(&b, &proc);
	segment_put_window(&b, &win, entries, NULL);
	segment_put_window(&b, &empty, NULL, NULL);
	assert_int_equal(b.error, 0);

	assert_int_equal(parse(b.data, b.len, &c, &res), 0);
	assert_int_equal(res.created_ns, 42);
	assert_int_equal(res.tail_error, 0);
	assert_int_equal(res.good_bytes, b.len);
	assert_int_equal(res.records, 9);
	assert_int_equal(c.n, 9);

	assert_int_equal(c.seen[0].type, SEGMENT_STRING);
	assert_int_equal(c.seen[0].id, 1);
	assert_int_equal(c.seen[0].len, strlen(utf8));
	assert_string_equal(c.seen[0].text, utf8);
	assert_int_equal(c.seen[1].id, 2);
	assert_int_equal(c.seen[1].len, 0);
	assert_int_equal(c.seen[2].id, 3);
	assert_int_equal(c.seen[2].len, SEGMENT_MAX_STRING);
	assert_memory_equal(c.seen[2].text, big, SEGMENT_MAX_STRING);

	assert_int_equal(c.seen[3].type, SEGMENT_FRAME);
	assert_int_equal(c.seen[3].id, SEGMENT_MAX_ID - 1);
	assert_frame_equal(&c.seen[3].frame, &frame);

	assert_int_equal(c.seen[4].type, SEGMENT_STACK);
	assert_int_equal(c.seen[4].id, 5);
	assert_int_equal(c.seen[4].n_frames, 1);
	assert_int_equal(c.seen[4].frames[0], SEGMENT_MAX_ID - 1);
	assert_int_equal(c.seen[5].n_frames, STORE_STACK_MAX);
	assert_memory_equal(c.seen[5].frames, deep, STORE_STACK_MAX * sizeof(uint32_t));

	assert_int_equal(c.seen[6].type, SEGMENT_PROC);
	assert_int_equal(c.seen[6].proc.id, 77);
	assert_proc_equal(&c.seen[6].proc.p, &proc.p);

	assert_int_equal(c.seen[7].type, SEGMENT_WINDOW);
	assert_true(c.seen[7].window.start_ns == win.start_ns);
	assert_true(c.seen[7].window.end_ns == win.end_ns);
	assert_int_equal(c.seen[7].window.period_ns, 1001001);
	assert_true(c.seen[7].window.samples == UINT32_MAX + 7ULL);
	assert_int_equal(c.seen[7].window.idle, 11);
	assert_int_equal(c.seen[7].window.lost, 13);
	assert_int_equal(c.seen[7].window.n_entries, 2);
	assert_memory_equal(c.seen[7].entries, entries, sizeof(entries));
	assert_true(c.seen[8].window.start_ns == 0);
	assert_true(c.seen[8].window.end_ns == 1);
	assert_int_equal(c.seen[8].window.n_entries, 0);
	collector_done(&c);

	/* A visitor's refusal stops decoding at that record, which is not counted as good. */
	c.fail_at = 4;
	assert_int_equal(parse(b.data, b.len, &c, &res), 0);
	assert_int_equal(res.tail_error, -ENOTRECOVERABLE);
	assert_int_equal(res.records, 4);
	assert_int_equal(c.n, 5);
	collector_done(&c);
}

/* A Python function's frame and the interpreter frame it stands in for keep their flags and
 * their lines, each flag alone and with the others; the flag past them is refused. */
static void test_python_frames(void **state)
{
	const StoreFrame frames[] = {
		{ .function = 1,
		  .module = 2,
		  .file = 3,
		  .line = 14,
		  .flags = FRAME_PYTHON,
		  .decl_file = 3,
		  .decl_line = 10 },
		{ .function = 4,
		  .module = 5,
		  .file = 6,
		  .line = 1200,
		  .flags = FRAME_PYTHON_EVAL,
		  .address = 0x55d0c0ffee00ULL,
		  .decl_file = 6,
		  .decl_line = 900 },
		{ .function = 4, .module = 5, .flags = FRAME_PYTHON_EVAL | FRAME_INLINED },
		{ .function = 7, .module = 2, .flags = FRAME_PYTHON | FRAME_TRUNCATED },
	};
	Collector c = { .fail_at = -1 };
	SegmentParseResult res;

	(void)state;
	for (size_t i = 0; i <= ARRAY_SIZE(frames); i++) {
		_cleanup_(segment_buf_done) SegmentBuf b = { 0 };
		StoreFrame bad = frames[0];

		segment_put_header(&b, 1);
		if (i < ARRAY_SIZE(frames)) {
			segment_put_frame(&b, (uint32_t)i + 1, &frames[i]);
			assert_int_equal(b.error, 0);
			assert_int_equal(parse(b.data, b.len, &c, &res), 0);
			assert_int_equal(res.tail_error, 0);
			assert_int_equal(c.n, 1);
			assert_int_equal(c.seen[0].type, SEGMENT_FRAME);
			assert_int_equal(c.seen[0].id, i + 1);
			assert_frame_equal(&c.seen[0].frame, &frames[i]);
			/* Version 3 knew neither flag: damage there. */
			collector_done(&c);
			set_u32(b.data + 8, 3);
			set_u32(b.data + 28, crc(b.data, 28));
			assert_int_equal(parse(b.data, b.len, &c, &res), 0);
			assert_int_equal(res.version, 3);
			assert_int_equal(res.tail_error, -EBADMSG);
			assert_int_equal(c.n, 0);
		} else {
			bad.flags = FRAME_PYTHON_EVAL << 1;
			segment_put_frame(&b, 1, &bad);
			assert_int_equal(parse(b.data, b.len, &c, &res), 0);
			assert_int_equal(res.tail_error, -EBADMSG);
			assert_int_equal(c.n, 0);
		}
		collector_done(&c);
	}
}

/* ---- the decoder's checks, one field at a time ---- */

typedef struct BadCase {
	const char *what;
	uint32_t type;
	uint8_t payload[128];
	size_t len;
} BadCase;

static void put_le(uint8_t *p, uint64_t v, int bytes)
{
	for (int i = 0; i < bytes; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* A valid payload of each type, to spoil one field of. */
static size_t good_payload(uint32_t type, uint8_t *p)
{
	memset(p, 0, 128);
	switch (type) {
	case SEGMENT_STRING:
		put_le(p, 1, 4);
		memcpy(p + 4, "abc", 3);
		return 7;
	case SEGMENT_FRAME:
		put_le(p, 1, 4);
		return 48;
	case SEGMENT_STACK:
		put_le(p, 1, 4);
		put_le(p + 4, 2, 4);
		put_le(p + 8, 3, 4);
		put_le(p + 12, 4, 4);
		return 16;
	case SEGMENT_PROC:
		put_le(p, 1, 4);
		put_le(p + 4, 100, 4); /* pid */
		return 112;
	case SEGMENT_WINDOW:
		put_le(p + 8, 10, 8);	   /* end */
		put_le(p + 16, 10, 8);	   /* period */
		put_le(p + 48, 1, 4);	   /* one entry */
		put_le(p + 12 + 60, 1, 4); /* its stack */
		put_le(p + 60 + 32, 0, 4); /* no memory points */
		return 60 + 32 + 4;
	}
	fail();
	return 0;
}

/* A window's memory points come back field by field; one with unknown flags or a time before
 * 1970 spoils its record. */
static void test_memory_points(void **state)
{
	_cleanup_(segment_buf_done) SegmentBuf b = { 0 };
	Collector c = { .fail_at = -1 };
	SegmentParseResult res;
	const MemPoint mem[2] = {
		{ .proc = 7,
		  .flags = MEM_OOM_KILL,
		  .time_ns = 1500,
		  .anon = 1ULL << 40,
		  .file = 4096,
		  .shmem = 3,
		  .peak = (1ULL << 40) + 4099,
		  .peak_ns = 1400 },
		{ .proc = 9,
		  .flags = MEM_EXIT | MEM_PEAK_OLD,
		  .time_ns = 1600,
		  .anon = 1,
		  .file = 2,
		  .shmem = 0,
		  .peak = 5,
		  .peak_ns = 0 },
	};
	Window w = { .start_ns = 1000, .end_ns = 2000, .period_ns = 10, .n_mem = 2 };
	MemPoint bad = mem[0];
	size_t good;

	(void)state;
	segment_put_header(&b, 1);
	segment_put_window(&b, &w, NULL, mem);
	good = b.len;
	bad.flags = MEM_FLAGS_ALL + 1;
	w.n_mem = 1;
	segment_put_window(&b, &w, NULL, &bad);
	assert_int_equal(parse(b.data, b.len, &c, &res), 0);
	assert_int_equal(res.records, 1);
	assert_int_equal(res.good_bytes, good);
	assert_int_equal(res.tail_error, -EBADMSG);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.seen[0].window.n_mem, 2);
	for (size_t i = 0; i < 2; i++) {
		const MemPoint *m = &c.seen[0].mem[i];

		assert_int_equal(m->proc, mem[i].proc);
		assert_int_equal(m->flags, mem[i].flags);
		assert_int_equal(m->time_ns, mem[i].time_ns);
		assert_int_equal(m->anon, mem[i].anon);
		assert_int_equal(m->file, mem[i].file);
		assert_int_equal(m->shmem, mem[i].shmem);
		assert_int_equal(m->peak, mem[i].peak);
		assert_int_equal(m->peak_ns, mem[i].peak_ns);
	}
	collector_done(&c);
	b.len = 0;
	segment_put_header(&b, 1);
	bad = mem[0];
	bad.time_ns = -1;
	segment_put_window(&b, &w, NULL, &bad);
	assert_int_equal(parse(b.data, b.len, &c, &res), 0);
	assert_int_equal(res.tail_error, -EBADMSG);
	assert_int_equal(c.n, 0);
}

/* Window entries of version 7 carry a kind and a weight; those of version 4 (24 bytes, a
 * 52-byte head) still load, as CPU samples. */
static void test_window_kinds_versions(void **state)
{
	WindowEntry e[2] = {
		{ .proc = 1, .tid = 2, .stack = 3, .thread = 4, .user = 5, .kernel = 6 },
		{ .proc = 1,
		  .tid = 2,
		  .stack = 3,
		  .thread = 4,
		  .records = 2,
		  .kind = KIND_BLOCKED,
		  .weight = 123456789012ull },
	};
	Window w = { .start_ns = 1,
		     .end_ns = 10,
		     .period_ns = 5,
		     .samples = 11,
		     .records = 2,
		     .n_entries = 2 };
	_cleanup_(segment_buf_done) SegmentBuf b = { 0 };
	SegmentParseResult res;
	Collector c = { .fail_at = -1 };
	WindowEntry got;
	uint8_t p[52 + 24] = { 0 };

	(void)state;
	segment_put_header(&b, 1);
	segment_put_window(&b, &w, e, NULL);
	assert_int_equal(parse(b.data, b.len, &c, &res), 0);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.seen[0].window.records, 2);
	assert_int_equal(c.seen[0].entries[1].kind, KIND_BLOCKED);
	assert_int_equal(c.seen[0].entries[1].weight, 123456789012ull);
	assert_int_equal(c.seen[0].entries[1].records, 2);
	assert_int_equal(c.seen[0].entries[0].kind, KIND_CPU);
	assert_int_equal(c.seen[0].entries[0].kernel, 6);
	collector_done(&c);

	/* Version 4: one entry of 24 bytes after a 52-byte head. */
	b.len = 0;
	segment_put_header(&b, 1);
	set_u32(b.data + 8, 4);
	set_u32(b.data + 28, crc(b.data, 28));
	put_le(p + 8, 10, 8);
	put_le(p + 16, 5, 8);
	put_le(p + 48, 1, 4);
	put_le(p + 52, 7, 4);
	put_le(p + 52 + 16, 9, 4);
	put_raw(&b, SEGMENT_WINDOW, p, sizeof(p));
	c = (Collector){ .fail_at = -1 };
	assert_int_equal(parse(b.data, b.len, &c, &res), 0);
	assert_int_equal(res.version, 4);
	assert_int_equal(c.n, 1);
	got = c.seen[0].entries[0];
	assert_int_equal(got.proc, 7);
	assert_int_equal(got.user, 9);
	assert_int_equal(got.kind, KIND_CPU);
	collector_done(&c);
}

/* Fault entries (bytes) round-trip in a version 6 segment; in a version 5 one, whose writer
 * had no such kind, they are damage. */
static void test_window_faults_versions(void **state)
{
	WindowEntry e = { .proc = 1,
			  .tid = 2,
			  .stack = 3,
			  .thread = 4,
			  .records = 3,
			  .kind = KIND_FAULTS,
			  .weight = 3 * 262144ull };
	Window w = { .start_ns = 1, .end_ns = 10, .period_ns = 5, .records = 3, .n_entries = 1 };
	_cleanup_(segment_buf_done) SegmentBuf b = { 0 };
	SegmentParseResult res;
	Collector c = { .fail_at = -1 };

	(void)state;
	segment_put_header(&b, 1);
	segment_put_window(&b, &w, &e, NULL);
	assert_int_equal(parse(b.data, b.len, &c, &res), 0);
	assert_int_equal(res.version, 6);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.seen[0].entries[0].kind, KIND_FAULTS);
	assert_int_equal(c.seen[0].entries[0].weight, 3 * 262144ull);
	assert_int_equal(c.seen[0].entries[0].records, 3);
	collector_done(&c);

	/* The same bytes under a version 5 header. */
	set_u32(b.data + 8, 5);
	set_u32(b.data + 28, crc(b.data, 28));
	c = (Collector){ .fail_at = -1 };
	assert_int_equal(parse(b.data, b.len, &c, &res), 0);
	assert_int_equal(res.version, 5);
	assert_int_equal(res.tail_error, -EBADMSG);
	assert_int_equal(c.n, 0);
	collector_done(&c);
}

static void test_field_checks(void **state)
{
	static const struct {
		const char *what;
		uint32_t type;
		size_t offset; /* where to write value (SIZE_MAX: change the length instead) */
		uint64_t value;
		int bytes;
	} cases[] = {
		{ "string id 0", SEGMENT_STRING, 0, 0, 4 },
		{ "string id at the limit", SEGMENT_STRING, 0, SEGMENT_MAX_ID, 4 },
		{ "string with a NUL", SEGMENT_STRING, 5, 0, 1 },
		{ "string without id", SEGMENT_STRING, SIZE_MAX, 3, 0 },
		{ "frame id 0", SEGMENT_FRAME, 0, 0, 4 },
		{ "frame short", SEGMENT_FRAME, SIZE_MAX, 31, 0 },
		{ "frame long", SEGMENT_FRAME, SIZE_MAX, 33, 0 },
		{ "frame flags", SEGMENT_FRAME, 20, FRAME_FLAGS_ALL + 1, 4 },
		{ "stack id 0", SEGMENT_STACK, 0, 0, 4 },
		{ "stack of 0 frames", SEGMENT_STACK, 4, 0, 4 },
		{ "stack count beyond the payload", SEGMENT_STACK, 4, 3, 4 },
		{ "stack count below the payload", SEGMENT_STACK, 4, 1, 4 },
		{ "stack count huge", SEGMENT_STACK, 4, 0x40000002, 4 },
		{ "stack without count", SEGMENT_STACK, SIZE_MAX, 7, 0 },
		{ "proc id 0", SEGMENT_PROC, 0, 0, 4 },
		{ "proc pid 0", SEGMENT_PROC, 4, 0, 4 },
		{ "proc flags", SEGMENT_PROC, 16, PROC_FLAGS_ALL + 1, 4 },
		{ "proc short", SEGMENT_PROC, SIZE_MAX, 111, 0 },
		{ "proc of version 4", SEGMENT_PROC, SIZE_MAX, 96, 0 },
		{ "proc started before 1970", SEGMENT_PROC, 24, UINT64_MAX, 8 },
		{ "proc exited before 1970", SEGMENT_PROC, 32, 1ULL << 63, 8 },
		{ "window ends at its start", SEGMENT_WINDOW, 0, 10, 8 },
		{ "window ends before its start", SEGMENT_WINDOW, 0, 11, 8 },
		{ "window starts before 1970", SEGMENT_WINDOW, 0, UINT64_MAX, 8 },
		{ "window from INT64_MIN", SEGMENT_WINDOW, 0, 1ULL << 63, 8 },
		{ "window period 0", SEGMENT_WINDOW, 16, 0, 8 },
		{ "window period over 1 s", SEGMENT_WINDOW, 16, NSEC_PER_SEC + 1, 8 },
		{ "window entries beyond the payload", SEGMENT_WINDOW, 48, 2, 4 },
		{ "window entries below the payload", SEGMENT_WINDOW, 48, 0, 4 },
		{ "window entries huge", SEGMENT_WINDOW, 48, 0xffffffff, 4 },
		{ "window short head", SEGMENT_WINDOW, SIZE_MAX, 59, 0 },
		{ "window entry of an unknown kind", SEGMENT_WINDOW, 60 + 16, _KIND_MAX, 4 },
		{ "window memory points beyond the payload", SEGMENT_WINDOW, 92, 1, 4 },
		{ "window memory points huge", SEGMENT_WINDOW, 92, 0xffffffff, 4 },
		{ "window without its memory count", SEGMENT_WINDOW, SIZE_MAX, 92, 0 },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		_cleanup_(segment_buf_done) SegmentBuf b = { 0 };
		Collector c = { .fail_at = -1 };
		SegmentParseResult res;
		uint8_t p[128];
		size_t len, good;

		/* A good record of the type, the spoilt one, and a good one after it. */
		segment_put_header(&b, 1);
		len = good_payload(cases[i].type, p);
		put_raw(&b, cases[i].type, p, len);
		good = b.len;
		if (cases[i].offset == SIZE_MAX)
			len = (size_t)cases[i].value;
		else
			put_le(p + cases[i].offset, cases[i].value, cases[i].bytes);
		put_raw(&b, cases[i].type, p, len);
		segment_put_string(&b, 9, "after");

		assert_int_equal(parse(b.data, b.len, &c, &res), 0);
		if (res.tail_error != -EBADMSG || res.records != 1 || res.good_bytes != good)
			fail_msg("%s: tail_error %d, %zu records, %zu good bytes", cases[i].what,
				 res.tail_error, res.records, res.good_bytes);
		assert_int_equal(c.n, 1);
		collector_done(&c);
	}
}

/* A record type of a later version is stepped over; a record length past the end is not. */
static void test_unknown_and_lengths(void **state)
{
	_cleanup_(segment_buf_done) SegmentBuf b = { 0 };
	Collector c = { .fail_at = -1 };
	SegmentParseResult res;
	size_t good;

	(void)state;
	segment_put_header(&b, 1);
	put_raw(&b, 99, (const uint8_t *)"future", 6);
	put_raw(&b, 0, NULL, 0);
	segment_put_string(&b, 1, "x");
	assert_int_equal(parse(b.data, b.len, &c, &res), 0);
	assert_int_equal(res.tail_error, 0);
	assert_int_equal(res.records, 3);
	assert_int_equal(c.n, 1);
	assert_string_equal(c.seen[0].text, "x");
	collector_done(&c);

	/* A length beyond the maximum record, with the bytes to back it up: refused unread. */
	good = b.len;
	assert_int_equal(GREEDY_REALLOC(b.data, b.allocated, b.len + 12 + SEGMENT_MAX_RECORD + 1),
			 0);
	memset(b.data + good, 0, 12 + SEGMENT_MAX_RECORD + 1);
	set_u32(b.data + good, 99);
	set_u32(b.data + good + 4, SEGMENT_MAX_RECORD + 1);
	b.len = good + 12 + SEGMENT_MAX_RECORD + 1;
	set_u32(b.data + b.len - 4, crc(b.data + good, b.len - good - 4));
	assert_int_equal(segment_parse(b.data, b.len, &visitor, &c, &res), 0);
	assert_int_equal(res.tail_error, -EBADMSG);
	assert_int_equal(res.good_bytes, good);
	/* Lengths past the end of the input, some that would wrap around added to the offset. */
	for (size_t i = 0; i < 7; i++) {
		const uint32_t lens[] = {
			53,	    64,	       1000, SEGMENT_MAX_RECORD, SEGMENT_MAX_RECORD + 1,
			0xfffffff4, UINT32_MAX
		};

		set_u32(b.data + good + 4, lens[i]);
		assert_int_equal(parse(b.data, good + 64, &c, &res), 0);
		assert_int_equal(res.tail_error, -EBADMSG);
		assert_int_equal(res.good_bytes, good);
	}
	collector_done(&c);

	/* The encoder refuses a record over the limit instead of writing a bad one. */
	b.len = 0;
	b.error = 0;
	segment_put_window(
		&b,
		&(Window){ .end_ns = 1, .period_ns = 1, .n_entries = SEGMENT_MAX_RECORD / 24 + 1 },
		NULL, NULL);
	assert_int_equal(b.error, -E2BIG);
	assert_int_equal(b.len, 0);
	/* ... and appends nothing more after a failure. */
	segment_put_string(&b, 1, "late");
	assert_int_equal(b.len, 0);
}

/* ---- damage at every byte ---- */

/* A small segment with every record type; the offsets where each record ends. */
static void small_segment(SegmentBuf *b, size_t *ends, size_t *n_ends)
{
	const StoreFrame f = { .function = 1, .module = 2, .line = 3, .address = 0x1234 };
	const SegmentProc p = {
		.id = 5, .p = { .pid = 42, .comm = 2, .start_ns = 1000, .start_boot_ns = 7 }
	};
	const WindowEntry e[] = { { .proc = 5, .tid = 42, .stack = 4, .thread = 2, .user = 3 },
				  { .proc = 5, .tid = 43, .stack = 4, .kernel = 1 } };
	Window w = { .start_ns = 0,
		     .end_ns = 1000,
		     .period_ns = 1000,
		     .samples = 4,
		     .entries = (WindowEntry *)e,
		     .n_entries = 2 };

	*n_ends = 0;
	segment_put_header(b, 99);
	segment_put_string(b, 1, "main");
	ends[(*n_ends)++] = b->len;
	segment_put_string(b, 2, "prog");
	ends[(*n_ends)++] = b->len;
	segment_put_frame(b, 3, &f);
	ends[(*n_ends)++] = b->len;
	segment_put_stack(b, 4, (const uint32_t[]){ 3, 3 }, 2);
	ends[(*n_ends)++] = b->len;
	segment_put_proc(b, &p);
	ends[(*n_ends)++] = b->len;
	segment_put_window(b, &w, e, NULL);
	ends[(*n_ends)++] = b->len;
	w.start_ns = 1000;
	w.end_ns = 2000;
	segment_put_window(b, &w, e, NULL);
	ends[(*n_ends)++] = b->len;
	assert_int_equal(b->error, 0);
}

/* The records that lie wholly within the first n bytes. */
static size_t records_before(const size_t *ends, size_t n_ends, size_t n)
{
	size_t k = 0;

	while (k < n_ends && ends[k] <= n)
		k++;
	return k;
}

static void test_damage_every_byte(void **state)
{
	_cleanup_(segment_buf_done) SegmentBuf b = { 0 };
	_cleanup_free_ uint8_t *copy = NULL;
	SegmentParseResult res;
	size_t ends[16], n_ends, last = 0;

	(void)state;
	small_segment(&b, ends, &n_ends);
	copy = malloc(b.len);
	assert_non_null(copy);

	/* Cut at every length: the whole records before the cut decode, nothing after. */
	for (size_t n = 0; n <= b.len; n++) {
		Collector c = { .fail_at = -1 };
		size_t k = records_before(ends, n_ends, n);
		int r = parse(b.data, n, &c, &res);

		if (n < SEGMENT_HEADER_SIZE) {
			assert_int_equal(r, -EBADMSG);
			assert_int_equal(c.n, 0);
			continue;
		}
		assert_int_equal(r, 0);
		if (res.records != k || c.n != k || res.good_bytes != (k ? ends[k - 1] : 32) ||
		    res.tail_error != (res.good_bytes == n ? 0 : -EBADMSG))
			fail_msg("cut at %zu: %zu records (want %zu), good %zu, tail %d", n,
				 res.records, k, res.good_bytes, res.tail_error);
		assert_true(res.records >= last);
		last = res.records;
		collector_done(&c);
	}
	assert_int_equal(last, n_ends);

	/*
	 * Every bit of every byte flipped: a header flip spoils the header; any other spoils
	 * exactly the record that holds it (CRC-32 catches every single-bit error), and all
	 * records before it still decode.
	 */
	for (size_t i = 0; i < b.len; i++)
		for (int bit = 0; bit < 8; bit++) {
			Collector c = { .fail_at = -1 };
			size_t k = records_before(ends, n_ends, i);
			int r;

			memcpy(copy, b.data, b.len);
			copy[i] ^= (uint8_t)(1u << bit);
			r = parse(copy, b.len, &c, &res);
			if (i < SEGMENT_HEADER_SIZE) {
				assert_int_equal(r, -EBADMSG);
				assert_int_equal(c.n, 0);
				continue;
			}
			assert_int_equal(r, 0);
			if (res.records != k || c.n != k ||
			    res.good_bytes != (k ? ends[k - 1] : 32) || res.tail_error != -EBADMSG)
				fail_msg("bit %d of byte %zu: %zu records (want %zu), tail %d", bit,
					 i, res.records, k, res.tail_error);
			collector_done(&c);
		}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header),
		cmocka_unit_test(test_proc_private_versions),
		cmocka_unit_test(test_proc_cgroup_versions),
		cmocka_unit_test(test_records),
		cmocka_unit_test(test_python_frames),
		cmocka_unit_test(test_field_checks),
		cmocka_unit_test(test_memory_points),
		cmocka_unit_test(test_window_kinds_versions),
		cmocka_unit_test(test_window_faults_versions),
		cmocka_unit_test(test_unknown_and_lengths),
		cmocka_unit_test(test_damage_every_byte),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
