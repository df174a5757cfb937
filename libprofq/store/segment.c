/* SPDX-License-Identifier: MIT */
#include <zlib.h>

#include "base/macro.h"
#include "store/segment.h"

#define ENTRY_SIZE_V4 24 /* proc, tid, stack, thread, user, kernel: u32 each */
/* proc, tid, stack, thread, kind, records: u32 each; u64 value: user | kernel << 32 for
 * KIND_CPU, else the weight. */
#define ENTRY_SIZE 32

void segment_buf_done(SegmentBuf *b)
{
	free(b->data);
	*b = (SegmentBuf){ 0 };
}

static uint8_t *reserve(SegmentBuf *b, size_t n)
{
	if (b->error)
		return NULL;
	if (GREEDY_REALLOC(b->data, b->allocated, b->len + n) < 0) {
		b->error = -ENOMEM;
		return NULL;
	}
	b->len += n;
	return b->data + b->len - n;
}

static void put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const uint8_t *p)
{
	return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

static uint32_t crc(const uint8_t *p, size_t n)
{
	return (uint32_t)crc32(crc32(0L, Z_NULL, 0), p, (uInt)n);
}

void segment_put_header(SegmentBuf *b, int64_t created_ns)
{
	uint8_t *p = reserve(b, SEGMENT_HEADER_SIZE);

	if (!p)
		return;
	memcpy(p, SEGMENT_MAGIC, 8);
	put_u32(p + 8, SEGMENT_VERSION);
	put_u32(p + 12, SEGMENT_HEADER_SIZE);
	put_u64(p + 16, (uint64_t)created_ns);
	put_u32(p + 24, 0);
	put_u32(p + 28, crc(p, 28));
}

/* Starts a record; returns its payload area. finish_record() writes the CRC. */
static uint8_t *begin_record(SegmentBuf *b, SegmentRecordType type, size_t payload,
			     size_t *ret_start)
{
	uint8_t *p;

	if (payload > SEGMENT_MAX_RECORD) {
		b->error = b->error ?: -E2BIG;
		return NULL;
	}
	*ret_start = b->len;
	p = reserve(b, 8 + payload + 4);
	if (!p)
		return NULL;
	put_u32(p, type);
	put_u32(p + 4, (uint32_t)payload);
	return p + 8;
}

static void finish_record(SegmentBuf *b, size_t start)
{
	size_t n = b->len - start - 4;

	put_u32(b->data + start + n, crc(b->data + start, n));
}

void segment_put_string(SegmentBuf *b, uint32_t id, const char *s)
{
	size_t len = strlen(s), start;
	uint8_t *p;

	len = MIN(len, (size_t)SEGMENT_MAX_STRING);
	p = begin_record(b, SEGMENT_STRING, 4 + len, &start);
	if (!p)
		return;
	put_u32(p, id);
	memcpy(p + 4, s, len);
	finish_record(b, start);
}

#define FRAME_SIZE 48

void segment_put_frame(SegmentBuf *b, uint32_t id, const StoreFrame *f)
{
	size_t start;
	uint8_t *p = begin_record(b, SEGMENT_FRAME, FRAME_SIZE, &start);

	if (!p)
		return;
	put_u32(p, id);
	put_u32(p + 4, f->function);
	put_u32(p + 8, f->module);
	put_u32(p + 12, f->file);
	put_u32(p + 16, f->line);
	put_u32(p + 20, f->flags);
	put_u64(p + 24, f->address);
	put_u32(p + 32, f->symbol);
	put_u32(p + 36, f->decl_file);
	put_u32(p + 40, f->decl_line);
	put_u32(p + 44, 0);
	finish_record(b, start);
}

void segment_put_stack(SegmentBuf *b, uint32_t id, const uint32_t *frames, size_t n)
{
	size_t start;
	uint8_t *p = begin_record(b, SEGMENT_STACK, 8 + 4 * n, &start);

	if (!p)
		return;
	put_u32(p, id);
	put_u32(p + 4, (uint32_t)n);
	for (size_t i = 0; i < n; i++)
		put_u32(p + 8 + 4 * i, frames[i]);
	finish_record(b, start);
}

/* Version 5 added the cgroup and its labels after the fields of PROC_SIZE_V4. */
#define PROC_SIZE_V4 96
#define PROC_SIZE 112

void segment_put_proc(SegmentBuf *b, const SegmentProc *sp)
{
	const StoreProc *p = &sp->p;
	size_t start;
	uint8_t *o = begin_record(b, SEGMENT_PROC, PROC_SIZE, &start);

	if (!o)
		return;
	put_u32(o, sp->id);
	put_u32(o + 4, p->pid);
	put_u32(o + 8, p->ppid);
	put_u32(o + 12, p->uid);
	put_u32(o + 16, p->flags);
	put_u32(o + 20, (uint32_t)p->exit_code);
	put_u64(o + 24, (uint64_t)p->start_ns);
	put_u64(o + 32, (uint64_t)p->exit_ns);
	put_u64(o + 40, p->boot_id);
	put_u64(o + 48, p->start_boot_ns);
	put_u32(o + 56, p->comm);
	put_u32(o + 60, p->cmdline);
	put_u64(o + 64, p->user_ns);
	put_u64(o + 72, p->sys_ns);
	put_u64(o + 80, p->child_user_ns);
	put_u64(o + 88, p->child_sys_ns);
	put_u32(o + 96, p->cgroup);
	put_u32(o + 100, p->unit);
	put_u32(o + 104, p->slice);
	put_u32(o + 108, p->container);
	finish_record(b, start);
}

#define WINDOW_HEAD_V4 52
#define WINDOW_HEAD 60 /* then u64 records */

#define MEM_SIZE 56 /* proc, flags: u32; time, anon, file, shmem, peak, peak time: u64 */

void segment_put_window(SegmentBuf *b, const Window *w, const WindowEntry *entries,
			const MemPoint *mem)
{
	size_t start;
	uint8_t *p = begin_record(b, SEGMENT_WINDOW,
				  WINDOW_HEAD + ENTRY_SIZE * w->n_entries + 4 + MEM_SIZE * w->n_mem,
				  &start);

	if (!p)
		return;
	put_u64(p, (uint64_t)w->start_ns);
	put_u64(p + 8, (uint64_t)w->end_ns);
	put_u64(p + 16, w->period_ns);
	put_u64(p + 24, w->samples);
	put_u64(p + 32, w->idle);
	put_u64(p + 40, w->lost);
	put_u32(p + 48, (uint32_t)w->n_entries);
	put_u64(p + 52, w->records);
	p += WINDOW_HEAD;
	for (size_t i = 0; i < w->n_entries; i++, p += ENTRY_SIZE) {
		put_u32(p, entries[i].proc);
		put_u32(p + 4, entries[i].tid);
		put_u32(p + 8, entries[i].stack);
		put_u32(p + 12, entries[i].thread);
		put_u32(p + 16, entries[i].kind);
		put_u32(p + 20, entries[i].records);
		put_u64(p + 24, entries[i].kind == KIND_CPU
					? entries[i].user | (uint64_t)entries[i].kernel << 32
					: entries[i].weight);
	}
	put_u32(p, (uint32_t)w->n_mem);
	p += 4;
	for (size_t i = 0; i < w->n_mem; i++, p += MEM_SIZE) {
		put_u32(p, mem[i].proc);
		put_u32(p + 4, mem[i].flags);
		put_u64(p + 8, (uint64_t)mem[i].time_ns);
		put_u64(p + 16, mem[i].anon);
		put_u64(p + 24, mem[i].file);
		put_u64(p + 32, mem[i].shmem);
		put_u64(p + 40, mem[i].peak);
		put_u64(p + 48, (uint64_t)mem[i].peak_ns);
	}
	finish_record(b, start);
}

void segment_window_entry(const SegmentWindow *w, size_t i, WindowEntry *ret)
{
	const uint8_t *p = w->entries + i * w->entry_size;

	*ret = (WindowEntry){ .proc = get_u32(p),
			      .tid = get_u32(p + 4),
			      .stack = get_u32(p + 8),
			      .thread = get_u32(p + 12) };
	if (w->entry_size < ENTRY_SIZE) {
		ret->user = get_u32(p + 16);
		ret->kernel = get_u32(p + 20);
		return;
	}
	ret->kind = get_u32(p + 16);
	ret->records = get_u32(p + 20);
	if (ret->kind == KIND_CPU) {
		ret->user = get_u32(p + 24);
		ret->kernel = get_u32(p + 28);
	} else {
		ret->weight = get_u64(p + 24);
	}
}

static bool id_ok(uint32_t id)
{
	return id != 0 && id < SEGMENT_MAX_ID;
}

void segment_window_mem(const SegmentWindow *w, size_t i, MemPoint *ret)
{
	const uint8_t *p = w->mem + i * MEM_SIZE;

	*ret = (MemPoint){ .proc = get_u32(p),
			   .flags = get_u32(p + 4),
			   .time_ns = (int64_t)get_u64(p + 8),
			   .anon = get_u64(p + 16),
			   .file = get_u64(p + 24),
			   .shmem = get_u64(p + 32),
			   .peak = get_u64(p + 40),
			   .peak_ns = (int64_t)get_u64(p + 48) };
}

/* The memory points after a window's entries (version 5+): their count and bytes checked. */
static int decode_window_mem(uint32_t version, SegmentWindow *w, size_t head, const uint8_t *p,
			     size_t len)
{
	size_t off = head + w->entry_size * w->n_entries;

	if (version < 5)
		return len == off ? 0 : -EBADMSG;
	if (len < off + 4)
		return -EBADMSG;
	w->n_mem = get_u32(p + off);
	w->mem = p + off + 4;
	if (w->n_mem > (len - off - 4) / MEM_SIZE || len != off + 4 + MEM_SIZE * w->n_mem)
		return -EBADMSG;
	for (size_t i = 0; i < w->n_mem; i++) {
		MemPoint m;

		segment_window_mem(w, i, &m);
		if (!id_ok(m.proc) || (m.flags & ~MEM_FLAGS_ALL) || m.time_ns < 0 || m.peak_ns < 0)
			return -EBADMSG;
	}
	return 0;
}

/* Decodes one record's payload; -EBADMSG when its fields do not make sense. */
static int decode(uint32_t version, uint32_t type, const uint8_t *p, size_t len,
		  const SegmentVisitor *v, void *userdata)
{
	uint32_t proc_flags = version >= 3 ? PROC_FLAGS_ALL : PROC_FLAGS_ALL & ~PROC_PRIVATE;
	uint32_t frame_flags = version >= 4 ? FRAME_FLAGS_ALL
					    : FRAME_FLAGS_ALL & ~(FRAME_PYTHON | FRAME_PYTHON_EVAL);

	switch (type) {
	case SEGMENT_STRING:
		if (len < 4 || len - 4 > SEGMENT_MAX_STRING || !id_ok(get_u32(p)) ||
		    memchr(p + 4, '\0', len - 4))
			return -EBADMSG;
		return v->string ? v->string(userdata, get_u32(p), (const char *)p + 4, len - 4)
				 : 0;
	case SEGMENT_FRAME: {
		StoreFrame f;

		if (len != FRAME_SIZE || !id_ok(get_u32(p)))
			return -EBADMSG;
		f = (StoreFrame){ .function = get_u32(p + 4),
				  .module = get_u32(p + 8),
				  .file = get_u32(p + 12),
				  .line = get_u32(p + 16),
				  .flags = get_u32(p + 20),
				  .address = get_u64(p + 24),
				  .symbol = get_u32(p + 32),
				  .decl_file = get_u32(p + 36),
				  .decl_line = get_u32(p + 40) };
		if (f.flags & ~frame_flags)
			return -EBADMSG;
		return v->frame ? v->frame(userdata, get_u32(p), &f) : 0;
	}
	case SEGMENT_STACK: {
		_cleanup_free_ uint32_t *frames = NULL;
		uint32_t n;

		if (len < 8 || !id_ok(get_u32(p)))
			return -EBADMSG;
		n = get_u32(p + 4);
		if (n == 0 || n > STORE_STACK_MAX || len != 8 + 4 * (size_t)n)
			return -EBADMSG;
		frames = malloc(n * sizeof(uint32_t));
		if (!frames)
			return -ENOMEM;
		for (uint32_t i = 0; i < n; i++)
			frames[i] = get_u32(p + 8 + 4 * i);
		return v->stack ? v->stack(userdata, get_u32(p), frames, n) : 0;
	}
	case SEGMENT_PROC: {
		SegmentProc sp;

		if (len != (version >= 5 ? PROC_SIZE : PROC_SIZE_V4) || !id_ok(get_u32(p)))
			return -EBADMSG;
		sp = (SegmentProc){ .id = get_u32(p) };
		sp.p = (StoreProc){ .pid = get_u32(p + 4),
				    .ppid = get_u32(p + 8),
				    .uid = get_u32(p + 12),
				    .flags = get_u32(p + 16),
				    .exit_code = (int32_t)get_u32(p + 20),
				    .start_ns = (int64_t)get_u64(p + 24),
				    .exit_ns = (int64_t)get_u64(p + 32),
				    .boot_id = get_u64(p + 40),
				    .start_boot_ns = get_u64(p + 48),
				    .comm = get_u32(p + 56),
				    .cmdline = get_u32(p + 60),
				    .user_ns = get_u64(p + 64),
				    .sys_ns = get_u64(p + 72),
				    .child_user_ns = get_u64(p + 80),
				    .child_sys_ns = get_u64(p + 88) };
		if (version >= 5) {
			sp.p.cgroup = get_u32(p + 96);
			sp.p.unit = get_u32(p + 100);
			sp.p.slice = get_u32(p + 104);
			sp.p.container = get_u32(p + 108);
		}
		/* Times are realtime since the epoch; negative ones would make differences of
		 * them (real time, ranges) overflow in the query engine. */
		if (sp.p.pid == 0 || (sp.p.flags & ~proc_flags) || sp.p.start_ns < 0 ||
		    sp.p.exit_ns < 0)
			return -EBADMSG;
		return v->proc ? v->proc(userdata, &sp) : 0;
	}
	case SEGMENT_WINDOW: {
		size_t head = version >= 5 ? WINDOW_HEAD : WINDOW_HEAD_V4;
		SegmentWindow w;

		if (len < head)
			return -EBADMSG;
		w = (SegmentWindow){ .start_ns = (int64_t)get_u64(p),
				     .end_ns = (int64_t)get_u64(p + 8),
				     .period_ns = get_u64(p + 16),
				     .samples = get_u64(p + 24),
				     .idle = get_u64(p + 32),
				     .lost = get_u64(p + 40),
				     .n_entries = get_u32(p + 48),
				     .records = version >= 5 ? get_u64(p + 52) : 0,
				     .entry_size = version >= 5 ? ENTRY_SIZE : ENTRY_SIZE_V4,
				     .entries = p + head };
		if (w.start_ns < 0 || w.end_ns <= w.start_ns || w.period_ns == 0 ||
		    w.period_ns > NSEC_PER_SEC || w.n_entries > (len - head) / w.entry_size ||
		    decode_window_mem(version, &w, head, p, len) < 0)
			return -EBADMSG;
		for (size_t i = 0; version >= 5 && i < w.n_entries; i++)
			if (get_u32(w.entries + i * ENTRY_SIZE + 16) >=
			    (version >= 6 ? _KIND_MAX : KIND_FAULTS))
				return -EBADMSG;
		return v->window ? v->window(userdata, &w) : 0;
	}
	default:
		/* A record type of a later version of the same format: skipped. */
		return 0;
	}
}

int segment_parse(const uint8_t *buf, size_t len, const SegmentVisitor *v, void *userdata,
		  SegmentParseResult *ret)
{
	SegmentParseResult res = { 0 };
	size_t off;

	if (len < SEGMENT_HEADER_SIZE || memcmp(buf, SEGMENT_MAGIC, 8) != 0)
		return -EBADMSG;
	if (get_u32(buf + 28) != crc(buf, 28))
		return -EBADMSG;
	if (get_u32(buf + 8) < SEGMENT_VERSION_OLDEST || get_u32(buf + 8) > SEGMENT_VERSION) {
		ret->version = get_u32(buf + 8);
		return -EPROTONOSUPPORT;
	}
	if (get_u32(buf + 12) != SEGMENT_HEADER_SIZE)
		return -EBADMSG;
	res.version = get_u32(buf + 8);
	res.created_ns = (int64_t)get_u64(buf + 16);
	off = res.good_bytes = SEGMENT_HEADER_SIZE;

	while (off < len) {
		uint32_t type, plen;
		int r;

		if (len - off < 12) {
			res.tail_error = -EBADMSG; /* a torn record header */
			break;
		}
		type = get_u32(buf + off);
		plen = get_u32(buf + off + 4);
		if (plen > SEGMENT_MAX_RECORD || len - off - 12 < plen) {
			res.tail_error = -EBADMSG;
			break;
		}
		if (get_u32(buf + off + 8 + plen) != crc(buf + off, 8 + (size_t)plen)) {
			res.tail_error = -EBADMSG;
			break;
		}
		r = decode(res.version, type, buf + off + 8, plen, v, userdata);
		if (r < 0) {
			res.tail_error = r;
			break;
		}
		off += 12 + (size_t)plen;
		res.records++;
		res.good_bytes = off;
	}
	*ret = res;
	return 0;
}
