/* SPDX-License-Identifier: MIT */
#include <grp.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include <xxhash.h>

#include "base/json-util.h"
#include "base/log.h"
#include "base/macro.h"
#include "base/procfs.h"
#include "base/timeutil.h"
#include "process/sideband.h"
#include "query/query.h"
#include "sampling/profiler.h"
#include "sampling/reader.h"
#include "sampling/sampler.h"
#include "service/access.h"
#include "service/loop.h"
#include "service/notify.h"
#include "service/history.h"
#include "service/libcurl.h"
#include "service/profqd.h"
#include "service/push.h"
#include "service/server.h"
#include "service/upload.h"

/* The ring buffer is drained, and windows rotated, this often. */
#define TICK_NS (100 * NSEC_PER_MSEC)
/* CPU time a DWARF compile unit is indexed for at a time, between which the loop answers
 * clients and drains samples (on_work()). */
#define DWARF_SLICE_NS (10 * NSEC_PER_MSEC)
/* libdw runs in a worker process (dwarfworker.h): an answer it takes longer for than this (a CU
 * of millions of DIEs takes a second or two) stops it, and costs that binary its DWARF; lookups
 * wait for its answers up to a tick's time in all per tick, and 50 ms each, then name frames
 * without DWARF until they come (the loop answers clients between ticks); its heap may grow by
 * this much. */
#define DWARF_WORKER_TIMEOUT_NS (20 * NSEC_PER_SEC)
#define DWARF_WORKER_WAIT_NS TICK_NS
#define DWARF_WORKER_LOOKUP_WAIT_NS (50 * NSEC_PER_MSEC)
#define DWARF_WORKER_MAX_DATA (1024ull << 20)
/* Data pages per CPU of the sideband ring: 128 KiB holds ~1000 mappings per 100 ms tick. */
#define SIDEBAND_PAGES 32
/* The reader thread empties the kernel rings this often, at least, and at most: eight times
 * while the sample ring fills at the configured rate (docs/ARCHITECTURE.md, "Sample
 * transport"). */
#define READ_PERIOD_MIN_NS (10 * NSEC_PER_MSEC)
#define READ_PERIOD_MAX_NS (50 * NSEC_PER_MSEC)
/* Execs the reader's thread hands the main loop ahead of their events, at most (more wait for
 * their events); and how often the main loop takes them between samples. */
#define EXECS_SEEN_MAX 1024
#define EXEC_POLL_NS (5 * NSEC_PER_MSEC)

/* Python frames (code objects) likewise: at most this many between two takes, each process's
 * recent ones told once (a direct-mapped table of this many slots). */
#define CODES_SEEN_MAX 4096
#define CODES_RECENT 1024

typedef struct ExecSeen {
	uint32_t pid;
	uint64_t start_ns, time_ns;
} ExecSeen;

typedef struct CodeSeen {
	uint32_t pid;
	uint64_t start_ns;
	struct profq_py_frame frame;
} CodeSeen;

/*
 * One fault sample per this many minor faults of a CPU: 512 KiB of 4 KiB pages, so that a
 * process faulting in 1 GiB gives 2048 samples (docs/ARCHITECTURE.md, Page faults).
 */
#define PROFQD_FAULT_PERIOD 128
/* Queued bytes beyond which fault records are refused (docs/ARCHITECTURE.md, Page faults). */
#define PROFQD_FAULT_QUEUE_MAX (8u << 20)

struct Profqd {
	const Config *config;
	Loop *loop;
	Profiler *profiler;
	Sampler *sampler;
	PyMapOps py_ops; /* the Python maps, for the profiler: the sampler's */
	Sideband *sideband;
	Reader *reader;
	/* Fault records the reader's queue refused (written by the reader thread: atomic). */
	uint64_t faults_shed;
	Server *server;
	History *history;
	Notifier *notifier;
	int signal_fd;
	int timer_fd;
	LoopSource *signal_src, *timer_src, *seen_src;
	struct profq_counters last; /* BPF counters at the last tick */
	gid_t group_gid;
	bool have_group;
	uint64_t start_mono_ns;
	uint64_t drain_errors;
	uint64_t queue_dropped; /* samples the reader's queue dropped, as of the last drain */
	int read_error;		/* the reader's first error (atomic: set in its thread) */
	/* Push targets: every window closed after pushed_until_ns goes to each. */
	Pusher *pushers[CONFIG_PUSH_MAX];
	size_t n_pushers;
	UploadOptions upload;
	UploadStats upload_stats;
	int64_t pushed_until_ns;
	char hostname[256];
	/* Execs and Python frames read from the kernel, not yet told to the profiler
	 * (profiler_exec_seen(), profiler_python_code_seen()):
	 * written in the reader's thread, taken in ours, under seen_lock. */
	pthread_mutex_t seen_lock;
	int seen_fd; /* an eventfd the reader's thread wakes the main loop with for them */
	/* An eventfd readable while samples left work to do a slice at a time (on_work()). */
	int work_fd;
	LoopSource *work_src;
	ExecSeen execs[EXECS_SEEN_MAX];
	size_t n_execs;
	CodeSeen codes[CODES_SEEN_MAX];
	size_t n_codes;
	uint64_t codes_recent[CODES_RECENT];
	uint64_t last_exec_poll_ns;
	unsigned samples_since_poll;
};

Profqd *profqd_free(Profqd *m)
{
	if (!m)
		return NULL;
	/* The reader thread first: it reads the sampler's and the sideband's rings. */
	reader_free(m->reader);
	/* The push threads read only their spools, never the store; stopped before it goes. */
	for (size_t i = 0; i < m->n_pushers; i++)
		pusher_free(m->pushers[i]);
	libcurl_cleanup();
	history_free(m->history);
	server_free(m->server);
	notifier_free(m->notifier);
	sampler_free(m->sampler);
	sideband_free(m->sideband);
	profiler_free(m->profiler);
	if (m->loop) {
		loop_remove(m->loop, m->signal_src);
		loop_remove(m->loop, m->timer_src);
		loop_remove(m->loop, m->seen_src);
		loop_remove(m->loop, m->work_src);
	}
	if (m->seen_fd >= 0)
		close(m->seen_fd);
	if (m->work_fd >= 0)
		close(m->work_fd);
	if (m->signal_fd >= 0)
		close(m->signal_fd);
	if (m->timer_fd >= 0)
		close(m->timer_fd);
	loop_free(m->loop);
	pthread_mutex_destroy(&m->seen_lock);
	free(m);
	return NULL;
}

/*
 * In the reader's thread (reader.h), or in ours through reader_read_now(): only the kernel rings
 * and the reader's queue are touched here.
 */
/* Wakes the main loop for what was noted (take_seen()), once until it takes it. */
static void seen_wake(Profqd *m)
{
	uint64_t one = 1;

	(void)!write(m->seen_fd, &one, sizeof(one));
}

/* Notes the Python frames of sample s for the main loop (take_seen()), each process's recent
 * ones once. */
static void note_py_frames(Profqd *m, const struct profq_sample *s, size_t size)
{
	const uint8_t *frames = (const uint8_t *)s + PROFQ_PY_FRAMES_OFFSET;

	if (!m->config->python || s->py_len == 0 || s->py_len > PROFQ_PY_MAX_FRAMES ||
	    !(s->flags & PROFQ_SAMPLE_USER_REGS) || size < PROFQ_SAMPLE_STACK_OFFSET)
		return;
	bool wake;

	pthread_mutex_lock(&m->seen_lock);
	wake = m->n_execs == 0 && m->n_codes == 0;
	for (unsigned i = 0; i < s->py_len && m->n_codes < CODES_SEEN_MAX; i++) {
		struct profq_py_frame f;
		uint64_t k;
		size_t slot;

		memcpy(&f, frames + i * sizeof(f), sizeof(f));
		k = (f.code ^ (uint64_t)f.ident << 32 ^ s->start_ns) * 0x9e3779b97f4a7c15ull;
		k ^= s->tgid;
		slot = (size_t)((k * 0xff51afd7ed558ccdull) >> 54) % CODES_RECENT;
		if (m->codes_recent[slot] == k)
			continue;
		m->codes_recent[slot] = k;
		m->codes[m->n_codes++] =
			(CodeSeen){ .pid = s->tgid, .start_ns = s->start_ns, .frame = f };
	}
	wake = wake && m->n_codes > 0;
	pthread_mutex_unlock(&m->seen_lock);
	if (wake)
		seen_wake(m);
}

static int on_sample(void *userdata, const struct profq_sample *s, size_t size)
{
	Profqd *m = userdata;

	/* Off-CPU records give way to CPU samples when the daemon falls behind: stacks first (their
	 * ends then find none and count at a marker), ends and whole intervals next, so that the
	 * last quarter of the queue is the samples'. A drop is counted there. */
	if (size >= PROFQ_SAMPLE_HDR_SIZE && (s->flags & PROFQ_SAMPLE_FAULT)) {
		/* Fault records go first: refused once the queue holds a quarter of its bound or
		 * PROFQD_FAULT_QUEUE_MAX (the main loop behind), before off-CPU records and CPU
		 * samples, so that what the loop has left to do for them stays small. (In the
		 * ring they give way at half, as off-CPU stacks do: at a quarter, a third of them
		 * were lost at 1 GiB/s.) */
		if (reader_push_below(m->reader, READER_SAMPLE, s, size,
				      MIN(reader_max_bytes(m->reader) / 4,
					  PROFQD_FAULT_QUEUE_MAX)) < 0)
			__atomic_fetch_add(&m->faults_shed, 1, __ATOMIC_RELAXED);
	} else if (size >= PROFQ_SAMPLE_HDR_SIZE && (s->flags & PROFQ_SAMPLE_OFFCPU_STACK))
		(void)reader_push_low(m->reader, READER_SAMPLE, s, size, 2);
	else if (size >= PROFQ_SAMPLE_HDR_SIZE &&
		 (s->flags & (PROFQ_SAMPLE_OFFCPU_END | PROFQ_SAMPLE_OFFCPU_WHOLE)))
		(void)reader_push_low(m->reader, READER_SAMPLE, s, size, 3);
	else
		(void)reader_push(m->reader, READER_SAMPLE, s, size);
	note_py_frames(m, s, size);
	return 0;
}

static int on_event(void *userdata, const struct profq_event *e, size_t size)
{
	Profqd *m = userdata;

	(void)reader_push(m->reader, READER_EVENT, e, size);
	if (size >= sizeof(*e) && e->type == PROFQ_EVENT_EXEC) {
		bool wake;

		pthread_mutex_lock(&m->seen_lock);
		wake = m->n_execs == 0 && m->n_codes == 0;
		if (m->n_execs < EXECS_SEEN_MAX)
			m->execs[m->n_execs++] = (ExecSeen){ .pid = e->pid,
							     .start_ns = e->start_ns,
							     .time_ns = e->time_ns };
		pthread_mutex_unlock(&m->seen_lock);
		if (wake)
			seen_wake(m);
	}
	return 0;
}

static int on_sideband_record(void *userdata, const void *rec, size_t size)
{
	Profqd *m = userdata;

	(void)reader_push(m->reader, READER_SIDEBAND, rec, size);
	return 0;
}

/*
 * One pass of the reader: samples, then events, then the sideband. Whatever a sample needs to be
 * read was written before the sample (an exec's event, a mapping's record), so it is in the same
 * pass or an earlier one; the drain hands a batch of whole passes on in the other order.
 */
static void read_kernel(void *userdata, Reader *reader)
{
	Profqd *m = userdata;
	int r, q;

	(void)reader;
	r = sampler_drain_samples(m->sampler);
	q = sampler_drain_events(m->sampler);
	r = r < 0 ? r : q;
	q = sideband_read(m->sideband, on_sideband_record, m);
	r = r < 0 ? r : q;
	if (r < 0) {
		int expected = 0;

		__atomic_compare_exchange_n(&m->read_error, &expected, r, false, __ATOMIC_RELAXED,
					    __ATOMIC_RELAXED);
	}
}

/* From here on, in the main loop's thread. */

/*
 * Tells the profiler of the execs and Python frames read from the kernel since the last call,
 * ahead of the queued samples: a Python interpreter is then followed from its first samples,
 * and its code objects read while it lives, however long the queue (the exec's own event and
 * the samples come later, in order).
 */
static void take_seen(Profqd *m)
{
	_cleanup_free_ CodeSeen *codes = NULL;
	ExecSeen execs[EXECS_SEEN_MAX];
	size_t n, n_codes;

	m->last_exec_poll_ns = now_mono_ns();
	pthread_mutex_lock(&m->seen_lock);
	n = m->n_execs;
	memcpy(execs, m->execs, n * sizeof(*execs));
	m->n_execs = 0;
	n_codes = m->n_codes;
	codes = n_codes ? malloc(n_codes * sizeof(*codes)) : NULL;
	if (codes)
		memcpy(codes, m->codes, n_codes * sizeof(*codes));
	else
		n_codes = 0;
	m->n_codes = 0;
	pthread_mutex_unlock(&m->seen_lock);
	for (size_t i = 0; i < n; i++)
		profiler_exec_seen(m->profiler, execs[i].pid, execs[i].start_ns, execs[i].time_ns);
	profiler_poll(m->profiler);
	for (size_t i = 0; i < n_codes; i++)
		profiler_python_code_seen(m->profiler, codes[i].pid, codes[i].start_ns,
					  &codes[i].frame);
}
static void on_queued_sideband(void *userdata, const void *rec, size_t size)
{
	Profqd *m = userdata;

	(void)sideband_feed(m->sideband, rec, size);
}

static void on_queued_event(void *userdata, const void *rec, size_t size)
{
	Profqd *m = userdata;
	int r;

	r = profiler_add_event(m->profiler, rec, size);
	if (r < 0 && m->drain_errors++ == 0)
		log_warning_errno(r, "Failed to store an event: %m");
}

static void on_queued_sample(void *userdata, const void *rec, size_t size)
{
	Profqd *m = userdata;
	int r;

	/* A batch may take seconds (symbolizing new binaries): execs meanwhile are not kept
	 * waiting for it. */
	if (++m->samples_since_poll >= 32) {
		m->samples_since_poll = 0;
		if (now_mono_ns() - m->last_exec_poll_ns >= EXEC_POLL_NS)
			take_seen(m);
	}
	r = profiler_add_sample(m->profiler, rec, size);
	if (r < 0 && m->drain_errors++ == 0)
		log_warning_errno(r, "Failed to store samples: %m");
}

static void on_sideband(void *userdata, const SidebandEvent *ev)
{
	profiler_sideband_event(userdata, ev);
}

/* The mappings the kernel has logged up to now: those queued, then those still in its rings. */
static void refresh_sideband(void *userdata)
{
	Profqd *m = userdata;
	ReaderBatch b;

	reader_read_now(m->reader);
	reader_take(m->reader, 1u << READER_SIDEBAND, &b);
	reader_batch_each(&b, READER_SIDEBAND, on_queued_sideband, m);
	reader_batch_free(&b);
	(void)sideband_flush(m->sideband);
}

/*
 * Handles what the reader queued, in the order that lets each part use the one before: mappings
 * (sideband), then exec/exit events, then samples; and moves the BPF counters' news into the
 * profiler. With now, first reads what the kernel rings hold at this moment.
 */
static void work_wake(Profqd *m);

static void drain(Profqd *m, bool now)
{
	struct profq_counters c;
	ReaderStats rs;
	ReaderBatch b;
	int r;

	if (now)
		reader_read_now(m->reader);
	take_seen(m);
	reader_take(m->reader, (1u << _READER_SOURCE_MAX) - 1, &b);
	reader_batch_each(&b, READER_SIDEBAND, on_queued_sideband, m);
	(void)sideband_flush(m->sideband);
	reader_batch_each(&b, READER_EVENT, on_queued_event, m);
	reader_batch_each(&b, READER_SAMPLE, on_queued_sample, m);
	reader_batch_free(&b);
	r = __atomic_load_n(&m->read_error, __ATOMIC_RELAXED);
	if (r < 0 && m->drain_errors++ == 0)
		log_warning_errno(r, "Failed to read the kernel's ring buffers: %m");
	if (sampler_counters(m->sampler, &c) < 0)
		return;
	reader_stats(m->reader, &rs);
	profiler_add_counters(m->profiler,
			      c.lost_ringbuf - m->last.lost_ringbuf + rs.dropped[READER_SAMPLE] -
				      m->queue_dropped,
			      c.idle - m->last.idle);
	m->last = c;
	m->queue_dropped = rs.dropped[READER_SAMPLE];
	if (profiler_has_work(m->profiler))
		work_wake(m);
}

static void work_wake(Profqd *m)
{
	uint64_t one = 1;

	(void)!write(m->work_fd, &one, sizeof(one));
}

/* One slice of the work samples left (a large compile unit's DWARF), then back to the loop:
 * clients and the queue are served between slices. */
static int on_work(LoopSource *src, int fd, uint32_t events, void *userdata)
{
	Profqd *m = userdata;
	uint64_t n;

	(void)src;
	(void)events;
	(void)!read(fd, &n, sizeof(n));
	if (profiler_work(m->profiler))
		work_wake(m);
	return 0;
}

static void notify_stats(void *userdata, NotifyStats *ret)
{
	Profqd *m = userdata;
	ProcTableStats pt;
	ProfilerStats ps;

	profiler_stats(m->profiler, &ps);
	profiler_proc_stats(m->profiler, &pt);
	*ret = (NotifyStats){
		.cpus = sampler_cpus(m->sampler),
		.frequency_hz = m->config->frequency,
		.samples = m->last.samples,
		/* The same sum as the status answer's "lost". */
		.lost = m->last.lost_ringbuf + m->queue_dropped + ps.bad_records + ps.failed +
			ps.held_lost,
		.processes = pt.running,
		.memory_bytes = profiler_memory(m->profiler),
		.max_memory_bytes = m->config->max_memory,
	};
}

static void on_upload(void *userdata, const char *query, const uint8_t *body, size_t len)
{
	Profqd *m = userdata;

	/* Each target logs and counts its own failures. */
	for (size_t i = 0; i < m->n_pushers; i++)
		(void)pusher_batch_add(m->pushers[i], query, body, len);
}

/* Hands the windows closed since the last call to the push targets, oldest first. */
static void push_closed(Profqd *m)
{
	const Store *store = profiler_store(m->profiler);
	size_t n = store_window_count(store), first = n;

	if (m->n_pushers == 0)
		return;
	while (first > 0) {
		const Window *w = store_window(store, first - 1);

		if (!w->open && w->end_ns <= m->pushed_until_ns)
			break;
		first--;
	}
	for (size_t i = first; i < n; i++) {
		const Window *w = store_window(store, i);
		int r;

		if (w->open)
			continue;
		for (size_t t = 0; t < m->n_pushers; t++)
			pusher_batch_begin(m->pushers[t]);
		r = upload_window(store, w, &m->upload, on_upload, m, &m->upload_stats);
		if (r < 0)
			log_warning_errno(r, "Failed to build the uploads of a window: %m");
		for (size_t t = 0; t < m->n_pushers; t++)
			(void)pusher_batch_commit(m->pushers[t]);
		m->pushed_until_ns = w->end_ns;
	}
}

static int on_timer(LoopSource *src, int fd, uint32_t events, void *userdata)
{
	Profqd *m = userdata;
	uint64_t expirations;
	int r;

	(void)src;
	(void)events;
	if (read(fd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
		return log_error_errno(negative_errno(), "Failed to read the timer: %m");
	drain(m, false);
	r = profiler_tick(m->profiler, now_real_ns(), now_mono_ns());
	if (r < 0)
		log_warning_errno(r, "Failed to rotate windows: %m");
	push_closed(m);
	server_tick(m->server, now_mono_ns());
	history_tick(m->history, now_mono_ns());
	notifier_tick(m->notifier, now_mono_ns(), notify_stats, m);
	return 0;
}

static int on_seen(LoopSource *src, int fd, uint32_t events, void *userdata)
{
	uint64_t n;

	(void)src;
	(void)events;
	(void)!read(fd, &n, sizeof(n));
	take_seen(userdata);
	return 0;
}

static int on_signal(LoopSource *src, int fd, uint32_t events, void *userdata)
{
	Profqd *m = userdata;
	struct signalfd_siginfo si;

	(void)src;
	(void)events;
	if (read(fd, &si, sizeof(si)) != sizeof(si))
		return 0;
	switch (si.ssi_signo) {
	case SIGTERM:
	case SIGINT:
		log_info("Received %s, stopping.", strsignal((int)si.ssi_signo));
		loop_exit(m->loop);
		break;
	case SIGHUP:
		/* Logs go to stderr, which the service manager owns: nothing to reopen. */
		log_info("Received SIGHUP.");
		break;
	default:
		break;
	}
	return 0;
}

static int status_unwind(Profqd *m, const ProfilerStats *ps, json_object *status)
{
	json_object *o = json_object_new_object();

	if (!o)
		return -ENOMEM;
	json_add_string(o, "mode", m->config->stack_copy ? "dwarf" : "frame-pointer");
	json_add_int(o, "stack_copy_bytes", m->config->stack_copy);
	json_add_int(o, "complete", (int64_t)ps->unwind[UNWIND_COMPLETE]);
	json_add_int(o, "truncated", (int64_t)ps->unwind[UNWIND_TRUNCATED]);
	json_add_int(o, "stuck", (int64_t)ps->unwind[UNWIND_STUCK]);
	json_add_int(o, "frame_pointer_frames", (int64_t)ps->unwind_fp_frames);
	json_add_int(o, "copy_errors", (int64_t)m->last.stack_copy_errors);
	json_add_int(o, "copied_bytes", (int64_t)m->last.stack_copy_bytes);
	json_object_object_add(status, "unwind", o);
	return 0;
}

/* Memory tracking: the records of the rss_stat program and the points kept of them. */
static int status_rss(Profqd *m, const ProfilerStats *ps, json_object *o)
{
	json_object *t = json_object_new_object();

	if (!t)
		return -ENOMEM;
	json_object_object_add(t, "enabled", json_object_new_boolean(sampler_memory(m->sampler)));
	json_add_int(t, "events", (int64_t)m->last.mem_events);
	json_add_int(t, "records", (int64_t)ps->mem_records);
	json_add_int(t, "points", (int64_t)ps->mem_points);
	json_add_int(t, "unknown", (int64_t)ps->mem_unknown);
	json_add_int(t, "lost", (int64_t)m->last.lost_mem);
	json_object_object_add(o, "rss_tracking", t);
	return 0;
}

static int status_offcpu(Profqd *m, const ProfilerStats *ps, json_object *status)
{
	struct profq_offcpu_counters c;
	ReaderStats rs;
	uint64_t shed;
	json_object *o;

	if (sampler_offcpu_counters(m->sampler, &c) < 0)
		return 0;
	reader_stats(m->reader, &rs);
	o = json_object_new_object();
	if (!o)
		return -ENOMEM;
	json_object_object_add(o, "enabled", json_object_new_boolean(sampler_offcpu(m->sampler)));
	json_add_int(o, "bpf_prog_id", sampler_offcpu_prog_id(m->sampler));
	json_add_int(o, "switches", (int64_t)c.switches);
	json_add_int(o, "captured", (int64_t)c.captured);
	json_add_int(o, "recorded", (int64_t)(c.ends + c.wholes));
	json_add_int(o, "whole", (int64_t)c.wholes);
	json_add_int(o, "revisited", (int64_t)c.revisits);
	json_add_double(o, "recorded_s", (double)c.end_ns / NSEC_PER_SEC, 3);
	/* The queue's shed samples are off-CPU records', but for the fault records'. */
	shed = rs.shed[READER_SAMPLE] -
	       MIN(rs.shed[READER_SAMPLE], __atomic_load_n(&m->faults_shed, __ATOMIC_RELAXED));
	json_add_int(o, "dropped",
		     (int64_t)(c.ring.lost_ringbuf + c.lost_ringbuf + c.no_storage + shed +
			       c.ring_shed));
	json_add_int(o, "shed", (int64_t)(shed + c.ring_shed));
	json_add_int(o, "shed_ring", (int64_t)c.ring_shed);
	json_add_int(o, "lost_ringbuf", (int64_t)(c.ring.lost_ringbuf + c.lost_ringbuf));
	json_add_int(o, "no_storage", (int64_t)c.no_storage);
	json_add_int(o, "stored", (int64_t)ps->offcpu_stored);
	json_add_int(o, "unpaired", (int64_t)ps->offcpu_unpaired);
	json_add_int(o, "replaced", (int64_t)ps->offcpu_replaced);
	json_add_int(o, "expired", (int64_t)ps->offcpu_expired);
	json_add_int(o, "callers_borrowed", (int64_t)ps->offcpu_callers_borrowed);
	json_add_int(
		o, "stack_errors",
		(int64_t)(c.ring.kstack_errors + c.ring.ustack_errors + c.ring.stack_copy_errors));
	json_object_object_add(status, "off_cpu", o);
	return 0;
}

static int status_faults(Profqd *m, const ProfilerStats *ps, json_object *status)
{
	uint64_t shed = __atomic_load_n(&m->faults_shed, __ATOMIC_RELAXED);
	struct profq_fault_counters c;
	json_object *o;

	if (sampler_fault_counters(m->sampler, &c) < 0)
		return 0;
	o = json_object_new_object();
	if (!o)
		return -ENOMEM;
	json_object_object_add(o, "enabled", json_object_new_boolean(sampler_faults(m->sampler)));
	json_add_int(o, "bpf_prog_id", sampler_fault_prog_id(m->sampler));
	json_add_int(o, "period", (int64_t)(sampler_faults(m->sampler) ? PROFQD_FAULT_PERIOD : 0));
	json_add_int(o, "samples", (int64_t)c.samples);
	json_add_int(o, "sent", (int64_t)c.sent);
	json_add_int(o, "sent_bytes", (int64_t)c.bytes);
	json_add_int(o, "dropped", (int64_t)(c.ring.lost_ringbuf + c.ring_shed + shed));
	json_add_int(o, "shed", (int64_t)(c.ring_shed + shed));
	json_add_int(o, "shed_ring", (int64_t)c.ring_shed);
	json_add_int(o, "lost_ringbuf", (int64_t)c.ring.lost_ringbuf);
	json_add_int(o, "kernel_threads", (int64_t)c.kthread);
	json_add_int(o, "stored", (int64_t)ps->faults_stored);
	json_add_int(
		o, "stack_errors",
		(int64_t)(c.ring.kstack_errors + c.ring.ustack_errors + c.ring.stack_copy_errors));
	json_object_object_add(status, "faults", o);
	return 0;
}

static int status_memory(Profqd *m, const ProfilerStats *ps, json_object *status)
{
	json_object *o = json_object_new_object();
	ProfilerMemory pm;
	ReaderStats rs;

	if (!o)
		return -ENOMEM;
	profiler_memory_parts(m->profiler, &pm);
	reader_stats(m->reader, &rs);
	json_add_int(o, "store", (int64_t)pm.store);
	json_add_int(o, "symbolizer", (int64_t)pm.symbolizer);
	json_add_int(o, "processes", (int64_t)pm.processes);
	json_add_int(o, "perf_maps", (int64_t)pm.perf_maps);
	json_add_int(o, "stack_cache", (int64_t)pm.stacks);
	json_add_int(o, "mapping_log", (int64_t)pm.maplog);
	json_add_int(o, "python", (int64_t)pm.python);
	json_add_int(o, "queue", (int64_t)rs.bytes);
	json_add_int(o, "queue_spare", (int64_t)rs.spare_bytes);
	json_add_int(o, "queue_peak", (int64_t)rs.peak_bytes);
	json_add_int(o, "queue_max", (int64_t)rs.max_bytes);
	json_add_int(o, "rss_bytes", procfs_self_resident());
	/* As of the last housekeeping pass: what --max-memory left the profiler's data. */
	json_add_int(o, "outside_bytes", (int64_t)ps->memory_other);
	json_add_int(o, "data_budget_bytes", (int64_t)ps->data_budget);
	json_object_object_add(status, "memory", o);
	return 0;
}

/* Python frames: the interpreters followed, and every way a frame can fail to be named. */
static int status_python(Profqd *m, const ProfilerStats *ps, json_object *status)
{
	json_object *o;
	PythonStats py;

	if (!profiler_python_stats(m->profiler, &py))
		return 0;
	o = json_object_new_object();
	if (!o)
		return -ENOMEM;
	json_add_int(o, "processes", (int64_t)py.processes);
	json_add_int(o, "threads", (int64_t)py.threads);
	json_add_int(o, "attached", (int64_t)py.attached);
	json_add_int(o, "unsupported", (int64_t)py.unsupported);
	json_add_int(o, "free_threaded", (int64_t)py.free_threaded);
	json_add_int(o, "attach_errors", (int64_t)py.attach_errors);
	json_add_int(o, "samples", (int64_t)py.samples);
	json_add_int(o, "samples_with_frames", (int64_t)py.samples_with_frames);
	json_add_int(o, "frames_read", (int64_t)py.frames_read);
	json_add_int(o, "frames_unnamed", (int64_t)py.frames_unnamed);
	json_add_int(o, "code_reads", (int64_t)py.code_reads);
	json_add_int(o, "code_read_errors", (int64_t)py.code_read_errors);
	json_add_int(o, "code_changed", (int64_t)py.code_changed);
	json_add_int(o, "code_cache_entries", (int64_t)py.code_cache_entries);
	json_add_int(o, "code_cache_drops", (int64_t)py.code_cache_drops);
	json_add_int(o, "thread_scans", (int64_t)py.thread_scans);
	json_add_int(o, "thread_unknown", (int64_t)py.thread_unknown);
	json_add_int(o, "thread_mismatch", (int64_t)py.thread_mismatch);
	json_add_int(o, "thread_found", (int64_t)py.thread_found);
	json_add_int(o, "threads_swept", (int64_t)py.threads_swept);
	json_add_int(o, "exec_attached", (int64_t)py.exec_attached);
	json_add_int(o, "walk_errors", (int64_t)py.walk_errors);
	json_add_int(o, "walk_truncated", (int64_t)py.walk_truncated);
	json_add_int(o, "unmatched_stacks", (int64_t)ps->python_unmatched);
	json_add_int(o, "map_errors", (int64_t)py.map_errors);
	json_add_int(o, "mem_reads", (int64_t)py.mem_reads);
	json_add_int(o, "mem_timeouts", (int64_t)py.mem_timeouts);
	json_add_int(o, "mem_readers", (int64_t)py.mem_readers);
	json_add_int(o, "mem_readers_stuck", (int64_t)py.mem_readers_stuck);
	json_object_object_add(status, "python", o);
	return 0;
}

/* The binaries that hold the most symbolizer memory: what to look at when it is high. */
static int status_largest(Profqd *m, json_object *sym)
{
	SymbolizerBinaryMemory top[5];
	size_t n = symbolizer_largest(profiler_symbolizer(m->profiler), top, ARRAY_SIZE(top));
	json_object *a = json_object_new_array();

	if (!a)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		json_object *o = json_object_new_object();

		if (!o || json_object_array_add(a, o) < 0) {
			json_object_put(o);
			json_object_put(a);
			return -ENOMEM;
		}
		json_add_string(o, "module", top[i].module);
		json_add_int(o, "symbols", (int64_t)top[i].symbols);
		json_add_int(o, "cfi", (int64_t)top[i].cfi);
		json_add_int(o, "dwarf", (int64_t)top[i].dwarf);
		json_add_int(o, "cache", (int64_t)top[i].cache);
	}
	json_object_object_add(sym, "largest", a);
	return 0;
}

static int status_persistence(Profqd *m, json_object *status)
{
	const PersistLoadStats *loaded;
	json_object *o = json_object_new_object();
	int64_t from, deleted;
	HistoryStats hs;
	PersistStats ps;
	bool enabled;
	int error;

	if (!o)
		return -ENOMEM;
	loaded = profiler_persist_state(m->profiler, &ps, &enabled, &error);
	json_add_string(o, "state_dir", m->config->state_dir);
	json_object_object_add(o, "enabled", json_object_new_boolean(enabled));
	json_add_string(o, "error",
			error		? strerror(-error)
			: ps.last_error ? strerror(-ps.last_error)
					: NULL);
	json_add_int(o, "segments", (int64_t)ps.segments);
	json_add_int(o, "disk_bytes", (int64_t)ps.disk_bytes);
	json_add_int(o, "windows_written", (int64_t)ps.windows_written);
	json_add_int(o, "bytes_written", (int64_t)ps.bytes_written);
	json_add_int(o, "write_errors", (int64_t)ps.write_errors);
	json_add_int(o, "windows_loaded", (int64_t)loaded->windows);
	json_add_int(o, "corrupt_segments",
		     (int64_t)(loaded->corrupt_segments + loaded->bad_segments));
	json_add_int(o, "segments_deleted", (int64_t)ps.segments_deleted);
	json_add_int(o, "max_disk_bytes", (int64_t)m->config->max_disk);
	/* Windows evicted from memory that queries read back from disk: since when. */
	if (profiler_disk_history(m->profiler, &from, &deleted))
		json_add_double(o, "disk_history_since_s",
				(double)MAX(from, deleted) / NSEC_PER_SEC, 3);
	history_stats(m->history, &hs);
	json_add_int(o, "history_queries", (int64_t)hs.queries);
	json_add_int(o, "history_failed", (int64_t)hs.failed);
	json_add_int(o, "history_timeouts", (int64_t)hs.timeouts);
	json_add_int(o, "history_busy", (int64_t)hs.busy);
	json_add_int(o, "history_running", (int64_t)hs.running);
	json_object_object_add(status, "persistence", o);
	return 0;
}

static int status_push(Profqd *m, json_object *status)
{
	json_object *targets = json_object_new_array(), *o;

	if (!targets)
		return -ENOMEM;
	for (size_t i = 0; i < m->n_pushers; i++) {
		PushStats ps;

		o = json_object_new_object();
		if (!o || json_object_array_add(targets, o) < 0) {
			json_object_put(o);
			json_object_put(targets);
			return -ENOMEM;
		}
		pusher_stats(m->pushers[i], &ps);
		json_add_string(o, "url", pusher_url(m->pushers[i]));
		json_add_int(o, "sent", (int64_t)ps.sent);
		json_add_int(o, "sent_bytes", (int64_t)ps.sent_bytes);
		json_add_int(o, "queued", (int64_t)ps.queued);
		json_add_int(o, "queued_bytes", (int64_t)ps.queued_bytes);
		json_add_int(o, "dropped", (int64_t)ps.dropped);
		json_add_int(o, "rejected", (int64_t)ps.rejected);
		json_add_int(o, "failures", (int64_t)ps.failures);
		json_add_string(o, "last_error", ps.last_error[0] ? ps.last_error : NULL);
		if (ps.last_error_ns)
			json_add_double(o, "last_error_s", (double)ps.last_error_ns / NSEC_PER_SEC,
					3);
		if (ps.last_success_ns)
			json_add_double(o, "last_success_s",
					(double)ps.last_success_ns / NSEC_PER_SEC, 3);
	}
	o = json_object_new_object();
	if (!o) {
		json_object_put(targets);
		return -ENOMEM;
	}
	json_object_object_add(o, "targets", targets);
	json_add_int(o, "uploads", (int64_t)m->upload_stats.uploads);
	json_add_int(o, "upload_bytes", (int64_t)m->upload_stats.bytes);
	json_add_int(o, "upload_failed", (int64_t)m->upload_stats.failed);
	json_add_int(o, "build_ms", (int64_t)(m->upload_stats.build_ns / NSEC_PER_MSEC));
	json_object_object_add(status, "push", o);
	return 0;
}

static int answer_status(Profqd *m, const Viewer *viewer, json_object **ret)
{
	_cleanup_json_ json_object *o = json_object_new_object();
	Store *store = profiler_store(m->profiler);
	SymbolizerStats sy;
	ProcTableStats pt;
	ProfilerStats ps;
	ServerStats ss;
	ReaderStats rs;
	json_object *sym;
	int r;

	if (!o)
		return -ENOMEM;
	profiler_stats(m->profiler, &ps);
	profiler_proc_stats(m->profiler, &pt);
	symbolizer_stats(profiler_symbolizer(m->profiler), &sy);
	server_stats(m->server, &ss);
	reader_stats(m->reader, &rs);
	json_add_double(o, "uptime_s", (double)(now_mono_ns() - m->start_mono_ns) / NSEC_PER_SEC,
			1);
	json_add_int(o, "frequency_hz", m->config->frequency);
	json_add_int(o, "cpus", sampler_cpus(m->sampler));
	json_add_int(o, "samples", (int64_t)m->last.samples);
	json_add_int(o, "stored", (int64_t)ps.stored);
	json_add_int(o, "idle", (int64_t)m->last.idle);
	json_add_int(o, "lost",
		     (int64_t)(m->last.lost_ringbuf + m->queue_dropped + ps.bad_records +
			       ps.failed + ps.held_lost));
	json_add_int(o, "lost_ringbuf", (int64_t)m->last.lost_ringbuf);
	json_add_int(o, "lost_queue", (int64_t)m->queue_dropped);
	json_add_int(o, "stack_errors", (int64_t)(m->last.kstack_errors + m->last.ustack_errors));
	json_add_int(o, "truncated_stacks", (int64_t)ps.truncated);
	json_add_int(o, "windows", (int64_t)store_window_count(store));
	json_add_int(o, "window_s", (int64_t)(m->config->window_ns / NSEC_PER_SEC));
	json_add_int(o, "retention_s", (int64_t)(m->config->retention_ns / NSEC_PER_SEC));
	json_add_int(o, "evicted_windows", (int64_t)store_windows_evicted(store));
	json_add_int(o, "memory_bytes", (int64_t)profiler_memory(m->profiler));
	json_add_int(o, "max_memory_bytes", (int64_t)m->config->max_memory);
	json_add_int(o, "processes", (int64_t)pt.running);
	if (!viewer->privileged) {
		/* The health figures of `profq status` (profq(1)) only: nothing about the host's
		 * processes, paths or clients. */
		json_object_object_add(o, "limited", json_object_new_boolean(true));
		*ret = TAKE_PTR(o);
		return 0;
	}
	r = status_unwind(m, &ps, o);
	if (r < 0)
		return r;
	r = status_offcpu(m, &ps, o);
	if (r < 0)
		return r;
	r = status_faults(m, &ps, o);
	if (r < 0)
		return r;
	r = status_memory(m, &ps, o);
	if (r < 0)
		return r;
	json_add_int(o, "exited_processes", (int64_t)pt.exited_held);
	json_add_int(o, "exited_dropped", (int64_t)pt.exited_dropped);
	json_add_int(o, "exec_splits", (int64_t)pt.exec_splits);
	json_add_int(o, "cgroup_reads", (int64_t)pt.cgroup_reads);
	json_add_int(o, "cgroup_errors", (int64_t)pt.cgroup_errors);
	json_add_int(o, "cgroup_from_id", (int64_t)pt.cgroup_from_id);
	json_add_int(o, "cgroup_walks", (int64_t)pt.cgroup_walks);
	json_add_int(o, "exited_dropped_memory", (int64_t)pt.exited_dropped_memory);
	json_add_int(o, "exits_unseen", (int64_t)pt.exits_unseen);
	json_add_int(o, "processes_table", (int64_t)pt.processes);
	json_add_int(o, "lost_events", (int64_t)(m->last.lost_events + rs.dropped[READER_EVENT]));
	json_add_int(o, "lost_sideband",
		     (int64_t)(sideband_lost(m->sideband) + rs.dropped[READER_SIDEBAND]));
	r = status_rss(m, &ps, o);
	if (r < 0)
		return r;
	json_add_int(o, "clients", (int64_t)ss.clients);
	json_add_int(o, "clients_refused", (int64_t)ss.refused);
	json_add_int(o, "client_timeouts", (int64_t)ss.timeouts);
	json_add_int(o, "bad_requests", (int64_t)ss.bad_requests);
	sym = json_object_new_object();
	if (!sym)
		return -ENOMEM;
	json_add_int(sym, "binaries", (int64_t)sy.binaries);
	json_add_int(sym, "binary_errors", (int64_t)sy.binary_errors);
	json_add_int(sym, "lookups", (int64_t)sy.lookups);
	json_add_int(sym, "cache_hits", (int64_t)sy.cache_hits);
	json_add_int(sym, "unresolved", (int64_t)sy.unresolved);
	json_add_int(sym, "kernel_symbols", (int64_t)sy.kernel_symbols);
	json_add_int(sym, "dwarf_binaries", (int64_t)sy.dwarf_binaries);
	json_add_int(sym, "dwarf_releases", (int64_t)sy.dwarf_releases);
	json_add_int(sym, "dwarf_opens", (int64_t)sy.dwarf_opens);
	json_add_int(sym, "dwarf_open_ms", (int64_t)(sy.dwarf_open_ns / 1000000));
	json_add_int(sym, "dwarf_deferred", (int64_t)sy.dwarf_deferred);
	json_add_int(sym, "dwarf_refused", (int64_t)sy.dwarf_refused);
	json_add_int(sym, "dwarf_faults", (int64_t)sy.dwarf_faults);
	json_add_int(sym, "dwarf_pending", (int64_t)sy.dwarf_pending);
	json_add_int(sym, "dwarf_slices", (int64_t)sy.dwarf_slices);
	json_add_int(sym, "dwarf_worker_requests", (int64_t)sy.dwarf_worker.requests);
	json_add_int(sym, "dwarf_worker_children", (int64_t)sy.dwarf_worker.children);
	json_add_int(sym, "dwarf_worker_timeouts", (int64_t)sy.dwarf_worker.timeouts);
	json_add_int(sym, "dwarf_worker_died", (int64_t)sy.dwarf_worker.died);
	json_add_int(sym, "dwarf_worker_refused", (int64_t)sy.dwarf_worker.refused);
	json_add_int(sym, "dwarf_worker_queued", (int64_t)sy.dwarf_worker.queued);
	json_add_int(sym, "dwarf_worker_rss", (int64_t)sy.dwarf_worker.rss);
	json_add_int(sym, "fuse_refused", (int64_t)sy.fuse_refused);
	json_add_int(sym, "binaries_dropped", (int64_t)sy.binaries_dropped);
	json_add_int(sym, "binaries_unloaded", (int64_t)sy.binaries_unloaded);
	json_add_int(sym, "binaries_reloaded", (int64_t)sy.binaries_reloaded);
	json_add_int(sym, "perf_maps_read", (int64_t)pt.perfmap_loads);
	json_add_int(sym, "perf_map_bad_lines", (int64_t)pt.perfmap_bad_lines);
	json_add_int(sym, "perf_map_bytes_read", (int64_t)pt.perfmap_bytes_read);
	json_add_int(sym, "perf_map_bytes_refused", (int64_t)pt.perfmap_bytes_refused);
	json_add_int(sym, "perf_maps_dropped", (int64_t)pt.perfmap_dropped);
	r = status_largest(m, sym);
	if (r < 0) {
		json_object_put(sym);
		return r;
	}
	json_add_int(sym, "stack_cache_hits", (int64_t)ps.stack_hits);
	json_add_int(sym, "dwarf_held_samples", (int64_t)ps.held);
	json_add_int(sym, "dwarf_held_lost", (int64_t)ps.held_lost);
	json_object_object_add(o, "symbolizer", sym);
	r = status_python(m, &ps, o);
	if (r < 0)
		return r;
	r = status_persistence(m, o);
	if (r < 0)
		return r;
	r = status_push(m, o);
	if (r < 0)
		return r;
	json_add_int(o, "bpf_prog_id", sampler_prog_id(m->sampler));
	*ret = TAKE_PTR(o);
	return 0;
}

static void on_history_answer(void *userdata, uint64_t token, json_object *answer)
{
	Profqd *m = userdata;

	(void)server_complete(m->server, token, answer);
}

/*
 * Whether the range of req reaches windows evicted from memory that the state dir still holds,
 * and from when to read it: they are read back in a worker (history.h).
 */
static bool wants_history(Profqd *m, const QueryContext *ctx, const Request *req,
			  int64_t *ret_not_before, int64_t *ret_deleted)
{
	const Window *oldest = store_window(ctx->store, 0);
	int64_t from, deleted, start, end;

	if (req->command == COMMAND_STATUS || !oldest ||
	    !profiler_disk_history(m->profiler, &from, &deleted))
		return false;
	start = req->has_since ? ctx->now_ns - (int64_t)req->since_ns : INT64_MIN;
	end = req->has_until ? ctx->now_ns - (int64_t)req->until_ns : INT64_MAX;
	if (start >= oldest->start_ns || end <= from)
		return false;
	*ret_not_before = MAX(start, ctx->now_ns - (int64_t)m->config->retention_ns);
	*ret_deleted = deleted;
	return true;
}

static int on_request(void *userdata, const Peer *peer, const Request *req, json_object **ret)
{
	Profqd *m = userdata;
	Viewer viewer = {
		.uid = peer->cred.uid,
		.privileged = peer_privileged(peer, m->have_group, m->group_gid),
		/* Read per request: the administrator may change it at any time. */
		.kernel_names = access_kernel_profiling_allowed(),
	};
	int64_t not_before, deleted;
	QueryContext ctx;
	int r;

	/* Answer from everything sampled so far, not from the last tick. */
	drain(m, true);
	if (req->command == COMMAND_STATUS)
		return answer_status(m, &viewer, ret);
	/* Live processes' user/sys are the kernel's figures of now. */
	if (req->command == COMMAND_TIME)
		profiler_refresh(m->profiler,
				 req->children || request_has_match(req) ? 0 : req->pid);
	ctx = (QueryContext){ .store = profiler_store(m->profiler),
			      .now_ns = now_real_ns(),
			      .viewer = viewer };
	if (wants_history(m, &ctx, req, &not_before, &deleted)) {
		r = history_start(m->history, &ctx, req, not_before, deleted,
				  server_defer(m->server));
		if (r == 0)
			return -EINPROGRESS;
		*ret = error_answer_new(
			ERROR_UNAVAILABLE, "Failed to read the range from the state dir: %s",
			r == -EBUSY ? "too many such queries now, try again" : strerror(-r));
		return *ret ? 0 : -ENOMEM;
	}
	r = query_answer(&ctx, req, ret);
	if (r == -EOPNOTSUPP) {
		*ret = error_answer_new(ERROR_BAD_REQUEST, "Command '%s' is not supported",
					command_to_string(req->command));
		return *ret ? 0 : -ENOMEM;
	}
	return r;
}

static int resolve_group(Profqd *m)
{
	const Config *c = m->config;
	struct group *g;

	errno = 0;
	g = getgrnam(c->group);
	if (!g) {
		if (c->group_explicit)
			return log_error_errno(errno ? negative_errno() : -ENOENT,
					       "Failed to find group '%s'", c->group);
		return 0;
	}
	m->group_gid = g->gr_gid;
	m->have_group = true;
	return 0;
}

static int mkdir_parents(const char *path, mode_t mode)
{
	_cleanup_free_ char *p = strdup(path);

	if (!p)
		return -ENOMEM;
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, mode) < 0 && errno != EEXIST)
			return negative_errno();
		*s = '/';
	}
	return 0;
}

/* The Python maps are the sampler's, which exists before any sample reaches Python. */
static int py_set_layout(void *userdata, uint32_t index, const struct profq_py_layout *l)
{
	Profqd *m = userdata;

	return m->sampler ? sampler_py_set_layout(m->sampler, index, l) : -ENODEV;
}

static int py_set_proc(void *userdata, uint32_t tgid, const struct profq_py_proc *v)
{
	Profqd *m = userdata;

	return m->sampler ? sampler_py_set_proc(m->sampler, tgid, v) : -ENODEV;
}

static int py_del_proc(void *userdata, uint32_t tgid)
{
	Profqd *m = userdata;

	return m->sampler ? sampler_py_del_proc(m->sampler, tgid) : -ENODEV;
}

static int py_set_thread(void *userdata, const struct profq_py_thread_key *k,
			 const struct profq_py_thread *v)
{
	Profqd *m = userdata;

	return m->sampler ? sampler_py_set_thread(m->sampler, k, v) : -ENODEV;
}

static int py_del_thread(void *userdata, const struct profq_py_thread_key *k)
{
	Profqd *m = userdata;

	return m->sampler ? sampler_py_del_thread(m->sampler, k) : -ENODEV;
}

/* The push targets' credentials: read once, at start, with profqd's privileges. */
static int read_token_file(const char *path, char **ret)
{
	_cleanup_free_ char *text = NULL;
	struct stat st;
	size_t len;
	int r;

	r = procfs_read_file(path, 4096, &text, &len);
	if (r < 0)
		return log_error_errno(r, "Failed to read push-token-file '%s': %m", path);
	while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' '))
		text[--len] = '\0';
	if (len == 0 || strlen(text) != len || strpbrk(text, "\r\n")) {
		explicit_bzero(text, len);
		return log_error_errno(-EINVAL,
				       "Failed to use push-token-file '%s': it must hold "
				       "one line, user:password or a token",
				       path);
	}
	if (stat(path, &st) == 0 && (st.st_mode & 0077))
		log_warning("push-token-file '%s' is readable by others than its owner.", path);
	*ret = TAKE_PTR(text);
	return 0;
}

/* Starts one Pusher per push URL, each with a spool directory of its own in the state dir. */
static int push_setup(Profqd *m)
{
	const Config *c = m->config;
	_cleanup_free_ char *token = NULL, *root = NULL;
	const Window *open;
	int r = 0;

	if (c->n_push == 0)
		return 0;
	if (c->push_token_file) {
		r = read_token_file(c->push_token_file, &token);
		if (r < 0)
			return r;
	}
	if (asprintf(&root, "%s/push", c->state_dir) < 0) {
		root = NULL;
		r = -ENOMEM;
	} else if (mkdir(root, 0700) < 0 && errno != EEXIST)
		r = log_error_errno(negative_errno(), "Failed to create directory '%s': %m", root);
	for (size_t i = 0; r >= 0 && i < c->n_push; i++) {
		_cleanup_free_ char *dir = NULL;
		PushOptions o = {
			.url = c->push[i],
			.credentials = token,
			.max_spool = c->push_max_spool,
			.connect_timeout_ns = MIN(c->push_timeout_ns, 5 * NSEC_PER_SEC),
			.timeout_ns = c->push_timeout_ns,
			.backoff_min_ns = NSEC_PER_SEC,
			.backoff_max_ns = c->push_retry_max_ns,
		};

		/* Named by the URL: a target keeps its spool across restarts. */
		if (asprintf(&dir, "%s/%016llx", root,
			     (unsigned long long)XXH3_64bits(c->push[i], strlen(c->push[i]))) < 0) {
			dir = NULL;
			r = -ENOMEM;
			break;
		}
		o.spool_dir = dir;
		r = pusher_new(&o, &m->pushers[m->n_pushers]);
		if (r < 0)
			break; /* logged */
		m->n_pushers++;
	}
	if (token)
		explicit_bzero(token, strlen(token));
	if (r == -ENOMEM)
		return log_error_errno(r, "Failed to set up the push targets: %m");
	if (r < 0)
		return r;
	if (gethostname(m->hostname, sizeof(m->hostname) - 1) < 0)
		snprintf(m->hostname, sizeof(m->hostname), "unknown");
	m->upload = (UploadOptions){
		.app = c->push_app,
		.host = m->hostname,
		.labels = c->push_labels,
		.comm_glob = c->push_comm,
		.unit_glob = c->push_unit,
		.frequency = c->frequency,
	};
	/* Windows loaded from the state dir were pushed, or spooled, by the run that closed
	 * them: from the open window on. */
	open = store_window_current(profiler_store(m->profiler));
	m->pushed_until_ns = open ? open->start_ns : now_real_ns();
	log_info("Pushing every closed window to %zu target(s), spooled in '%s'.", m->n_pushers,
		 root);
	return 0;
}

static int py_next_thread(void *userdata, const struct profq_py_thread_key *prev,
			  struct profq_py_thread_key *ret_key, struct profq_py_thread *ret)
{
	Profqd *m = userdata;

	return m->sampler ? sampler_py_next_thread(m->sampler, prev, ret_key, ret) : -ENODEV;
}

int profqd_new(const Config *config, Profqd **ret)
{
	_cleanup_(profqd_freep) Profqd *m = NULL;
	const DwarfWorkerOptions dwopts = { .timeout_ns = DWARF_WORKER_TIMEOUT_NS,
					    .wait_ns = DWARF_WORKER_WAIT_NS,
					    .lookup_wait_ns = DWARF_WORKER_LOOKUP_WAIT_NS,
					    .max_data = DWARF_WORKER_MAX_DATA };
	ProfilerOptions popts = {
		.frequency = config->frequency,
		.window_ns = config->window_ns,
		.retention_ns = config->retention_ns,
		.max_memory = config->max_memory,
		.max_disk = config->max_disk,
		.resident = procfs_self_resident,
		.state_dir = config->state_dir,
		.unwind = config->stack_copy > 0,
		.debug_dirs = config->debug_dirs,
		.dwarf_slice_ns = DWARF_SLICE_NS,
		.dwarf_worker = &dwopts,
	};
	SamplerOptions sopts = { .frequency = config->frequency,
				 .stack_copy = config->stack_copy,
				 .memory = config->memory,
				 /* A quarter as many switch-outs as CPU samples (per 100 ms). */
				 .offcpu_budget = config->off_cpu ? MAX(config->frequency / 40, 1u)
								  : 0,
				 /* Longer than a CPU sample's period: always counted. */
				 .offcpu_long_ns = NSEC_PER_SEC / config->frequency,
				 /* As many preemptions as CPU samples. */
				 .offcpu_preempt_budget = MAX(config->frequency / 10, 1u),
				 .fault_period = config->faults ? PROFQD_FAULT_PERIOD : 0,
				 .on_sample = on_sample,
				 .on_event = on_event };
	ReaderOptions ropts = {
		.read = read_kernel,
		/* Bytes in the queue are resident, so --max-memory counts them (as outside the
		 * profiler's data, profiler.h); a quarter of it holds seconds of samples. */
		.max_bytes = config->max_memory / 4,
	};
	ServerOptions vopts = {
		.path = config->socket_path,
		.max_clients = 256,
		.max_per_uid = 32,
		.idle_timeout_ns = 30 * NSEC_PER_SEC,
		.request_timeout_ns = 10 * NSEC_PER_SEC,
		.max_answer = 16u << 20,
	};
	HistoryOptions hopts = {
		.state_dir = config->state_dir,
		/* What reading back evicted windows may add, in the worker. */
		.max_memory = config->max_memory,
		.timeout_ns = 20 * NSEC_PER_SEC,
	};
	struct itimerspec its = {
		.it_interval = { .tv_nsec = TICK_NS },
		.it_value = { .tv_nsec = TICK_NS },
	};
	sigset_t mask;
	int r;

	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->py_ops = (PyMapOps){ .set_layout = py_set_layout,
				.set_proc = py_set_proc,
				.del_proc = py_del_proc,
				.set_thread = py_set_thread,
				.del_thread = py_del_thread,
				.next_thread = py_next_thread,
				.userdata = m };
	pthread_mutex_init(&m->seen_lock, NULL);
	popts.python = config->python ? &m->py_ops : NULL;
	m->config = config;
	m->signal_fd = m->timer_fd = -1;
	m->seen_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	m->work_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (m->seen_fd < 0 || m->work_fd < 0)
		return log_error_errno(negative_errno(), "Failed to create an eventfd: %m");
	m->start_mono_ns = now_mono_ns();
	r = resolve_group(m);
	if (r < 0)
		return r;
	r = loop_new(&m->loop);
	if (r < 0)
		return log_error_errno(r, "Failed to create the event loop: %m");

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		return log_error_errno(negative_errno(), "Failed to block signals: %m");
	m->signal_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (m->signal_fd < 0)
		return log_error_errno(negative_errno(), "Failed to create a signalfd: %m");
	r = loop_add(m->loop, m->signal_fd, EPOLLIN, on_signal, m, &m->signal_src);
	if (r < 0)
		return log_error_errno(r, "Failed to watch signals: %m");

	r = profiler_new(&popts, &m->profiler);
	if (r == -EBUSY)
		return r; /* logged: the state directory is another daemon's */
	if (r < 0)
		return log_error_errno(r, "Failed to create the profiler: %m");
	r = profiler_tick(m->profiler, now_real_ns(), now_mono_ns());
	if (r < 0)
		return log_error_errno(r, "Failed to open the first window: %m");

	r = push_setup(m);
	if (r < 0)
		return r; /* logged */

	/* The sideband first: mappings of processes started from now on are known before their
	 * first sample. */
	r = sideband_new(SIDEBAND_PAGES, on_sideband, m->profiler, &m->sideband);
	if (r < 0)
		return r; /* logged */
	profiler_set_sideband_refresh(m->profiler, refresh_sideband, m);
	sopts.userdata = m;
	r = sampler_new(&sopts, &m->sampler);
	if (r < 0)
		return r; /* logged */
	/* Attached: from now on a thread empties the kernel rings, whatever the loop is doing. */
	ropts.userdata = m;
	ropts.period_ns = sampler_ringbuf_span_ns(m->sampler) / 8;
	ropts.period_ns = MAX(ropts.period_ns, READ_PERIOD_MIN_NS);
	ropts.period_ns = MIN(ropts.period_ns, READ_PERIOD_MAX_NS);
	r = reader_new(&ropts, &m->reader);
	if (r < 0)
		return log_error_errno(r, "Failed to set up the ring buffer reader: %m");
	r = reader_start(m->reader);
	if (r < 0)
		return log_error_errno(r, "Failed to start the ring buffer reader thread: %m");

	r = mkdir_parents(config->socket_path, 0755);
	if (r < 0)
		return log_error_errno(r, "Failed to create the directory of socket '%s': %m",
				       config->socket_path);
	r = server_new(m->loop, &vopts, on_request, m, &m->server);
	if (r < 0)
		return r; /* logged */
	hopts.max_answer = vopts.max_answer;
	r = history_new(m->loop, &hopts, on_history_answer, m, &m->history);
	if (r < 0)
		return log_error_errno(r, "Failed to set up history queries: %m");

	m->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (m->timer_fd < 0)
		return log_error_errno(negative_errno(), "Failed to create a timer: %m");
	if (timerfd_settime(m->timer_fd, 0, &its, NULL) < 0)
		return log_error_errno(negative_errno(), "Failed to arm the timer: %m");
	r = loop_add(m->loop, m->timer_fd, EPOLLIN, on_timer, m, &m->timer_src);
	if (r < 0)
		return log_error_errno(r, "Failed to watch the timer: %m");
	r = loop_add(m->loop, m->seen_fd, EPOLLIN, on_seen, m, &m->seen_src);
	if (r < 0)
		return log_error_errno(r, "Failed to watch the eventfd: %m");
	r = loop_add(m->loop, m->work_fd, EPOLLIN, on_work, m, &m->work_src);
	if (r < 0)
		return log_error_errno(r, "Failed to watch the eventfd: %m");
	r = notifier_new(&m->notifier);
	if (r < 0)
		return log_error_errno(r, "Failed to set up service notifications: %m");

	log_info("Sampling %u CPUs at %u Hz (ring buffer %zu KiB, read every %" PRIu64 " ms); "
		 "listening on %s.",
		 sampler_cpus(m->sampler), config->frequency,
		 sampler_ringbuf_bytes(m->sampler) / 1024,
		 (uint64_t)(ropts.period_ns / NSEC_PER_MSEC), config->socket_path);
	/* The ring buffer is mapped twice (records read across its end): RSS counts it twice. */
	if (2 * (uint64_t)sampler_ringbuf_bytes(m->sampler) > config->max_memory / 4)
		log_warning("The BPF ring buffer (%zu KiB, counted twice in RSS) takes more than a "
			    "quarter of --max-memory (%" PRIu64 " KiB): profiles and symbols get "
			    "less, at least half of it.",
			    sampler_ringbuf_bytes(m->sampler) / 1024, config->max_memory / 1024);
	*ret = TAKE_PTR(m);
	return 0;
}

int profqd_run(Profqd *m)
{
	int r;

	/* Sampling runs and the socket is bound: clients may come. */
	notifier_ready(m->notifier, now_mono_ns(), notify_stats, m);
	r = loop_run(m->loop);
	notifier_stopping(m->notifier);
	if (r < 0)
		return log_error_errno(r, "Event loop failed: %m");
	/* Keep what the open window holds: the reader's last records, and the kernel's. */
	reader_stop(m->reader);
	drain(m, true);
	profiler_release_held(m->profiler);
	r = profiler_close_window(m->profiler);
	if (r < 0)
		log_warning_errno(r, "Failed to close the open window: %m");
	/* Spooled now, sent by the next run if not before the threads stop. */
	push_closed(m);
	return 0;
}
