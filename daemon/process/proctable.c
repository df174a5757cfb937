/* SPDX-License-Identifier: MIT */
#include <sys/stat.h>
#include <xxhash.h>

#include <inttypes.h>

#include "base/cgroup.h"
#include "base/hashindex.h"
#include "base/log.h"
#include "base/macro.h"
#include "base/timeutil.h"
#include "process/cgroupids.h"
#include "process/proctable.h"
#include "symbolize/perfmap.h"

/* A missing address re-reads the maps at most this often. */
#define MAPS_RETRY_NS NSEC_PER_SEC
/* A perf map grows while the JIT compiles; samples in code compiled since the last read stay
 * unnamed until the next one. Checked (one stat) at most this often, read again only if it
 * grew. */
#define PERFMAP_RETRY_NS (250 * NSEC_PER_MSEC)
/* Bytes of perf maps read per tick (100 ms), all processes together: 2 MiB parse in a few
 * milliseconds, and a 60 MiB map is read in 3 s without holding up the loop. */
#define PERFMAP_READ_PER_TICK (2u << 20)
/* A live process's perf map dropped under memory pressure is not read again for this long. */
#define PERFMAP_DROP_BACKOFF_NS (30 * NSEC_PER_SEC)
/* A process not sampled for this long drops its mappings (and so its hold on binaries). */
#define MAPS_IDLE_NS (300 * NSEC_PER_SEC)

typedef struct ExitRecord {
	ProcId id;
	int64_t exit_ns;
} ExitRecord;

struct ProcTable {
	uint64_t boot_id;
	Store *store;
	Symbolizer *sym;
	MapLog *maplog;
	Process **procs;
	size_t n, allocated;
	HashIndex *index;
	void (*refresh_maplog)(void *userdata);
	void *refresh_userdata;
	/* Exited processes' records, oldest first: a ring of PROCTABLE_EXITED_MAX. */
	ExitRecord *exited;
	size_t exited_head, n_exited;
	size_t path_bytes;     /* of every mapping path held, kept as they come and go */
	size_t n_mappings;     /* of every process, kept likewise (memory is asked every tick) */
	size_t n_perfmaps;     /* processes holding a perf map */
	size_t perfmap_cap;    /* bytes of one perf map file held at most */
	size_t perfmap_budget; /* bytes of perf maps still to be read this tick */
	CgroupIds *cgroup_ids; /* for processes /proc no longer shows */
	ProcTableStats stats;
};

int proctable_new(Store *store, Symbolizer *sym, MapLog *maplog, ProcTable **ret)
{
	_cleanup_(proctable_freep) ProcTable *t = calloc(1, sizeof(ProcTable));
	int r;

	if (!t)
		return -ENOMEM;
	t->store = store;
	t->sym = sym;
	t->maplog = maplog;
	t->boot_id = proctable_boot_id();
	t->perfmap_cap = PERFMAP_MAX_FILE;
	t->perfmap_budget = PERFMAP_READ_PER_TICK;
	t->exited = calloc(PROCTABLE_EXITED_MAX, sizeof(ExitRecord));
	if (!t->exited)
		return -ENOMEM;
	r = hash_index_new(&t->index);
	if (r < 0)
		return r;
	r = cgroup_ids_new(&t->cgroup_ids);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(t);
	return 0;
}

static size_t path_size(const ProcMap *m)
{
	return m->path ? strlen(m->path) + 1 : 0;
}

static void maps_clear(ProcTable *t, Process *p)
{
	for (size_t i = 0; i < p->n_maps; i++) {
		t->path_bytes -= path_size(&p->maps[i].map);
		free(p->maps[i].map.path);
		binary_unref(t->sym, p->maps[i].binary);
	}
	free(p->maps);
	t->n_mappings -= p->n_maps;
	p->maps = NULL;
	p->n_maps = 0;
	p->maps_loaded = false;
	p->maps_from_log = false;
	p->maps_from_parent = false;
}

/* Frees p's perf map, if any. */
static void perfmap_drop(ProcTable *t, Process *p)
{
	if (!p->perfmap)
		return;
	p->perfmap = perfmap_free(p->perfmap);
	t->n_perfmaps--;
}

static void process_free(ProcTable *t, Process *p)
{
	maps_clear(t, p);
	perfmap_drop(t, p);
	store_proc_unref(t->store, p->id);
	store_proc_unref(t->store, p->pre_exec_id);
	free(p);
}

ProcTable *proctable_free(ProcTable *t)
{
	if (!t)
		return NULL;
	for (size_t i = 0; i < t->n; i++)
		process_free(t, t->procs[i]);
	for (size_t i = 0; i < t->n_exited; i++)
		store_proc_unref(t->store,
				 t->exited[(t->exited_head + i) % PROCTABLE_EXITED_MAX].id);
	free(t->exited);
	free(t->procs);
	hash_index_free(t->index);
	cgroup_ids_free(t->cgroup_ids);
	free(t);
	return NULL;
}

/* Does /proc/PID show this incarnation? (Its start time, in clock ticks, is truncated.) */
static bool proc_is_incarnation(uint32_t pid, uint64_t start_boot_ns, ProcStat *ret)
{
	ProcStat st;

	if (procfs_read_stat((pid_t)pid, &st) < 0)
		return false;
	if (st.starttime != start_boot_ns / (NSEC_PER_SEC / procfs_clock_ticks()))
		return false;
	if (ret)
		*ret = st;
	return true;
}

/* The process's cgroup (and the labels it names) into its record: at first sight and at exec.
 * /proc is asked after the read whether it still shows this incarnation, so a reused pid
 * lends nothing. */
static int read_cgroup(ProcTable *t, Process *p)
{
	_cleanup_free_ char *path = NULL;
	int r;

	t->stats.cgroup_reads++;
	r = cgroup_read_pid((pid_t)p->pid, &path);
	if (r >= 0 && !proc_is_incarnation(p->pid, p->start_boot_ns, NULL))
		r = -ESRCH;
	if (r >= 0)
		r = store_proc_set_cgroup(t->store, p->id, path);
	if (r < 0) {
		log_debug_errno(r, "No cgroup for pid %u: %m", p->pid);
		t->stats.cgroup_errors++;
	}
	return r;
}

/* The cgroup of an event's process by the id the kernel gave (/proc shows it no more). */
static void cgroup_from_id(ProcTable *t, Process *p, const struct profq_event *e, uint64_t now_ns)
{
	const char *path = cgroup_ids_path(t->cgroup_ids, e->cgroup_id, now_ns);

	if (path && store_proc_set_cgroup(t->store, p->id, path) >= 0)
		t->stats.cgroup_from_id++;
}

static bool same_file(const ProcMap *a, const ProcMap *b)
{
	return a->inode != 0 && a->inode == b->inode && a->dev_major == b->dev_major &&
	       a->dev_minor == b->dev_minor && a->path && b->path && streq(a->path, b->path);
}

/* Takes over raw (and its paths) as p's mappings, resolving their binaries. */
static int maps_install(ProcTable *t, Process *p, ProcMap *raw, size_t n)
{
	Mapping *maps = calloc(MAX(n, (size_t)1), sizeof(Mapping));

	if (!maps) {
		procfs_maps_free(raw, n);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		maps[i].map = raw[i];
		t->path_bytes += path_size(&raw[i]);
		/* The mappings of one file follow each other (its text, data...): one lookup (the
		 * binary's identity by path is a few system calls). */
		if (i > 0 && maps[i - 1].binary && same_file(&raw[i - 1], &raw[i])) {
			maps[i].binary = binary_ref(maps[i - 1].binary);
			continue;
		}
		/* Anonymous or unreadable: frames show [anon] / module+offset. */
		if (symbolizer_binary(t->sym, (pid_t)p->pid, &raw[i], &maps[i].binary) < 0)
			maps[i].binary = NULL;
	}
	free(raw); /* the paths moved into maps */
	maps_clear(t, p);
	p->maps = maps;
	p->n_maps = n;
	t->n_mappings += n;
	p->maps_loaded = true;
	p->maps_error = 0;
	return 0;
}

/*
 * Loads p's mappings as they were at time_ns. The sideband log knows them by time, which /proc
 * cannot (a sample taken just before an exec must not be read against the new image), so a
 * complete log generation comes first; for a child between fork and exec whose parent the log
 * saw only partly, the parent's /proc maps; then /proc, while it shows this incarnation, for
 * processes the log saw only part of (older than profqd); then whatever the log has.
 */
static int maps_load(ProcTable *t, Process *p, uint64_t time_ns, uint64_t now_ns)
{
	ProcMap *raw = NULL, *logged = NULL;
	size_t n = 0, n_logged = 0;
	uint32_t parent = 0;
	bool complete = false;
	int r = -ENOENT, lr = -ENOENT;

	p->maps_read_ns = now_ns;
	if (t->maplog) {
		lr = maplog_lookup(t->maplog, p->pid, time_ns, &logged, &n_logged, &parent,
				   &complete);
		if ((lr < 0 || !complete) && t->refresh_maplog) {
			/* The kernel writes mapping records before the mapped code runs, so they
			 * are in the sideband ring, perhaps after what was last read from it: the
			 * exec that started a complete generation, say, with the fork's partial
			 * one all the log has yet. */
			if (lr >= 0)
				procfs_maps_free(logged, n_logged);
			logged = NULL;
			n_logged = 0;
			parent = 0;
			t->refresh_maplog(t->refresh_userdata);
			lr = maplog_lookup(t->maplog, p->pid, time_ns, &logged, &n_logged, &parent,
					   &complete);
		}
	}
	if (lr >= 0 && complete) {
		t->stats.maps_from_log++;
		r = maps_install(t, p, logged, n_logged);
		p->maps_from_log = r >= 0;
		return r;
	}
	if ((lr == -ENODATA || lr >= 0) && parent && !(p->exec_ns && time_ns >= p->exec_ns)) {
		/* Between fork and exec the child runs its parent's image; the parent (older
		 * than profqd, so only partly in the log) usually still runs. Not the child's
		 * /proc: by now that may show the image it exec'd. Never for a sample from
		 * after the exec, so the reload in proctable_find_mapping happens once. */
		r = procfs_read_maps((pid_t)parent, &raw, &n);
		if (r >= 0) {
			t->stats.maps_from_parent++;
			if (lr >= 0)
				procfs_maps_free(logged, n_logged);
			r = maps_install(t, p, raw, n);
			p->maps_from_parent = r >= 0;
			return r;
		}
	}
	if (proc_is_incarnation(p->pid, p->start_boot_ns, NULL)) {
		t->stats.maps_reads++;
		r = procfs_read_maps((pid_t)p->pid, &raw, &n);
	}
	if (r >= 0) {
		if (lr >= 0)
			procfs_maps_free(logged, n_logged);
		return maps_install(t, p, raw, n);
	}
	if (lr >= 0) {
		/* Part of the mappings (those made since profqd started): a miss tries /proc
		 * again after a while, as without any, not only a longer log (which a process
		 * older than profqd, done mapping, never gives). */
		t->stats.maps_from_log++;
		return maps_install(t, p, logged, n_logged);
	}
	log_debug_errno(r, "No mappings for pid %u at %" PRIu64 ": %m", p->pid, time_ns);
	t->stats.maps_errors++;
	p->maps_error = r;
	p->maps_loaded = true; /* do not retry per sample; a miss retries after a while */
	return r;
}

static uint64_t proc_hash(uint32_t pid, uint64_t start)
{
	const uint64_t v[2] = { pid, start };

	return XXH3_64bits(v, sizeof(v));
}

typedef struct ProcKey {
	uint32_t pid;
	uint64_t start;
} ProcKey;

static bool proc_eq(uint32_t idx, const void *key, void *userdata)
{
	const Process *p = ((const ProcTable *)userdata)->procs[idx];
	const ProcKey *k = key;

	return p->pid == k->pid && p->start_boot_ns == k->start;
}

static Process *find_exact(ProcTable *t, uint32_t pid, uint64_t start, uint32_t *ret_idx)
{
	ProcKey k = { .pid = pid, .start = start };
	uint32_t idx;

	if (hash_index_find(t->index, proc_hash(pid, start), proc_eq, &k, t, &idx) < 0)
		return NULL;
	if (ret_idx)
		*ret_idx = idx;
	return t->procs[idx];
}

/* A start time as /proc shows it: truncated to clock ticks. */
static uint64_t start_in_ticks(uint64_t start_boot_ns)
{
	uint64_t tick = NSEC_PER_SEC / procfs_clock_ticks();

	return start_boot_ns / tick * tick;
}

/*
 * The Process of incarnation (pid, start). One adopted from /proc knows its start only to the
 * clock tick; the first exact start time (from BPF) for it replaces the approximate one.
 */
static Process *find(ProcTable *t, uint32_t pid, uint64_t start)
{
	Process *p = find_exact(t, pid, start, NULL);
	uint32_t idx;

	if (p)
		return p;
	p = find_exact(t, pid, start_in_ticks(start), &idx);
	if (!p || !p->approx_start)
		return NULL;
	(void)hash_index_remove(t->index, p->hash, idx);
	p->start_boot_ns = start;
	p->hash = proc_hash(pid, start);
	p->approx_start = false;
	/* Re-inserting what was just removed needs no new memory. */
	(void)hash_index_insert(t->index, p->hash, idx);
	(void)store_proc_set_start(t->store, p->id, start, (int64_t)start + boot_to_real_offset());
	return p;
}

/* A printable copy of a kernel comm (16 bytes, maybe unterminated). */
static void comm_string(const char *comm, char out[PROFQ_COMM_LEN + 1])
{
	memcpy(out, comm, PROFQ_COMM_LEN);
	out[PROFQ_COMM_LEN] = '\0';
	procfs_cmdline_to_string(out, strnlen(out, PROFQ_COMM_LEN));
}

static int set_string(ProcTable *t, StrId *field, const char *s)
{
	StrId id = 0;
	int r;

	if (s && *s) {
		r = store_intern_string(t->store, s, &id);
		if (r < 0)
			return r;
	}
	store_string_unref(t->store, *field);
	*field = id; /* the reference moves into the record */
	return 0;
}

static void set_comm(ProcTable *t, Process *p, const char *comm)
{
	char s[PROFQ_COMM_LEN + 1];
	StrId id;

	if (memcmp(p->comm, comm, sizeof(p->comm)) == 0)
		return;
	memcpy(p->comm, comm, sizeof(p->comm));
	comm_string(comm, s);
	if (store_intern_string(t->store, s, &id) >= 0) {
		store_proc_set_comm(t->store, p->id, id);
		store_string_unref(t->store, id);
	}
}

/*
 * Who may see the process (profqd(8), ACCESS CONTROL): its real uid and whether its owner could
 * read its /proc/PID/maps. Within one image the private mark is sticky, and a change of uid sets
 * it (the kernel clears the dumpable flag then too); an exec starts over (reset), as the kernel
 * resets dumpable for the new image. What the record holds from before such an exec is kept
 * from the new owner by split_at_exec().
 */
static void set_owner(ProcTable *t, Process *p, uint32_t uid, bool private, bool reset)
{
	const StoreProc *cur = store_proc(t->store, p->id);
	StoreProc *sp;
	uint32_t flags;

	if (!cur)
		return;
	flags = cur->flags;
	if (reset) {
		flags &= ~PROC_PRIVATE;
		p->sampled = p->sampled_hidden = false;
	} else if (cur->uid != uid)
		flags |= PROC_PRIVATE;
	if (private)
		flags |= PROC_PRIVATE;
	if (cur->uid == uid && cur->flags == flags)
		return;
	sp = store_proc_mut(t->store, p->id);
	sp->uid = uid;
	sp->flags = flags;
}

/* Adds a Process for an incarnation with what the caller knows (sp) as its store record. */
static int process_add(ProcTable *t, uint32_t pid, uint64_t start_boot_ns, const char *comm,
		       StoreProc *sp, uint64_t now_ns, Process **ret)
{
	char s[PROFQ_COMM_LEN + 1];
	Process *p;
	int r;

	r = GREEDY_REALLOC(t->procs, t->allocated, t->n + 1);
	if (r < 0)
		return r;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->pid = pid;
	p->start_boot_ns = start_boot_ns;
	p->hash = proc_hash(pid, start_boot_ns);
	p->last_seen_ns = now_ns;
	memcpy(p->comm, comm, sizeof(p->comm));
	comm_string(comm, s);
	sp->pid = pid;
	sp->start_ns = (int64_t)start_boot_ns + boot_to_real_offset();
	sp->boot_id = t->boot_id;
	sp->start_boot_ns = start_boot_ns;
	/* A record loaded from the state dir (profqd restarted) is the same incarnation. */
	r = store_proc_find(t->store, pid, t->boot_id, start_boot_ns, &p->id);
	if (r < 0) {
		r = store_intern_string(t->store, s, &sp->comm);
		if (r >= 0) {
			r = store_proc_add(t->store, sp, &p->id);
			store_string_unref(t->store, sp->comm);
		}
	}
	if (r < 0) {
		free(p);
		return r;
	}
	/* Met again after it left the table (a late sample): it stays exited. */
	if (store_proc(t->store, p->id)->flags & PROC_EXITED)
		p->exited = true;
	r = hash_index_insert(t->index, p->hash, (uint32_t)t->n);
	if (r < 0) {
		process_free(t, p);
		return r;
	}
	t->procs[t->n++] = p;
	t->stats.created++;
	*ret = p;
	return 0;
}

/* Whether the record's owner may see sample s: taken under its uid, not private. */
static bool owned_by(ProcTable *t, const Process *p, const struct profq_sample *s)
{
	const StoreProc *cur = store_proc(t->store, p->id);

	return cur && cur->uid == s->uid && !(cur->flags & PROC_PRIVATE) &&
	       !(s->flags & PROFQ_SAMPLE_PRIVATE);
}

static void exited_push(ProcTable *t, ProcId id, int64_t exit_ns)
{
	if (t->n_exited == PROCTABLE_EXITED_MAX) {
		/* Full: the oldest goes. */
		store_proc_unref(t->store, t->exited[t->exited_head].id);
		t->exited_head = (t->exited_head + 1) % PROCTABLE_EXITED_MAX;
		t->n_exited--;
		t->stats.exited_dropped++;
	}
	store_proc_ref(t->store, id);
	t->exited[(t->exited_head + t->n_exited) % PROCTABLE_EXITED_MAX] =
		(ExitRecord){ .id = id, .exit_ns = exit_ns };
	t->n_exited++;
}

/*
 * An exec gave the process to an owner who must not see what it ran before: samples taken under
 * another uid or while private. Those stay in a record of their own, private, that ends at the
 * exec: to privileged viewers an earlier incarnation of the pid (started a nanosecond before the
 * process's record, so that the two stay apart and `--pid` finds the process's own). forward:
 * the process's record holds them (split at the exec event): it becomes that record, and the
 * process goes on in a new one started a nanosecond later. Else (late: the first of them)
 * they are samples from before the exec drained after it: they go to a new record, the process
 * keeps its own.
 */
static int split_at_exec(ProcTable *t, Process *p, const struct profq_sample *late)
{
	bool forward = !late;
	const StoreProc *cur = store_proc(t->store, p->id);
	int64_t exec_real = (int64_t)p->exec_ns + boot_to_real_offset();
	int64_t delta = forward ? 1 : -1;
	StoreProc sp, *old;
	ProcId id;
	int r;

	if (!cur)
		return -ENOENT;
	sp = *cur;
	sp.start_boot_ns = (uint64_t)((int64_t)cur->start_boot_ns + delta);
	sp.start_ns = cur->start_ns + delta;
	if (!forward) {
		char name[PROFQ_COMM_LEN + 1];

		/* The earlier image's name: the record has the new one by now (and a late sample
		 * taken inside execve may have it too). */
		comm_string(p->exec_comm, name);
		r = store_intern_string(t->store, name, &sp.comm);
		if (r < 0)
			return r;
		sp.uid = late->uid;
		sp.flags = (cur->flags & PROC_KTHREAD) | PROC_PRIVATE | PROC_EXITED;
		sp.exit_ns = exec_real;
		sp.user_ns = sp.sys_ns = sp.child_user_ns = sp.child_sys_ns = 0;
		sp.exit_code = 0;
	} else {
		sp.flags &= ~(PROC_PRIVATE | PROC_EXITED);
	}
	r = store_proc_add(t->store, &sp, &id);
	if (!forward)
		store_string_unref(t->store, sp.comm);
	if (r < 0)
		return r;
	/* An earlier split's record gets no more samples: the exited list holds it. */
	store_proc_unref(t->store, p->pre_exec_id);
	if (forward) {
		old = store_proc_mut(t->store, p->id);
		old->flags |= PROC_PRIVATE | PROC_EXITED;
		old->exit_ns = exec_real;
		p->pre_exec_id = p->id;
		p->id = id;
	} else {
		p->pre_exec_id = id;
	}
	p->split_ns = p->exec_ns;
	/* Held, as exited processes are, until retention ends it. */
	exited_push(t, p->pre_exec_id, exec_real);
	t->stats.exec_splits++;
	return 0;
}

ProcId proctable_record_of(const Process *p, const struct profq_sample *s)
{
	return p->pre_exec_id && s->time_ns < p->split_ns ? p->pre_exec_id : p->id;
}

/* Remembers under whom the image was sampled, for set_owner() at the next exec. */
static void note_sample(ProcTable *t, Process *p, const struct profq_sample *s)
{
	if (!p->sampled) {
		p->sampled = true;
		p->sampled_uid = s->uid;
	}
	if (!owned_by(t, p, s) || s->uid != p->sampled_uid)
		p->sampled_hidden = true;
}

static int64_t ticks_to_ns(uint64_t ticks)
{
	return (int64_t)(ticks * (NSEC_PER_SEC / procfs_clock_ticks()));
}

bool proctable_exec_since(ProcTable *t, const struct profq_sample *s)
{
	const Process *p = find(t, s->tgid, s->start_ns);

	return p && p->mm_id != 0 && p->mm_id != s->mm_id;
}

int proctable_get(ProcTable *t, const struct profq_sample *s, uint64_t now_ns, Process **ret)
{
	_cleanup_free_ char *cmdline = NULL;
	StoreProc sp = { .uid = s->uid };
	Process *p = find(t, s->tgid, s->start_ns);
	ProcStat st;
	bool live;
	int r;

	if (p) {
		p->last_seen_ns = now_ns;
		if (p->mm_id != s->mm_id) {
			/* exec (a new mm): old addresses mean something else now. A process first
			 * met through an event has no mm yet: that is not an exec. */
			if (p->mm_id != 0)
				p->generation++;
			p->mm_id = s->mm_id;
			maps_clear(t, p);
		}
		p->kthread = s->mm_id == 0;
		set_comm(t, p, s->pcomm);
		/* A sample from before the last exec (drained after it) says nothing of now, but
		 * it must not show the new owner what the old one ran. */
		if (s->time_ns >= p->exec_ns) {
			set_owner(t, p, s->uid, s->flags & PROFQ_SAMPLE_PRIVATE, false);
			note_sample(t, p, s);
		} else if (!p->pre_exec_id && !owned_by(t, p, s)) {
			r = split_at_exec(t, p, s);
			if (r < 0)
				return r;
		}
		*ret = p;
		return 0;
	}

	if (s->mm_id == 0)
		sp.flags |= PROC_KTHREAD;
	if (s->flags & PROFQ_SAMPLE_PRIVATE)
		sp.flags |= PROC_PRIVATE;
	/* Only what /proc says about this very incarnation (not a reused pid). */
	live = proc_is_incarnation(s->tgid, s->start_ns, &st);
	if (live) {
		sp.ppid = st.ppid;
		if (s->mm_id != 0)
			(void)procfs_read_cmdline((pid_t)s->tgid, &cmdline);
	}
	if (cmdline && *cmdline) {
		r = store_intern_string(t->store, cmdline, &sp.cmdline);
		if (r < 0)
			return r;
	}
	r = process_add(t, s->tgid, s->start_ns, s->pcomm, &sp, now_ns, &p);
	store_string_unref(t->store, sp.cmdline);
	if (r < 0)
		return r;
	p->mm_id = s->mm_id;
	p->kthread = s->mm_id == 0;
	if (live)
		(void)read_cgroup(t, p);
	note_sample(t, p, s);
	*ret = p;
	return 0;
}

uint64_t proctable_boot_id(void)
{
	_cleanup_free_ char *id = NULL;
	size_t len;

	/* Without it (no procfs?), every boot looks the same: start times still tell apart. */
	if (procfs_read_file("/proc/sys/kernel/random/boot_id", 128, &id, &len) < 0)
		return 0;
	return XXH3_64bits(id, len);
}

void proctable_cputime_adjust(uint64_t rtime, uint64_t utime, uint64_t stime, uint64_t *ret_user,
			      uint64_t *ret_sys)
{
	/* As the kernel's cputime_adjust(): split the precise runtime in the ticks' ratio. */
	if (stime == 0) {
		*ret_user = rtime;
		*ret_sys = 0;
	} else if (utime == 0) {
		*ret_user = 0;
		*ret_sys = rtime;
	} else {
		unsigned __int128 s = (unsigned __int128)rtime * stime / (stime + utime);

		*ret_sys = (uint64_t)s;
		*ret_user = rtime - (uint64_t)s;
	}
}

void proctable_set_maplog_refresh(ProcTable *t, void (*refresh)(void *userdata), void *userdata)
{
	t->refresh_maplog = refresh;
	t->refresh_userdata = userdata;
}

void proctable_hold_exited(ProcTable *t, ProcId id, int64_t exit_ns)
{
	exited_push(t, id, exit_ns);
}

int proctable_event(ProcTable *t, const struct profq_event *e, uint64_t now_ns)
{
	Process *p = find(t, e->pid, e->start_ns);
	StoreProc *sp, init = { .uid = e->uid,
				.ppid = e->ppid,
				.flags = e->flags & PROFQ_EVENT_PRIVATE ? PROC_PRIVATE : 0 };
	uint64_t user, sys;
	int r;

	if (!p) {
		r = process_add(t, e->pid, e->start_ns, e->comm, &init, now_ns, &p);
		if (r < 0)
			return r;
	}
	if (e->type == PROFQ_EVENT_EXEC)
		memcpy(p->exec_comm, p->comm, sizeof(p->exec_comm));
	/* Before the new image's name: the record of the old one keeps its own. */
	if (e->type == PROFQ_EVENT_EXEC && p->sampled &&
	    (p->sampled_hidden || p->sampled_uid != e->uid)) {
		p->exec_ns = MAX(p->exec_ns, e->time_ns);
		r = split_at_exec(t, p, NULL);
		if (r < 0)
			return r;
	}
	sp = store_proc_mut(t->store, p->id);
	if (!sp)
		return -ENOENT;
	set_comm(t, p, e->comm);
	sp->ppid = e->ppid;

	switch (e->type) {
	case PROFQ_EVENT_EXEC: {
		char args[PROFQ_ARGS_LEN + 1];
		size_t len = MIN((size_t)e->args_len, (size_t)PROFQ_ARGS_LEN);

		p->exec_ns = MAX(p->exec_ns, e->time_ns);
		set_owner(t, p, e->uid, e->flags & PROFQ_EVENT_PRIVATE, true);
		sp = store_proc_mut(t->store, p->id);
		memcpy(args, e->args, len);
		args[len] = '\0';
		procfs_cmdline_to_string(args, len);
		if (*args)
			(void)set_string(t, &sp->cmdline, args);
		/* A service manager moves a process into its unit's cgroup before the exec. */
		if (read_cgroup(t, p) < 0)
			cgroup_from_id(t, p, e, now_ns);
		return 0;
	}
	case PROFQ_EVENT_EXIT:
		if (p->exited)
			return 0;
		set_owner(t, p, e->uid, e->flags & PROFQ_EVENT_PRIVATE, false);
		sp = store_proc_mut(t->store, p->id);
		proctable_cputime_adjust(e->rtime_ns, e->utime_ns, e->stime_ns, &user, &sys);
		sp->user_ns = user;
		sp->sys_ns = sys;
		sp->child_user_ns = e->cutime_ns;
		sp->child_sys_ns = e->cstime_ns;
		sp->exit_code = (int32_t)e->exit_code;
		sp->exit_ns = (int64_t)e->time_ns + boot_to_real_offset();
		sp->flags |= PROC_EXITED | PROC_ACCOUNTING;
		/* The times could not be summed over every thread: the samples tell instead (and
		 * not /proc's figures from before the exit). */
		if (e->flags & PROFQ_EVENT_PARTIAL)
			sp->flags &= ~PROC_ACCOUNTING;
		p->exited = true;
		/* Gone before profqd read its cgroup (a short process, a busy daemon). */
		if (!sp->cgroup)
			cgroup_from_id(t, p, e, now_ns);
		p->last_seen_ns = now_ns;
		t->stats.exited++;
		exited_push(t, p->id, sp->exit_ns);
		return 0;
	default:
		return -EBADMSG;
	}
}

static const Mapping *find_mapping(const Process *p, uint64_t addr)
{
	size_t lo = 0, hi = p->n_maps;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (p->maps[mid].map.start <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0 || addr >= p->maps[lo - 1].map.end)
		return NULL;
	return &p->maps[lo - 1];
}

const Mapping *proctable_find_mapping(ProcTable *t, Process *p, uint64_t addr, uint64_t time_ns,
				      uint64_t now_ns)
{
	const Mapping *m;

	if (p->kthread)
		return NULL;
	/* The parent's mappings stand for a child between fork and exec, a guess from the
	 * sample's time: a sample taken inside execve, after the new address space replaced the
	 * old but before the exec event, looks the same and has the new mm already (so no mm
	 * change follows). Once a sample is from after the exec, the exec's own mappings are
	 * in the log: load them, and let what was named through the guess be named again. */
	if (p->maps_from_parent && p->exec_ns && time_ns >= p->exec_ns) {
		maps_clear(t, p);
		p->generation++;
	}
	if (!p->maps_loaded)
		(void)maps_load(t, p, time_ns, now_ns);
	m = find_mapping(p, addr);
	if (m)
		return m;
	if (p->maps_from_log) {
		/* The log grows as the process maps more (ld.so loading libraries): cheap to
		 * look at again, so no waiting, but only when it has more than we took. */
		if (t->refresh_maplog)
			t->refresh_maplog(t->refresh_userdata);
		if (maplog_count(t->maplog, p->pid, time_ns) == p->n_maps)
			return NULL;
	} else if (now_ns - p->maps_read_ns < MAPS_RETRY_NS) {
		return NULL;
	}
	if (maps_load(t, p, time_ns, now_ns) < 0)
		return NULL;
	return find_mapping(p, addr);
}

/*
 * Reads what p's perf map gained: if a lookup missed since the last read, at most every
 * PERFMAP_RETRY_NS (JIT code is announced by appending to the file), or right away if the
 * last read stopped short; within the tick's budget. Whether it named anything new.
 */
static bool perfmap_refresh(ProcTable *t, Process *p, uint64_t now_ns)
{
	PerfMapRead rd;
	struct stat st;
	char path[32];
	bool created = false;
	int r;

	if (p->exited || t->perfmap_budget == 0)
		return false;
	if (!p->perfmap_more &&
	    (!p->perfmap_missed ||
	     (p->perfmap_read_ns && now_ns - p->perfmap_read_ns < PERFMAP_RETRY_NS)))
		return false;
	if (p->perfmap_dropped_ns && now_ns - p->perfmap_dropped_ns < PERFMAP_DROP_BACKOFF_NS)
		return false;
	p->perfmap_read_ns = now_ns;
	/* Only the process's own user speaks for it: /proc/PID belongs to its effective uid. */
	snprintf(path, sizeof(path), "/proc/%" PRIu32, p->pid);
	if (stat(path, &st) < 0 || !proc_is_incarnation(p->pid, p->start_boot_ns, NULL))
		return false;
	if (!p->perfmap) {
		if (perfmap_new(&p->perfmap) < 0)
			return false;
		t->n_perfmaps++;
		created = true;
	}
	r = perfmap_update(p->perfmap, symbolizer_mounts(t->sym), (pid_t)p->pid, st.st_uid,
			   t->perfmap_budget, t->perfmap_cap, &rd);
	if (r < 0) {
		/* No file (yet), or not the process's: a stat every PERFMAP_RETRY_NS while it
		 * has unnamed JIT code. */
		if (created)
			perfmap_drop(t, p);
		p->perfmap_more = false;
		return false;
	}
	t->perfmap_budget -= MIN(t->perfmap_budget, (size_t)rd.bytes);
	p->perfmap_more = rd.more;
	t->stats.perfmap_bytes_read += rd.bytes;
	t->stats.perfmap_bytes_refused += rd.refused;
	t->stats.perfmap_bad_lines += rd.bad;
	if (rd.bytes > 0)
		t->stats.perfmap_loads++;
	if (rd.entries == 0 && !rd.restarted)
		return false;
	p->perfmap_missed = false;
	/* Stacks symbolized (and cached) before may have JIT frames the map names now. */
	p->generation++;
	return true;
}

const char *proctable_jit_symbol(ProcTable *t, Process *p, uint64_t addr, uint64_t now_ns)
{
	const char *name;

	if (p->perfmap && (name = perfmap_lookup(p->perfmap, addr, NULL)))
		return name;
	p->perfmap_missed = true;
	if (!perfmap_refresh(t, p, now_ns))
		return NULL;
	return perfmap_lookup(p->perfmap, addr, NULL);
}

void proctable_jit_refresh(ProcTable *t, Process *p, uint64_t now_ns)
{
	(void)perfmap_refresh(t, p, now_ns);
}

static void refresh(ProcTable *t, Process *p)
{
	StoreProc *sp = store_proc_mut(t->store, p->id);
	ProcStat st;

	if (!sp || p->exited || !proc_is_incarnation(p->pid, p->start_boot_ns, &st))
		return;
	sp->user_ns = (uint64_t)ticks_to_ns(st.utime);
	sp->sys_ns = (uint64_t)ticks_to_ns(st.stime);
	sp->child_user_ns = (uint64_t)ticks_to_ns(st.cutime);
	sp->child_sys_ns = (uint64_t)ticks_to_ns(st.cstime);
	sp->ppid = st.ppid;
	sp->flags |= PROC_ACCOUNTING;
}

/* A live process nobody has sampled or seen exec yet (it started before profqd, or sleeps). */
static void adopt(ProcTable *t, uint32_t pid)
{
	_cleanup_free_ char *cmdline = NULL;
	StoreProc sp = { 0 };
	char comm[PROFQ_COMM_LEN] = { 0 };
	ProcStatus status;
	struct stat st_dir;
	char path[64];
	ProcStat st;
	Process *p;
	uint64_t start;

	if (procfs_read_stat((pid_t)pid, &st) < 0)
		return;
	start = st.starttime * (NSEC_PER_SEC / procfs_clock_ticks());
	if (find_exact(t, pid, start, NULL))
		return;
	/* The owner of /proc/PID is the effective uid while the process is dumpable, root when
	 * not: with the ids from status, whether its owner could read its maps. */
	snprintf(path, sizeof(path), "/proc/%u", pid);
	if (stat(path, &st_dir) < 0 || procfs_read_status((pid_t)pid, &status) < 0)
		return;
	sp.uid = status.uid[0];
	if (status.uid[1] != sp.uid || status.uid[2] != sp.uid || status.gid[1] != status.gid[0] ||
	    status.gid[2] != status.gid[0] || st_dir.st_uid != status.uid[1])
		sp.flags |= PROC_PRIVATE;
	sp.ppid = st.ppid;
	if (procfs_read_cmdline((pid_t)pid, &cmdline) >= 0 && *cmdline &&
	    store_intern_string(t->store, cmdline, &sp.cmdline) < 0)
		return;
	memcpy(comm, st.comm, MIN(sizeof(comm), sizeof(st.comm)));
	if (process_add(t, pid, start, comm, &sp, now_mono_ns(), &p) >= 0) {
		p->approx_start = true;
		(void)read_cgroup(t, p);
	}
	store_string_unref(t->store, sp.cmdline);
}

/* A Process for a record the store holds already (loaded from the state dir after a restart):
 * adopting it from /proc would make a second record, its start known to the tick. */
static Process *from_store(ProcTable *t, uint32_t pid, uint64_t start_boot_ns)
{
	char comm[PROFQ_COMM_LEN] = { 0 };
	const StoreProc *cur;
	StoreProc init;
	Process *p = NULL;
	const char *name;
	ProcId id;

	if (store_proc_find(t->store, pid, t->boot_id, start_boot_ns, &id) < 0)
		return NULL;
	cur = store_proc(t->store, id);
	init = *cur;
	name = store_string(t->store, cur->comm);
	if (name)
		strncpy(comm, name, sizeof(comm) - 1);
	if (process_add(t, pid, start_boot_ns, comm, &init, now_mono_ns(), &p) < 0)
		p = NULL;
	store_proc_unref(t->store, id);
	return p;
}

int proctable_find(ProcTable *t, uint32_t pid, uint64_t start_boot_ns, bool adopt_it, Process **ret)
{
	Process *p = find(t, pid, start_boot_ns);

	if (!p && adopt_it)
		p = from_store(t, pid, start_boot_ns);
	if (!p && adopt_it) {
		adopt(t, pid);
		p = find(t, pid, start_boot_ns);
	}
	if (!p)
		return -ENOENT;
	*ret = p;
	return 0;
}

void proctable_refresh(ProcTable *t, uint32_t pid)
{
	bool found = false;

	for (size_t i = 0; i < t->n; i++)
		if (pid == 0 || t->procs[i]->pid == pid) {
			refresh(t, t->procs[i]);
			found |= !t->procs[i]->exited;
		}
	if (pid != 0 && !found) {
		adopt(t, pid);
		for (size_t i = 0; i < t->n; i++)
			if (t->procs[i]->pid == pid)
				refresh(t, t->procs[i]);
	}
}

/* An exit without its event: what is known is that it happened. */
static void mark_exited(ProcTable *t, Process *p, int64_t exit_ns)
{
	StoreProc *sp = store_proc_mut(t->store, p->id);

	p->exited = true;
	/* Already recorded (a late sample made a Process for it again): once is enough. */
	if (!sp || (sp->flags & PROC_EXITED))
		return;
	sp->exit_ns = MAX(exit_ns, sp->start_ns);
	sp->flags |= PROC_EXITED;
	t->stats.exits_unseen++;
	exited_push(t, p->id, sp->exit_ns);
}

/* Drops from the table the exited processes past their grace (and with check, those whose exit
 * was missed, see proctable_sweep()). */
static void sweep(ProcTable *t, uint64_t now_ns, uint64_t idle_ns, int64_t now_real_ns, bool check)
{
	size_t keep = 0;

	for (size_t i = 0; i < t->n; i++) {
		Process *p = t->procs[i];
		uint64_t idle = now_ns - p->last_seen_ns;

		/* Idle a while: let go of the mappings, so the binaries can go if nothing else
		 * maps them; the next sample reads them again. */
		if (check && !p->exited && idle > MAPS_IDLE_NS && p->maps_loaded)
			maps_clear(t, p);
		/* Not seen a while, and not in /proc as this incarnation: its exit event was lost
		 * (ring buffer full). It exited after it was last seen, at the latest now. */
		if (check && !p->exited && idle > idle_ns &&
		    !proc_is_incarnation(p->pid, p->start_boot_ns, NULL))
			mark_exited(t, p, now_real_ns - (int64_t)idle);
		if (p->exited && idle > PROCTABLE_EXIT_GRACE_NS) {
			process_free(t, p);
			t->stats.dropped++;
			continue;
		}
		t->procs[keep++] = p;
	}
	if (keep == t->n)
		return;
	t->n = keep;
	/* Fewer entries than before, and the index sized for them: it never grows here. */
	hash_index_clear_for(t->index, t->n);
	for (size_t i = 0; i < t->n; i++)
		(void)hash_index_insert(t->index, t->procs[i]->hash, (uint32_t)i);
	/* After a storm: the array back to what is left, once three quarters are free. */
	if (t->n < t->allocated / 4) {
		Process **procs = realloc(t->procs, MAX(t->n * 2, (size_t)16) * sizeof(Process *));

		if (procs) {
			t->procs = procs;
			t->allocated = MAX(t->n * 2, (size_t)16);
		}
	}
}

void proctable_sweep(ProcTable *t, uint64_t now_ns, uint64_t idle_ns, int64_t now_real_ns,
		     uint64_t keep_ns)
{
	sweep(t, now_ns, idle_ns, now_real_ns, true);
	/* Exited records older than the retention. */
	while (t->n_exited > 0 &&
	       t->exited[t->exited_head].exit_ns < now_real_ns - (int64_t)keep_ns) {
		store_proc_unref(t->store, t->exited[t->exited_head].id);
		t->exited_head = (t->exited_head + 1) % PROCTABLE_EXITED_MAX;
		t->n_exited--;
	}
}

void proctable_drop_exited(ProcTable *t, uint64_t now_ns)
{
	sweep(t, now_ns, 0, 0, false);
}

size_t proctable_drop_unsampled_exited(ProcTable *t)
{
	_cleanup_free_ uint8_t *sampled = NULL;
	size_t limit = store_proc_id_limit(t->store), keep = 0, dropped = 0;

	if (t->n_exited == 0)
		return 0;
	sampled = calloc(MAX(limit, (size_t)1), 1);
	if (!sampled)
		return 0;
	for (size_t w = 0; w < store_window_count(t->store); w++) {
		const Window *win = store_window(t->store, w);

		for (size_t i = 0; i < win->n_entries; i++)
			if (win->entries[i].proc < limit)
				sampled[win->entries[i].proc] = 1;
	}
	/* In place, oldest first: what stays moves towards the head. */
	for (size_t i = 0; i < t->n_exited; i++) {
		ExitRecord e = t->exited[(t->exited_head + i) % PROCTABLE_EXITED_MAX];

		if (e.id < limit && sampled[e.id]) {
			t->exited[(t->exited_head + keep++) % PROCTABLE_EXITED_MAX] = e;
			continue;
		}
		store_proc_unref(t->store, e.id);
		dropped++;
	}
	t->n_exited = keep;
	t->stats.exited_dropped += dropped;
	t->stats.exited_dropped_memory += dropped;
	return dropped;
}

void proctable_set_perfmap_cap(ProcTable *t, size_t cap)
{
	t->perfmap_cap = cap;
}

void proctable_tick(ProcTable *t)
{
	t->perfmap_budget = PERFMAP_READ_PER_TICK;
}

static size_t perfmaps_memory(const ProcTable *t)
{
	size_t m = 0;

	for (size_t i = 0; t->n_perfmaps > 0 && i < t->n; i++)
		if (t->procs[i]->perfmap)
			m += perfmap_memory(t->procs[i]->perfmap);
	return m;
}

size_t proctable_drop_perfmaps(ProcTable *t, size_t want, uint64_t now_ns)
{
	size_t freed = 0;

	/* Exited processes' first: they name only samples still in flight. */
	for (size_t i = 0; i < t->n && freed < want; i++) {
		Process *p = t->procs[i];

		if (p->exited && p->perfmap) {
			freed += perfmap_memory(p->perfmap);
			perfmap_drop(t, p);
			t->stats.perfmap_dropped++;
		}
	}
	/* Then the largest: few, and each frees most. */
	while (freed < want) {
		Process *largest = NULL;
		size_t size = 0;

		for (size_t i = 0; i < t->n; i++) {
			Process *p = t->procs[i];

			if (p->perfmap && perfmap_memory(p->perfmap) > size) {
				largest = p;
				size = perfmap_memory(p->perfmap);
			}
		}
		if (!largest)
			break;
		freed += size;
		perfmap_drop(t, largest);
		largest->perfmap_more = false;
		largest->perfmap_dropped_ns = now_ns;
		/* What it named is named no more: let cached stacks go. */
		largest->generation++;
		t->stats.perfmap_dropped++;
	}
	return freed;
}

size_t proctable_memory(const ProcTable *t)
{
	size_t m = sizeof(*t) + t->allocated * sizeof(Process *) + hash_index_memory(t->index) +
		   PROCTABLE_EXITED_MAX * sizeof(ExitRecord);

	CgroupIdsStats cs;

	m += t->n * sizeof(Process) + t->n_mappings * sizeof(Mapping);
	cgroup_ids_stats(t->cgroup_ids, &cs);
	return m + t->path_bytes + perfmaps_memory(t) + cs.memory;
}

void proctable_stats(const ProcTable *t, ProcTableStats *ret)
{
	CgroupIdsStats cs;

	*ret = t->stats;
	ret->processes = t->n;
	ret->exited_held = t->n_exited;
	ret->running = 0;
	for (size_t i = 0; i < t->n; i++)
		ret->running += !t->procs[i]->exited;
	ret->perfmap_memory = perfmaps_memory(t);
	cgroup_ids_stats(t->cgroup_ids, &cs);
	ret->cgroup_walks = cs.walks;
}
