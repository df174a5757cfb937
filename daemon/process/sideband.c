/* SPDX-License-Identifier: MIT */
#include <linux/perf_event.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>

#include "base/log.h"
#include "base/macro.h"
#include "privileges.h"
#include "process/sideband.h"

/* sample_id trailer of every record with sample_id_all and PERF_SAMPLE_TID | PERF_SAMPLE_TIME. */
struct sample_id {
	uint32_t pid, tid;
	uint64_t time;
};

struct rec_mmap2 {
	struct perf_event_header header;
	uint32_t pid, tid;
	uint64_t addr, len, pgoff;
	uint32_t maj, min;
	uint64_t ino, ino_generation;
	uint32_t prot, flags;
	char filename[];
};

struct rec_comm {
	struct perf_event_header header;
	uint32_t pid, tid;
	char comm[];
};

struct rec_task {
	struct perf_event_header header;
	uint32_t pid, ppid, tid, ptid;
	uint64_t time;
};

struct rec_lost {
	struct perf_event_header header;
	uint64_t id, lost;
};

typedef struct Ring {
	int fd;
	void *base;
	size_t mmap_size;
} Ring;

/* An event copied out of a ring, so the records of all CPUs can be sorted by time. */
typedef struct Pending {
	SidebandEvent ev;
	size_t path_off; /* into paths, or SIZE_MAX */
	size_t seq;	 /* read order: keeps equal timestamps stable */
} Pending;

struct Sideband {
	Ring *rings;
	unsigned n_rings;
	size_t page_size;
	sideband_handler_t handler;
	void *userdata;
	uint64_t lost, bad;
	uint64_t bad_framing; /* read and written atomically: counted by the reading thread */
	char *scratch;	      /* a record that wraps around the ring end */
	size_t scratch_size;
	Pending *pending;
	size_t n_pending, allocated_pending;
	char *paths;
	size_t paths_len, allocated_paths;
};

Sideband *sideband_free(Sideband *s)
{
	if (!s)
		return NULL;
	for (unsigned i = 0; i < s->n_rings; i++) {
		if (s->rings[i].base)
			munmap(s->rings[i].base, s->rings[i].mmap_size);
		if (s->rings[i].fd >= 0)
			close(s->rings[i].fd);
	}
	free(s->rings);
	free(s->scratch);
	free(s->pending);
	free(s->paths);
	free(s);
	return NULL;
}

static int online_cpu_list(unsigned **ret, unsigned *ret_n)
{
	_cleanup_fclose_ FILE *f = fopen("/sys/devices/system/cpu/online", "re");
	_cleanup_free_ unsigned *cpus = NULL;
	size_t n = 0, allocated = 0;
	unsigned a, b;
	char sep;

	if (!f)
		return negative_errno();
	while (fscanf(f, "%u", &a) == 1) {
		b = a;
		sep = (char)fgetc(f);
		if (sep == '-') {
			if (fscanf(f, "%u", &b) != 1 || b < a || b - a > 65536)
				return -EINVAL;
			sep = (char)fgetc(f);
		}
		for (unsigned c = a; c <= b; c++) {
			if (GREEDY_REALLOC(cpus, allocated, n + 1) < 0)
				return -ENOMEM;
			cpus[n++] = c;
		}
		if (sep != ',')
			break;
	}
	if (n == 0)
		return -ENODEV;
	*ret = TAKE_PTR(cpus);
	*ret_n = (unsigned)n;
	return 0;
}

int sideband_new(unsigned pages_per_cpu, sideband_handler_t handler, void *userdata, Sideband **ret)
{
	_cleanup_(sideband_freep) Sideband *s = NULL;
	_cleanup_free_ unsigned *cpus = NULL;
	unsigned n_cpus;
	int r;

	if (pages_per_cpu == 0 || (pages_per_cpu & (pages_per_cpu - 1)))
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->handler = handler;
	s->userdata = userdata;
	s->page_size = (size_t)sysconf(_SC_PAGESIZE);
	r = online_cpu_list(&cpus, &n_cpus);
	if (r < 0)
		return log_error_errno(r, "Failed to read the online CPUs: %m");
	s->rings = calloc(n_cpus, sizeof(Ring));
	if (!s->rings)
		return -ENOMEM;
	for (unsigned i = 0; i < n_cpus; i++) {
		struct perf_event_attr attr = {
			.type = PERF_TYPE_SOFTWARE,
			.size = sizeof(attr),
			.config = PERF_COUNT_SW_DUMMY,
			.sample_type = PERF_SAMPLE_TID | PERF_SAMPLE_TIME,
			.sample_id_all = 1,
			.mmap = 1,
			.mmap2 = 1,
			.comm = 1,
			.comm_exec = 1,
			.task = 1,
			.use_clockid = 1,
			.clockid = CLOCK_BOOTTIME,
			/* We poll on a timer: wake nobody. */
			.watermark = 1,
			.wakeup_watermark = (uint32_t)(pages_per_cpu * s->page_size),
		};
		Ring *ring = &s->rings[s->n_rings];

		ring->fd = (int)syscall(__NR_perf_event_open, &attr, -1, (int)cpus[i], -1,
					PERF_FLAG_FD_CLOEXEC);
		if (ring->fd < 0) {
			r = negative_errno();
			if (r == -ENODEV) /* went offline */
				continue;
			if (privileges_denied(r))
				return log_error_errno(r,
						       "Failed to open the sideband event on CPU "
						       "%u: %m\n" PRIVILEGES_HINT,
						       cpus[i]);
			return log_error_errno(r, "Failed to open the sideband event on CPU %u: %m",
					       cpus[i]);
		}
		ring->mmap_size = (1 + pages_per_cpu) * s->page_size;
		ring->base = mmap(NULL, ring->mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED,
				  ring->fd, 0);
		if (ring->base == MAP_FAILED) {
			ring->base = NULL;
			r = negative_errno();
			close(ring->fd);
			ring->fd = -1;
			return log_error_errno(r, "Failed to map the sideband ring of CPU %u: %m",
					       cpus[i]);
		}
		s->n_rings++;
	}
	*ret = TAKE_PTR(s);
	return 0;
}

/* The NUL-terminated string at [p, end), or NULL when it is not terminated there. */
static const char *string_in(const char *p, const char *end)
{
	return p < end && memchr(p, '\0', (size_t)(end - p)) ? p : NULL;
}

int sideband_parse_record(const void *rec, size_t size, SidebandEvent *ret, uint64_t *ret_lost)
{
	const struct perf_event_header *h = rec;
	const struct sample_id *sid;
	const char *end;

	/* The kernel writes records in whole u64s: one that is not is not its own (and would put
	 * the sample_id at a misaligned address). */
	if (size < sizeof(*h) || h->size != size || size < sizeof(*h) + sizeof(*sid) ||
	    size % sizeof(uint64_t) != 0)
		return -EBADMSG;
	sid = (const struct sample_id *)((const char *)rec + size - sizeof(*sid));
	end = (const char *)sid;
	*ret = (SidebandEvent){ .time_ns = sid->time };

	switch (h->type) {
	case PERF_RECORD_MMAP2: {
		const struct rec_mmap2 *m = rec;

		if (size < sizeof(*m) + sizeof(*sid))
			return -EBADMSG;
		ret->path = string_in(m->filename, end);
		if (!ret->path)
			return -EBADMSG;
		/* Build-id records carry no device and inode; we never ask for them. */
		if (h->misc & PERF_RECORD_MISC_MMAP_BUILD_ID)
			return 0;
		ret->type = SIDEBAND_MMAP;
		ret->pid = m->pid;
		ret->start = m->addr;
		ret->len = m->len;
		ret->pgoff = m->pgoff;
		ret->dev_major = m->maj;
		ret->dev_minor = m->min;
		ret->inode = m->ino;
		ret->prot = m->prot;
		if (ret->len == 0 || ret->start + ret->len < ret->start)
			return -EBADMSG;
		return 1;
	}
	case PERF_RECORD_COMM: {
		const struct rec_comm *c = rec;

		if (size < sizeof(*c) + sizeof(*sid) || !string_in(c->comm, end))
			return -EBADMSG;
		if (!(h->misc & PERF_RECORD_MISC_COMM_EXEC) || c->pid != c->tid)
			return 0; /* a rename, not an exec */
		ret->type = SIDEBAND_EXEC;
		ret->pid = c->pid;
		return 1;
	}
	case PERF_RECORD_FORK:
	case PERF_RECORD_EXIT: {
		const struct rec_task *t = rec;

		if (size < sizeof(*t) + sizeof(*sid))
			return -EBADMSG;
		if (h->type == PERF_RECORD_FORK) {
			if (t->pid == t->ppid)
				return 0; /* a new thread */
			ret->type = SIDEBAND_FORK;
		} else {
			if (t->pid != t->tid)
				return 0; /* a thread other than the main one */
			ret->type = SIDEBAND_EXIT;
		}
		ret->pid = t->pid;
		ret->ppid = t->ppid;
		return 1;
	}
	case PERF_RECORD_LOST: {
		const struct rec_lost *l = rec;

		if (size < sizeof(*l) + sizeof(*sid))
			return -EBADMSG;
		if (ret_lost)
			*ret_lost += l->lost;
		return 0;
	}
	default:
		return 0;
	}
}

static int queue_event(Sideband *s, const SidebandEvent *ev)
{
	Pending *p;
	size_t off = SIZE_MAX;

	if (ev->path) {
		size_t len = strlen(ev->path) + 1;

		if (GREEDY_REALLOC(s->paths, s->allocated_paths, s->paths_len + len) < 0)
			return -ENOMEM;
		memcpy(s->paths + s->paths_len, ev->path, len);
		off = s->paths_len;
		s->paths_len += len;
	}
	if (GREEDY_REALLOC(s->pending, s->allocated_pending, s->n_pending + 1) < 0)
		return -ENOMEM;
	p = &s->pending[s->n_pending];
	*p = (Pending){ .ev = *ev, .path_off = off, .seq = s->n_pending };
	p->ev.path = NULL;
	s->n_pending++;
	return 0;
}

int sideband_feed(Sideband *s, const void *rec, size_t size)
{
	SidebandEvent ev;
	int r;

	r = sideband_parse_record(rec, size, &ev, &s->lost);
	if (r < 0) {
		s->bad++;
		return 0;
	}
	if (r == 0)
		return 0;
	return queue_event(s, &ev);
}

/* Hands each record of one CPU's ring to fn. */
static int read_ring(Sideband *s, Ring *ring, sideband_record_fn fn, void *userdata)
{
	struct perf_event_mmap_page *meta = ring->base;
	const char *data = (const char *)ring->base + s->page_size;
	uint64_t size = ring->mmap_size - s->page_size;
	uint64_t head = __atomic_load_n(&meta->data_head, __ATOMIC_ACQUIRE);
	uint64_t tail = meta->data_tail;
	int r = 0;

	while (tail < head) {
		struct perf_event_header h;
		uint64_t off = tail % size;
		const void *rec;

		/* Headers are 8-byte aligned and never wrap; records may. */
		memcpy(&h, data + off, sizeof(h));
		if (h.size < sizeof(h) || h.size > head - tail) {
			__atomic_fetch_add(&s->bad_framing, 1, __ATOMIC_RELAXED);
			break;
		}
		if (off + h.size <= size) {
			rec = data + off;
		} else {
			size_t first = (size_t)(size - off);

			if (GREEDY_REALLOC(s->scratch, s->scratch_size, h.size) < 0) {
				r = -ENOMEM;
				break;
			}
			memcpy(s->scratch, data + off, first);
			memcpy(s->scratch + first, data, h.size - first);
			rec = s->scratch;
		}
		tail += h.size;
		r = fn(userdata, rec, h.size);
		if (r < 0)
			break;
	}
	/* Hand the space back even after an error: a stuck ring would lose everything after. */
	__atomic_store_n(&meta->data_tail, head, __ATOMIC_RELEASE);
	return r;
}

int sideband_read(Sideband *s, sideband_record_fn fn, void *userdata)
{
	int r = 0;

	for (unsigned i = 0; i < s->n_rings; i++) {
		int q = read_ring(s, &s->rings[i], fn, userdata);
		if (q < 0 && r == 0)
			r = q;
	}
	return r;
}

static int pending_cmp(const void *a, const void *b)
{
	const Pending *x = a, *y = b;

	if (x->ev.time_ns != y->ev.time_ns)
		return x->ev.time_ns < y->ev.time_ns ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

int sideband_flush(Sideband *s)
{
	size_t n = s->n_pending;

	/* Each CPU's records are in order; across CPUs, time decides (a fork before its exec).
	 * Nothing pending: pending may still be NULL, which qsort() must not be given. */
	if (n > 0)
		qsort(s->pending, n, sizeof(Pending), pending_cmp);
	for (size_t i = 0; i < n; i++) {
		Pending *p = &s->pending[i];

		if (p->path_off != SIZE_MAX)
			p->ev.path = s->paths + p->path_off;
		s->handler(s->userdata, &p->ev);
	}
	s->n_pending = 0;
	s->paths_len = 0;
	return (int)MIN(n, (size_t)INT32_MAX);
}

static int feed(void *userdata, const void *rec, size_t size)
{
	return sideband_feed(userdata, rec, size);
}

int sideband_drain(Sideband *s)
{
	int r = sideband_read(s, feed, s);
	int n = sideband_flush(s);

	return r < 0 ? r : n;
}

uint64_t sideband_lost(const Sideband *s)
{
	return s->lost;
}

uint64_t sideband_bad(const Sideband *s)
{
	return s->bad + __atomic_load_n(&s->bad_framing, __ATOMIC_RELAXED);
}
