/* SPDX-License-Identifier: MIT */
#include <xxhash.h>

#include "base/cgroup.h"
#include "base/hashindex.h"
#include "base/macro.h"
#include "base/text.h"
#include "store/store.h"

/*
 * Each intern table is an array indexed by id (slot 0 unused), a hash index over it, and a list
 * of free ids for reuse. A slot with refs == 0 is free.
 */
typedef struct IdPool {
	uint32_t *free_ids;
	size_t n_free;
	size_t allocated_free;
	uint32_t limit; /* one past the highest id ever handed out; starts at 1 */
} IdPool;

typedef struct StrEntry {
	char *str;
	uint64_t hash;
	uint32_t refs;
	uint32_t len;
} StrEntry;

typedef struct FrameEntry {
	StoreFrame f;
	uint64_t hash;
	uint32_t refs;
} FrameEntry;

typedef struct StackEntry {
	FrameId *frames;
	uint64_t hash;
	uint32_t refs;
	uint32_t n;
} StackEntry;

typedef struct ProcEntry {
	StoreProc p;
	uint32_t refs;
	uint32_t version;
	uint64_t hash; /* of the identity */
} ProcEntry;

struct Store {
	StrEntry *strs;
	size_t allocated_strs;
	IdPool str_ids;
	HashIndex *str_index;

	FrameEntry *frames;
	size_t allocated_frames;
	IdPool frame_ids;
	HashIndex *frame_index;

	StackEntry *stacks;
	size_t allocated_stacks;
	IdPool stack_ids;
	HashIndex *stack_index;

	ProcEntry *procs;
	size_t allocated_procs;
	IdPool proc_ids;
	size_t n_procs;
	HashIndex *proc_index;

	Window **windows; /* oldest first */
	size_t n_windows;
	size_t allocated_windows;
	HashIndex *open_index; /* entries of the open window by key */
	uint64_t evicted;

	size_t heap_bytes; /* strings, stack frame arrays and window entries */
};

/* Takes a free id or a new one; *ret_new says the caller must grow its array. */
static int id_pool_take(IdPool *p, uint32_t *ret)
{
	if (p->n_free > 0) {
		*ret = p->free_ids[--p->n_free];
		return 0;
	}
	if (p->limit == UINT32_MAX)
		return -ENOSPC;
	*ret = p->limit++;
	return 0;
}

static int id_pool_give(IdPool *p, uint32_t id)
{
	int r = GREEDY_REALLOC(p->free_ids, p->allocated_free, p->n_free + 1);

	if (r < 0)
		return r;
	p->free_ids[p->n_free++] = id;
	return 0;
}

static size_t id_pool_memory(const IdPool *p)
{
	return p->allocated_free * sizeof(uint32_t);
}

int store_new(Store **ret)
{
	_cleanup_(store_freep) Store *s = NULL;
	int r;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->str_ids.limit = s->frame_ids.limit = s->stack_ids.limit = s->proc_ids.limit = 1;
	r = hash_index_new(&s->str_index);
	if (r < 0)
		return r;
	r = hash_index_new(&s->frame_index);
	if (r < 0)
		return r;
	r = hash_index_new(&s->stack_index);
	if (r < 0)
		return r;
	r = hash_index_new(&s->open_index);
	if (r < 0)
		return r;
	r = hash_index_new(&s->proc_index);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(s);
	return 0;
}

static void window_free(Window *w)
{
	if (!w)
		return;
	free(w->entries);
	free(w->mem);
	free(w);
}

Store *store_free(Store *s)
{
	if (!s)
		return NULL;
	for (size_t i = 0; i < s->n_windows; i++)
		window_free(s->windows[i]);
	free(s->windows);
	for (uint32_t i = 1; i < s->str_ids.limit; i++)
		free(s->strs[i].str);
	for (uint32_t i = 1; i < s->stack_ids.limit; i++)
		free(s->stacks[i].frames);
	free(s->strs);
	free(s->frames);
	free(s->stacks);
	free(s->procs);
	free(s->str_ids.free_ids);
	free(s->frame_ids.free_ids);
	free(s->stack_ids.free_ids);
	free(s->proc_ids.free_ids);
	hash_index_free(s->str_index);
	hash_index_free(s->frame_index);
	hash_index_free(s->stack_index);
	hash_index_free(s->open_index);
	hash_index_free(s->proc_index);
	free(s);
	return NULL;
}

/* ---- strings ---- */

typedef struct StrKey {
	const char *str;
	size_t len;
} StrKey;

static bool str_eq(uint32_t idx, const void *key, void *userdata)
{
	const Store *s = userdata;
	const StrKey *k = key;

	return s->strs[idx].len == k->len && memcmp(s->strs[idx].str, k->str, k->len) == 0;
}

int store_intern_string(Store *s, const char *str, StrId *ret)
{
	_cleanup_free_ char *escaped = NULL;
	StrKey k = { .str = str, .len = strlen(str) };
	uint64_t hash;
	uint32_t id;
	char *copy;
	int r;

	/* Strings come from binaries, /proc and process memory: stored as answers show them. */
	if (!text_is_clean(str, k.len)) {
		r = text_escape(str, k.len, &escaped);
		if (r < 0)
			return r;
		str = escaped;
		k = (StrKey){ .str = str, .len = strlen(str) };
	}
	if (k.len > UINT32_MAX)
		return -E2BIG;
	hash = XXH3_64bits(str, k.len);
	if (hash_index_find(s->str_index, hash, str_eq, &k, s, &id) == 0) {
		s->strs[id].refs++;
		*ret = id;
		return 0;
	}
	copy = strndup(str, k.len);
	if (!copy)
		return -ENOMEM;
	r = id_pool_take(&s->str_ids, &id);
	if (r < 0)
		goto fail;
	r = GREEDY_REALLOC(s->strs, s->allocated_strs, (size_t)id + 1);
	if (r < 0)
		goto fail_id;
	r = hash_index_insert(s->str_index, hash, id);
	if (r < 0)
		goto fail_id;
	s->strs[id] = (StrEntry){ .str = copy, .hash = hash, .refs = 1, .len = (uint32_t)k.len };
	s->heap_bytes += k.len + 1;
	*ret = id;
	return 0;
fail_id:
	/* The id is the last one taken; giving it back cannot need memory we lack for long. */
	(void)id_pool_give(&s->str_ids, id);
fail:
	free(copy);
	return r;
}

const char *store_string(const Store *s, StrId id)
{
	if (id == 0 || id >= s->str_ids.limit || s->strs[id].refs == 0)
		return NULL;
	return s->strs[id].str;
}

size_t store_string_id_limit(const Store *s)
{
	return s->str_ids.limit;
}

void store_string_ref(Store *s, StrId id)
{
	if (id != 0)
		s->strs[id].refs++;
}

void store_string_unref(Store *s, StrId id)
{
	StrEntry *e;

	if (id == 0)
		return;
	e = &s->strs[id];
	if (--e->refs > 0)
		return;
	(void)hash_index_remove(s->str_index, e->hash, id);
	s->heap_bytes -= e->len + 1;
	free(e->str);
	e->str = NULL;
	/* On ENOMEM the id is leaked (never reused), which is safe. */
	(void)id_pool_give(&s->str_ids, id);
}

/* ---- frames ---- */

static uint64_t frame_hash(const StoreFrame *f)
{
	const uint64_t v[6] = {
		(uint64_t)f->function << 32 | f->module,
		(uint64_t)f->file << 32 | f->line,
		f->flags,
		f->address,
		(uint64_t)f->symbol << 32 | f->decl_file,
		f->decl_line,
	};

	return XXH3_64bits(v, sizeof(v));
}

static bool frame_eq(uint32_t idx, const void *key, void *userdata)
{
	const StoreFrame *a = &((const Store *)userdata)->frames[idx].f, *b = key;

	return a->function == b->function && a->module == b->module && a->file == b->file &&
	       a->line == b->line && a->flags == b->flags && a->address == b->address &&
	       a->symbol == b->symbol && a->decl_file == b->decl_file &&
	       a->decl_line == b->decl_line;
}

int store_intern_frame(Store *s, const StoreFrame *f, FrameId *ret)
{
	uint64_t hash = frame_hash(f);
	uint32_t id;
	int r;

	if (hash_index_find(s->frame_index, hash, frame_eq, f, s, &id) == 0) {
		s->frames[id].refs++;
		*ret = id;
		return 0;
	}
	r = id_pool_take(&s->frame_ids, &id);
	if (r < 0)
		return r;
	r = GREEDY_REALLOC(s->frames, s->allocated_frames, (size_t)id + 1);
	if (r >= 0)
		r = hash_index_insert(s->frame_index, hash, id);
	if (r < 0) {
		(void)id_pool_give(&s->frame_ids, id);
		return r;
	}
	s->frames[id] = (FrameEntry){ .f = *f, .hash = hash, .refs = 1 };
	store_string_ref(s, f->function);
	store_string_ref(s, f->module);
	store_string_ref(s, f->file);
	store_string_ref(s, f->symbol);
	store_string_ref(s, f->decl_file);
	*ret = id;
	return 0;
}

const StoreFrame *store_frame(const Store *s, FrameId id)
{
	if (id == 0 || id >= s->frame_ids.limit || s->frames[id].refs == 0)
		return NULL;
	return &s->frames[id].f;
}

void store_frame_ref(Store *s, FrameId id)
{
	if (id != 0)
		s->frames[id].refs++;
}

void store_frame_unref(Store *s, FrameId id)
{
	FrameEntry *e;

	if (id == 0)
		return;
	e = &s->frames[id];
	if (--e->refs > 0)
		return;
	(void)hash_index_remove(s->frame_index, e->hash, id);
	store_string_unref(s, e->f.function);
	store_string_unref(s, e->f.module);
	store_string_unref(s, e->f.file);
	store_string_unref(s, e->f.symbol);
	store_string_unref(s, e->f.decl_file);
	(void)id_pool_give(&s->frame_ids, id);
}

size_t store_frame_id_limit(const Store *s)
{
	return s->frame_ids.limit;
}

/* ---- stacks ---- */

typedef struct StackKey {
	const FrameId *frames;
	size_t n;
} StackKey;

static bool stack_eq(uint32_t idx, const void *key, void *userdata)
{
	const StackEntry *e = &((const Store *)userdata)->stacks[idx];
	const StackKey *k = key;

	return e->n == k->n && memcmp(e->frames, k->frames, k->n * sizeof(FrameId)) == 0;
}

int store_intern_stack(Store *s, const FrameId *frames, size_t n, StackId *ret)
{
	StackKey k = { .frames = frames, .n = n };
	uint64_t hash;
	FrameId *copy;
	uint32_t id;
	int r;

	if (n == 0 || n > STORE_STACK_MAX)
		return -EINVAL;
	hash = XXH3_64bits(frames, n * sizeof(FrameId));
	if (hash_index_find(s->stack_index, hash, stack_eq, &k, s, &id) == 0) {
		s->stacks[id].refs++;
		*ret = id;
		return 0;
	}
	copy = malloc(n * sizeof(FrameId));
	if (!copy)
		return -ENOMEM;
	memcpy(copy, frames, n * sizeof(FrameId));
	r = id_pool_take(&s->stack_ids, &id);
	if (r < 0)
		goto fail;
	r = GREEDY_REALLOC(s->stacks, s->allocated_stacks, (size_t)id + 1);
	if (r >= 0)
		r = hash_index_insert(s->stack_index, hash, id);
	if (r < 0) {
		(void)id_pool_give(&s->stack_ids, id);
		goto fail;
	}
	s->stacks[id] = (StackEntry){ .frames = copy, .hash = hash, .refs = 1, .n = (uint32_t)n };
	for (size_t i = 0; i < n; i++)
		store_frame_ref(s, frames[i]);
	s->heap_bytes += n * sizeof(FrameId);
	*ret = id;
	return 0;
fail:
	free(copy);
	return r;
}

const FrameId *store_stack(const Store *s, StackId id, size_t *ret_n)
{
	if (id == 0 || id >= s->stack_ids.limit || s->stacks[id].refs == 0) {
		*ret_n = 0;
		return NULL;
	}
	*ret_n = s->stacks[id].n;
	return s->stacks[id].frames;
}

void store_stack_ref(Store *s, StackId id)
{
	if (id != 0)
		s->stacks[id].refs++;
}

void store_stack_unref(Store *s, StackId id)
{
	StackEntry *e;

	if (id == 0)
		return;
	e = &s->stacks[id];
	if (--e->refs > 0)
		return;
	(void)hash_index_remove(s->stack_index, e->hash, id);
	for (uint32_t i = 0; i < e->n; i++)
		store_frame_unref(s, e->frames[i]);
	s->heap_bytes -= e->n * sizeof(FrameId);
	free(e->frames);
	e->frames = NULL;
	e->n = 0;
	(void)id_pool_give(&s->stack_ids, id);
}

size_t store_stack_id_limit(const Store *s)
{
	return s->stack_ids.limit;
}

/* ---- processes ---- */

typedef struct ProcKey {
	uint32_t pid;
	uint64_t boot_id, start_boot_ns;
} ProcKey;

static uint64_t proc_hash(uint32_t pid, uint64_t boot_id, uint64_t start_boot_ns)
{
	const uint64_t v[3] = { pid, boot_id, start_boot_ns };

	return XXH3_64bits(v, sizeof(v));
}

static bool proc_eq(uint32_t idx, const void *key, void *userdata)
{
	const StoreProc *p = &((const Store *)userdata)->procs[idx].p;
	const ProcKey *k = key;

	return p->pid == k->pid && p->boot_id == k->boot_id && p->start_boot_ns == k->start_boot_ns;
}

static int proc_lookup(const Store *s, uint32_t pid, uint64_t boot_id, uint64_t start_boot_ns,
		       uint32_t *ret)
{
	ProcKey k = { .pid = pid, .boot_id = boot_id, .start_boot_ns = start_boot_ns };

	return hash_index_find(s->proc_index, proc_hash(pid, boot_id, start_boot_ns), proc_eq, &k,
			       (void *)s, ret);
}

int store_proc_add(Store *s, const StoreProc *p, ProcId *ret)
{
	uint64_t hash = proc_hash(p->pid, p->boot_id, p->start_boot_ns);
	StrId *strs[STORE_PROC_N_STRINGS];
	uint32_t id;
	int r;

	if (proc_lookup(s, p->pid, p->boot_id, p->start_boot_ns, &id) == 0)
		return -EEXIST;
	r = id_pool_take(&s->proc_ids, &id);
	if (r < 0)
		return r;
	r = GREEDY_REALLOC(s->procs, s->allocated_procs, (size_t)id + 1);
	if (r >= 0)
		r = hash_index_insert(s->proc_index, hash, id);
	if (r < 0) {
		(void)id_pool_give(&s->proc_ids, id);
		return r;
	}
	s->procs[id] = (ProcEntry){ .p = *p, .refs = 1, .version = 1, .hash = hash };
	store_proc_strings(&s->procs[id].p, strs);
	for (size_t i = 0; i < STORE_PROC_N_STRINGS; i++)
		store_string_ref(s, *strs[i]);
	s->n_procs++;
	*ret = id;
	return 0;
}

int store_proc_find(Store *s, uint32_t pid, uint64_t boot_id, uint64_t start_boot_ns, ProcId *ret)
{
	uint32_t id;
	int r = proc_lookup(s, pid, boot_id, start_boot_ns, &id);

	if (r < 0)
		return r;
	s->procs[id].refs++;
	*ret = id;
	return 0;
}

const StoreProc *store_proc(const Store *s, ProcId id)
{
	if (id == 0 || id >= s->proc_ids.limit || s->procs[id].refs == 0)
		return NULL;
	return &s->procs[id].p;
}

StoreProc *store_proc_mut(Store *s, ProcId id)
{
	if (!store_proc(s, id))
		return NULL;
	s->procs[id].version++;
	return &s->procs[id].p;
}

uint32_t store_proc_version(const Store *s, ProcId id)
{
	return store_proc(s, id) ? s->procs[id].version : 0;
}

int store_proc_set_start(Store *s, ProcId id, uint64_t start_boot_ns, int64_t start_ns)
{
	ProcEntry *e;
	uint32_t other;

	if (!store_proc(s, id))
		return -ENOENT;
	e = &s->procs[id];
	if (proc_lookup(s, e->p.pid, e->p.boot_id, start_boot_ns, &other) == 0 && other != id)
		return -EEXIST;
	(void)hash_index_remove(s->proc_index, e->hash, id);
	e->p.start_boot_ns = start_boot_ns;
	e->p.start_ns = start_ns;
	e->hash = proc_hash(e->p.pid, e->p.boot_id, start_boot_ns);
	e->version++;
	/* Re-inserting what was just removed needs no new memory. */
	(void)hash_index_insert(s->proc_index, e->hash, id);
	return 0;
}

void store_proc_set_comm(Store *s, ProcId id, StrId comm)
{
	StoreProc *p = store_proc_mut(s, id);

	if (!p || p->comm == comm)
		return;
	store_string_ref(s, comm);
	store_string_unref(s, p->comm);
	p->comm = comm;
}

/* Interns str ("" or NULL: 0) into *id, dropping what *id held. */
static int replace_string(Store *s, StrId *id, const char *str)
{
	StrId new = 0;
	int r;

	if (str && *str) {
		r = store_intern_string(s, str, &new);
		if (r < 0)
			return r;
	}
	store_string_unref(s, *id);
	*id = new;
	return 0;
}

int store_proc_set_cgroup(Store *s, ProcId id, const char *path)
{
	const StoreProc *cur = store_proc(s, id);
	CgroupLabels l = { 0 };
	StoreProc *p;
	int r;

	if (!cur)
		return -ENOENT;
	if (path && cur->cgroup && streq_ptr(store_string(s, cur->cgroup), path))
		return 0;
	if (!path && !cur->cgroup)
		return 0;
	if (path)
		cgroup_labels(path, &l);
	p = store_proc_mut(s, id);
	r = replace_string(s, &p->cgroup, path);
	if (r >= 0)
		r = replace_string(s, &p->unit, l.unit);
	if (r >= 0)
		r = replace_string(s, &p->slice, l.slice);
	if (r >= 0)
		r = replace_string(s, &p->container, l.container);
	return r;
}

void store_proc_ref(Store *s, ProcId id)
{
	if (id != 0)
		s->procs[id].refs++;
}

void store_proc_unref(Store *s, ProcId id)
{
	StrId *strs[STORE_PROC_N_STRINGS];
	ProcEntry *e;

	if (id == 0)
		return;
	e = &s->procs[id];
	if (--e->refs > 0)
		return;
	(void)hash_index_remove(s->proc_index, e->hash, id);
	store_proc_strings(&e->p, strs);
	for (size_t i = 0; i < STORE_PROC_N_STRINGS; i++)
		store_string_unref(s, *strs[i]);
	e->p = (StoreProc){ 0 };
	s->n_procs--;
	(void)id_pool_give(&s->proc_ids, id);
}

size_t store_proc_id_limit(const Store *s)
{
	return s->proc_ids.limit;
}

size_t store_proc_count(const Store *s)
{
	return s->n_procs;
}

/* ---- windows ---- */

Window *store_window_current(Store *s)
{
	if (s->n_windows == 0 || !s->windows[s->n_windows - 1]->open)
		return NULL;
	return s->windows[s->n_windows - 1];
}

int store_window_open(Store *s, int64_t start_ns, int64_t end_ns, uint64_t period_ns)
{
	Window *w;
	int r;

	if (store_window_current(s))
		return -EBUSY;
	if (end_ns <= start_ns)
		return -EINVAL;
	r = GREEDY_REALLOC(s->windows, s->allocated_windows, s->n_windows + 1);
	if (r < 0)
		return r;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	*w = (Window){
		.start_ns = start_ns, .end_ns = end_ns, .period_ns = period_ns, .open = true
	};
	s->windows[s->n_windows++] = w;
	hash_index_clear(s->open_index);
	return 0;
}

typedef struct EntryKey {
	ProcId proc;
	uint32_t tid;
	StackId stack;
	StrId thread;
	uint32_t kind;
} EntryKey;

static uint64_t entry_hash(const EntryKey *k)
{
	const uint64_t v[3] = { (uint64_t)k->proc << 32 | k->tid,
				(uint64_t)k->stack << 32 | k->thread, k->kind };

	/* CPU entries hash as they did before kinds. */
	return XXH3_64bits(v, k->kind ? sizeof(v) : 2 * sizeof(uint64_t));
}

static bool entry_eq(uint32_t idx, const void *key, void *userdata)
{
	const WindowEntry *e = &((const Window *)userdata)->entries[idx];
	const EntryKey *k = key;

	return e->proc == k->proc && e->tid == k->tid && e->stack == k->stack &&
	       e->thread == k->thread && e->kind == k->kind;
}

/* The open window's entry for k, made if it is new: 0 and *ret, or -errno. */
static int window_entry(Store *s, Window *w, const EntryKey *k, WindowEntry **ret)
{
	uint64_t hash = entry_hash(k);
	uint32_t idx;
	int r;

	if (hash_index_find(s->open_index, hash, entry_eq, k, w, &idx) < 0) {
		if (w->n_entries >= UINT32_MAX - 1)
			return -ENOSPC;
		r = GREEDY_REALLOC(w->entries, w->allocated, w->n_entries + 1);
		if (r < 0)
			return r;
		idx = (uint32_t)w->n_entries;
		r = hash_index_insert(s->open_index, hash, idx);
		if (r < 0)
			return r;
		w->entries[w->n_entries++] = (WindowEntry){ .proc = k->proc,
							    .tid = k->tid,
							    .stack = k->stack,
							    .thread = k->thread,
							    .kind = k->kind };
		store_proc_ref(s, k->proc);
		store_stack_ref(s, k->stack);
		store_string_ref(s, k->thread);
	}
	*ret = &w->entries[idx];
	return 0;
}

int store_window_add_weight(Store *s, ProcId proc, uint32_t tid, StrId thread, StackId stack,
			    uint32_t kind, uint64_t weight)
{
	EntryKey k = { .proc = proc, .tid = tid, .stack = stack, .thread = thread, .kind = kind };
	Window *w = store_window_current(s);
	WindowEntry *e;
	int r;

	if (!w)
		return -ENOENT;
	if (kind == KIND_CPU || kind >= _KIND_MAX)
		return -EINVAL;
	r = window_entry(s, w, &k, &e);
	if (r < 0)
		return r;
	if (e->records < UINT32_MAX)
		e->records++;
	e->weight = weight > UINT64_MAX - e->weight ? UINT64_MAX : e->weight + weight;
	w->records++;
	return 0;
}

int store_window_add(Store *s, ProcId proc, uint32_t tid, StrId thread, StackId stack,
		     bool kernel_mode, uint32_t count)
{
	EntryKey k = { .proc = proc, .tid = tid, .stack = stack, .thread = thread };
	Window *w = store_window_current(s);
	WindowEntry *e;
	int r;

	if (!w)
		return -ENOENT;
	r = window_entry(s, w, &k, &e);
	if (r < 0)
		return r;
	if (kernel_mode)
		e->kernel += count;
	else
		e->user += count;
	w->samples += count;
	return 0;
}

int store_window_add_mem(Store *s, const MemPoint *m)
{
	Window *w = store_window_current(s);
	int r;

	if (!w)
		return -ENOENT;
	if (!store_proc(s, m->proc))
		return -EINVAL;
	if (w->n_mem >= UINT32_MAX - 1)
		return -ENOSPC;
	r = GREEDY_REALLOC(w->mem, w->allocated_mem, w->n_mem + 1);
	if (r < 0)
		return r;
	w->mem[w->n_mem++] = *m;
	store_proc_ref(s, m->proc);
	return 0;
}

static int mem_cmp(const void *a, const void *b)
{
	const MemPoint *x = a, *y = b;

	if (x->proc != y->proc)
		return x->proc < y->proc ? -1 : 1;
	if (x->time_ns != y->time_ns)
		return x->time_ns < y->time_ns ? -1 : 1;
	return 0;
}

static void mem_close(Window *w)
{
	if (w->n_mem > 1)
		qsort(w->mem, w->n_mem, sizeof(MemPoint), mem_cmp);
	if (w->n_mem > 0 && w->allocated_mem > w->n_mem) {
		MemPoint *m = realloc(w->mem, w->n_mem * sizeof(MemPoint));
		if (m) {
			w->mem = m;
			w->allocated_mem = w->n_mem;
		}
	}
}

static int entry_cmp(const void *a, const void *b)
{
	const WindowEntry *x = a, *y = b;

	if (x->proc != y->proc)
		return x->proc < y->proc ? -1 : 1;
	if (x->tid != y->tid)
		return x->tid < y->tid ? -1 : 1;
	if (x->stack != y->stack)
		return x->stack < y->stack ? -1 : 1;
	if (x->thread != y->thread)
		return x->thread < y->thread ? -1 : 1;
	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	return 0;
}

int store_window_close(Store *s)
{
	Window *w = store_window_current(s);

	if (!w)
		return -ENOENT;
	/* An empty window has no entries array: qsort(NULL, 0, ...) is undefined. */
	if (w->n_entries > 1)
		qsort(w->entries, w->n_entries, sizeof(WindowEntry), entry_cmp);
	/* Give back the growth slack: closed windows never change again. */
	if (w->n_entries > 0 && w->allocated > w->n_entries) {
		WindowEntry *e = realloc(w->entries, w->n_entries * sizeof(WindowEntry));
		if (e) {
			w->entries = e;
			w->allocated = w->n_entries;
		}
	}
	mem_close(w);
	s->heap_bytes += w->allocated * sizeof(WindowEntry) + w->allocated_mem * sizeof(MemPoint);
	w->open = false;
	hash_index_clear(s->open_index);
	return 0;
}

size_t store_window_count(const Store *s)
{
	return s->n_windows;
}

const Window *store_window(const Store *s, size_t i)
{
	return i < s->n_windows ? s->windows[i] : NULL;
}

int store_window_import(Store *s, const Window *src)
{
	size_t closed = s->n_windows, pos;
	Window *w;
	int r;

	if (src->end_ns <= src->start_ns)
		return -EINVAL;
	if (store_window_current(s))
		closed--;
	/* Usually the newest: after the last closed window. Older ones (history read back from
	 * disk) go where they belong, between neighbours they do not overlap. */
	pos = closed;
	while (pos > 0 && s->windows[pos - 1]->start_ns >= src->end_ns)
		pos--;
	if (pos > 0 && src->start_ns < s->windows[pos - 1]->end_ns)
		return -EINVAL;
	if (pos < s->n_windows && src->end_ns > s->windows[pos]->start_ns)
		return -EINVAL;
	for (size_t i = 0; i < src->n_entries; i++) {
		const WindowEntry *e = &src->entries[i];

		if (!store_proc(s, e->proc) || !store_stack(s, e->stack, &(size_t){ 0 }) ||
		    (e->thread && !store_string(s, e->thread)) || e->kind >= _KIND_MAX)
			return -EINVAL;
	}
	for (size_t i = 0; i < src->n_mem; i++)
		if (!store_proc(s, src->mem[i].proc) || (src->mem[i].flags & ~MEM_FLAGS_ALL))
			return -EINVAL;
	r = GREEDY_REALLOC(s->windows, s->allocated_windows, s->n_windows + 1);
	if (r < 0)
		return r;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	*w = (Window){ .start_ns = src->start_ns,
		       .end_ns = src->end_ns,
		       .period_ns = src->period_ns,
		       .samples = src->samples,
		       .records = src->records,
		       .idle = src->idle,
		       .lost = src->lost };
	if (src->n_entries > 0) {
		w->entries = malloc(src->n_entries * sizeof(WindowEntry));
		if (!w->entries) {
			free(w);
			return -ENOMEM;
		}
		memcpy(w->entries, src->entries, src->n_entries * sizeof(WindowEntry));
		w->n_entries = w->allocated = src->n_entries;
		qsort(w->entries, w->n_entries, sizeof(WindowEntry), entry_cmp);
	}
	if (src->n_mem > 0) {
		w->mem = malloc(src->n_mem * sizeof(MemPoint));
		if (!w->mem) {
			free(w->entries);
			free(w);
			return -ENOMEM;
		}
		memcpy(w->mem, src->mem, src->n_mem * sizeof(MemPoint));
		w->n_mem = w->allocated_mem = src->n_mem;
		mem_close(w);
	}
	for (size_t i = 0; i < w->n_mem; i++)
		store_proc_ref(s, w->mem[i].proc);
	for (size_t i = 0; i < w->n_entries; i++) {
		store_proc_ref(s, w->entries[i].proc);
		store_stack_ref(s, w->entries[i].stack);
		store_string_ref(s, w->entries[i].thread);
	}
	s->heap_bytes += w->allocated * sizeof(WindowEntry) + w->allocated_mem * sizeof(MemPoint);
	memmove(s->windows + pos + 1, s->windows + pos, (s->n_windows - pos) * sizeof(Window *));
	s->windows[pos] = w;
	s->n_windows++;
	return 0;
}

int store_window_evict(Store *s)
{
	Window *w;

	if (s->n_windows == 0 || s->windows[0]->open)
		return -ENOENT;
	w = s->windows[0];
	for (size_t i = 0; i < w->n_entries; i++) {
		store_stack_unref(s, w->entries[i].stack);
		store_string_unref(s, w->entries[i].thread);
		store_proc_unref(s, w->entries[i].proc);
	}
	for (size_t i = 0; i < w->n_mem; i++)
		store_proc_unref(s, w->mem[i].proc);
	s->heap_bytes -= w->allocated * sizeof(WindowEntry) + w->allocated_mem * sizeof(MemPoint);
	window_free(w);
	memmove(s->windows, s->windows + 1, (s->n_windows - 1) * sizeof(Window *));
	s->n_windows--;
	s->evicted++;
	return 0;
}

uint64_t store_windows_evicted(const Store *s)
{
	return s->evicted;
}

/* Entries of a table in use: ids handed out less those free. */
static size_t id_pool_live(const IdPool *p)
{
	return p->limit - 1 - p->n_free;
}

size_t store_live_memory(const Store *s)
{
	size_t strs = id_pool_live(&s->str_ids), frames = id_pool_live(&s->frame_ids),
	       stacks = id_pool_live(&s->stack_ids), procs = id_pool_live(&s->proc_ids);
	/* Tables grow by doubling: up to twice the entries; hash indexes at least 1/4 full, 16
	 * bytes a slot. */
	size_t m = sizeof(*s) + s->heap_bytes +
		   2 * (strs * sizeof(StrEntry) + frames * sizeof(FrameEntry) +
			stacks * sizeof(StackEntry) + procs * sizeof(ProcEntry)) +
		   4 * 16 * (strs + frames + stacks + procs);

	return m + s->allocated_windows * sizeof(Window *) + s->n_windows * sizeof(Window);
}

size_t store_memory(const Store *s)
{
	const Window *open = s->n_windows > 0 && s->windows[s->n_windows - 1]->open
				     ? s->windows[s->n_windows - 1]
				     : NULL;
	size_t m = sizeof(*s) + s->heap_bytes;

	m += s->allocated_strs * sizeof(StrEntry) + s->allocated_frames * sizeof(FrameEntry) +
	     s->allocated_stacks * sizeof(StackEntry) + s->allocated_procs * sizeof(ProcEntry);
	m += id_pool_memory(&s->str_ids) + id_pool_memory(&s->frame_ids) +
	     id_pool_memory(&s->stack_ids) + id_pool_memory(&s->proc_ids);
	m += hash_index_memory(s->str_index) + hash_index_memory(s->frame_index) +
	     hash_index_memory(s->stack_index) + hash_index_memory(s->open_index) +
	     hash_index_memory(s->proc_index);
	m += s->allocated_windows * sizeof(Window *) + s->n_windows * sizeof(Window);
	if (open)
		m += open->allocated * sizeof(WindowEntry) + open->allocated_mem * sizeof(MemPoint);
	return m;
}
