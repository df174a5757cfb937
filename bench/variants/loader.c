/* SPDX-License-Identifier: MIT */
/*
 * profq-bench-load: loads one benchmark BPF variant, attaches it to a cpu-clock event on every
 * online CPU, prints "prog_id N" on stdout once sampling runs, and then reads like the design
 * it stands for until SIGTERM or SIGINT:
 *
 *   stackmap  (stackmap.bpf.c) reads nothing while running; at exit walks the count map and
 *             reads every stack it names once, as bcc's profile does before it symbolizes
 *   rbwake    (rbwake.bpf.c) blocks in ring_buffer__poll(): woken by the kernel per sample
 *   rbnowake  (rbnowake.bpf.c = profqd's program) ring_buffer__consume() every --drain-ms
 *             (default 100, as profqd)
 *   parts     (parts.bpf.c) profqd's program with --skip kstack,ustack,output parts switched
 *             off, read as rbnowake: for the cost breakdown
 *   empty     (parts.bpf.c) a program that returns at once: the fixed cost of any program
 *
 * The ring-buffer record handler only checks and counts records (no symbolization), so the
 * reader CPU of rbwake vs rbnowake is the price of the wakeups alone. A summary line goes to
 * stderr at exit; its stack_errors are profq's kernel + user stack errors, or for stackmap the
 * samples that lost a stack to a hash collision.
 *
 *   profq-bench-load VARIANT [--frequency HZ] [--drain-ms MS] [--skip PART,...]
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/perf_event.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>

#include "macro.h"
#include "parts.h"
#include "profq.h" /* before the skeletons: they declare struct profq_counters */
#include "parts.skel.h"
#include "rbnowake.skel.h"
#include "rbwake.skel.h"
#include "stackmap.h"
#include "stackmap.skel.h"

typedef enum Variant {
	VARIANT_STACKMAP,
	VARIANT_RBWAKE,
	VARIANT_RBNOWAKE,
	VARIANT_PARTS,
	VARIANT_EMPTY,
	_VARIANT_MAX,
} Variant;

static const char *const variant_names[_VARIANT_MAX] = {
	[VARIANT_STACKMAP] = "stackmap", [VARIANT_RBWAKE] = "rbwake",
	[VARIANT_RBNOWAKE] = "rbnowake", [VARIANT_PARTS] = "parts",
	[VARIANT_EMPTY] = "empty",
};

/* What the generic code needs from a skeleton; the skeleton itself stays typed. */
typedef struct Loaded {
	Variant variant;
	struct stackmap_bpf *stackmap;
	struct rbwake_bpf *rbwake;
	struct rbnowake_bpf *rbnowake;
	struct parts_bpf *parts;
	struct bpf_program *prog;
	struct bpf_map *counters;			 /* stackmap: a per-CPU map */
	const volatile struct profq_counters *pcounters; /* profq's: global data, one per CPU */
	struct bpf_map *samples;			 /* ring-buffer variants */
} Loaded;

typedef struct Stats {
	uint64_t records;
	uint64_t bytes;
	uint64_t frames;
	uint64_t bad;
} Stats;

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* Until SIGTERM/SIGINT; blocked meanwhile, so one cannot slip in between test and wait. */
static void wait_for_stop(void)
{
	sigset_t block, old;

	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigprocmask(SIG_BLOCK, &block, &old);
	while (!stop)
		sigsuspend(&old);
	sigprocmask(SIG_SETMASK, &old, NULL);
}

static uint64_t now_ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

static void loaded_destroy(Loaded *l)
{
	stackmap_bpf__destroy(l->stackmap);
	rbwake_bpf__destroy(l->rbwake);
	rbnowake_bpf__destroy(l->rbnowake);
	parts_bpf__destroy(l->parts);
}

/* Load only the program to attach: the object may hold others (profq's exec/exit probes). */
static void autoload_only(struct bpf_object *obj, const struct bpf_program *wanted)
{
	struct bpf_program *prog;

	bpf_object__for_each_program(prog, obj) bpf_program__set_autoload(prog, prog == wanted);
}

static int loaded_open(Variant v, uint32_t skip, Loaded *ret)
{
	Loaded l = { .variant = v };
	struct bpf_object *obj;
	int r;

	/* Open: parse the embedded object. */
	switch (v) {
	case VARIANT_STACKMAP:
		l.stackmap = stackmap_bpf__open();
		if (!l.stackmap)
			return -errno;
		obj = l.stackmap->obj;
		l.prog = l.stackmap->progs.stackmap_sample;
		l.counters = l.stackmap->maps.counters;
		break;
	case VARIANT_RBWAKE:
		l.rbwake = rbwake_bpf__open();
		if (!l.rbwake)
			return -errno;
		obj = l.rbwake->obj;
		l.prog = l.rbwake->progs.profq_sample;
		l.pcounters = l.rbwake->bss->counters;
		l.samples = l.rbwake->maps.samples;
		break;
	case VARIANT_RBNOWAKE:
		l.rbnowake = rbnowake_bpf__open();
		if (!l.rbnowake)
			return -errno;
		obj = l.rbnowake->obj;
		l.prog = l.rbnowake->progs.profq_sample;
		l.pcounters = l.rbnowake->bss->counters;
		l.samples = l.rbnowake->maps.samples;
		break;
	case VARIANT_PARTS:
	case VARIANT_EMPTY:
		l.parts = parts_bpf__open();
		if (!l.parts)
			return -errno;
		obj = l.parts->obj;
		l.parts->rodata->skip = skip;
		l.prog = v == VARIANT_EMPTY ? l.parts->progs.empty_sample
					    : l.parts->progs.profq_sample;
		l.pcounters = l.parts->bss->counters;
		l.samples = l.parts->maps.samples;
		break;
	default:
		return -EINVAL;
	}

	/* Configure, then load: create the maps, verify and JIT. */
	autoload_only(obj, l.prog);
	if (l.stackmap)
		r = stackmap_bpf__load(l.stackmap);
	else if (l.rbwake)
		r = rbwake_bpf__load(l.rbwake);
	else if (l.rbnowake)
		r = rbnowake_bpf__load(l.rbnowake);
	else
		r = parts_bpf__load(l.parts);
	if (r < 0) {
		loaded_destroy(&l);
		return r;
	}
	*ret = l;
	return 0;
}

/* One cpu-clock event per CPU; CPUs that are offline (ENODEV) are skipped. */
static int attach_all(const Loaded *l, unsigned frequency, struct bpf_link ***ret_links,
		      unsigned *ret_n)
{
	int n_cpus = libbpf_num_possible_cpus();
	struct bpf_link **links;
	unsigned attached = 0;

	if (n_cpus <= 0)
		return n_cpus ?: -EINVAL;
	links = calloc((size_t)n_cpus, sizeof(*links));
	if (!links)
		return -ENOMEM;
	for (int cpu = 0; cpu < n_cpus; cpu++) {
		struct perf_event_attr attr = {
			.type = PERF_TYPE_SOFTWARE,
			.size = sizeof(attr),
			.config = PERF_COUNT_SW_CPU_CLOCK,
			.freq = 1,
			.sample_freq = frequency,
		};
		int fd = (int)syscall(__NR_perf_event_open, &attr, -1, cpu, -1,
				      PERF_FLAG_FD_CLOEXEC);

		if (fd < 0) {
			if (errno == ENODEV)
				continue;
			fprintf(stderr, "Failed to open a cpu-clock event on CPU %d: %m\n", cpu);
			goto fail;
		}
		/* The link owns the event fd from here on. */
		links[cpu] = bpf_program__attach_perf_event(l->prog, fd);
		if (!links[cpu]) {
			fprintf(stderr, "Failed to attach on CPU %d: %m\n", cpu);
			close(fd);
			goto fail;
		}
		attached++;
	}
	*ret_links = links;
	*ret_n = (unsigned)n_cpus;
	return (int)attached;
fail:
	for (int cpu = 0; cpu < n_cpus; cpu++)
		bpf_link__destroy(links[cpu]);
	free(links);
	return -EIO;
}

static int on_record(void *ctx, void *data, size_t size)
{
	const struct profq_sample *s = data;
	Stats *st = ctx;

	if (size < PROFQ_SAMPLE_HDR_SIZE ||
	    size < PROFQ_SAMPLE_HDR_SIZE + ((size_t)s->kstack_len + s->ustack_len) * 8) {
		st->bad++;
		return 0;
	}
	st->records++;
	st->bytes += size;
	st->frames += (uint64_t)s->kstack_len + s->ustack_len;
	return 0;
}

static int read_ringbuf(const Loaded *l, unsigned drain_ms, Stats *st)
{
	struct ring_buffer *rb;
	int r = 0;

	rb = ring_buffer__new(bpf_map__fd(l->samples), on_record, st, NULL);
	if (!rb)
		return -errno;
	while (!stop) {
		if (l->variant == VARIANT_RBWAKE) {
			r = ring_buffer__poll(rb, 1000);
		} else {
			struct timespec ts = { .tv_sec = drain_ms / 1000,
					       .tv_nsec = (long)(drain_ms % 1000) * 1000000L };

			nanosleep(&ts, NULL);
			r = ring_buffer__consume(rb);
		}
		if (r < 0 && r != -EINTR)
			break;
		r = 0;
	}
	if (r == 0)
		r = ring_buffer__consume(rb);
	ring_buffer__free(rb);
	return r < 0 ? r : 0;
}

/* What bcc's profile does at exit before symbolizing: every count, and every stack once. */
static int walk_stackmap(const Loaded *l, Stats *st)
{
	int counts_fd = bpf_map__fd(l->stackmap->maps.counts);
	int stacks_fd = bpf_map__fd(l->stackmap->maps.stacks);
	struct stackmap_key key, next;
	__u64 ips[STACKMAP_MAX_FRAMES];
	bool first = true;

	while (bpf_map_get_next_key(counts_fd, first ? NULL : &key, &next) == 0) {
		__u64 count;
		__s32 ids[2];

		first = false;
		key = next;
		if (bpf_map_lookup_elem(counts_fd, &key, &count) < 0)
			continue;
		st->records++;
		st->bytes += count; /* samples represented */
		ids[0] = key.kstack;
		ids[1] = key.ustack;
		for (unsigned i = 0; i < 2; i++) {
			if (ids[i] < 0)
				continue;
			memset(ips, 0, sizeof(ips));
			if (bpf_map_lookup_elem(stacks_fd, &ids[i], ips) < 0) {
				st->bad++;
				continue;
			}
			for (unsigned f = 0; f < STACKMAP_MAX_FRAMES && ips[f]; f++)
				st->frames++;
		}
	}
	return 0;
}

static int read_counters(const Loaded *l, unsigned n_cpus, uint64_t ret[4])
{
	memset(ret, 0, 4 * sizeof(uint64_t));
	if (l->variant != VARIANT_STACKMAP) {
		for (unsigned cpu = 0; cpu < n_cpus && cpu < PROFQ_MAX_CPUS; cpu++) {
			const volatile struct profq_counters *pc = &l->pcounters[cpu];

			ret[0] += pc->samples;
			ret[1] += pc->idle;
			ret[2] += pc->lost_ringbuf;
			ret[3] += pc->kstack_errors + pc->ustack_errors;
		}
		return 0;
	}

	/* Per-CPU values come 8-byte aligned, one per possible CPU. */
	size_t value_size = (bpf_map__value_size(l->counters) + 7) & ~(size_t)7;
	_cleanup_free_ uint8_t *v = calloc(n_cpus, value_size);
	uint32_t zero = 0;
	int r;

	if (!v)
		return -ENOMEM;
	r = bpf_map__lookup_elem(l->counters, &zero, sizeof(zero), v, n_cpus * value_size, 0);
	if (r < 0)
		return r;
	for (unsigned cpu = 0; cpu < n_cpus; cpu++) {
		const struct stackmap_counters *sc = (const void *)(v + cpu * value_size);

		ret[0] += sc->samples;
		ret[1] += sc->idle;
		ret[2] += sc->lost;
		ret[3] += sc->collisions;
	}
	return 0;
}

int main(int argc, char *argv[])
{
	static const struct option options[] = {
		{ "frequency", required_argument, NULL, 'F' },
		{ "drain-ms", required_argument, NULL, 'd' },
		{ "skip", required_argument, NULL, 's' },
		{},
	};
	struct sigaction sa = { .sa_handler = on_signal };
	struct bpf_prog_info info = {};
	uint32_t info_len = sizeof(info);
	unsigned frequency = 99, drain_ms = 100, n_cpus = 0;
	struct bpf_link **links = NULL;
	Variant v = _VARIANT_MAX;
	uint64_t counters[4] = {}, walk_ns = 0;
	Stats st = {};
	Loaded l = {};
	uint32_t skip = 0;
	int c, r;

	while ((c = getopt_long(argc, argv, "F:d:s:", options, NULL)) >= 0) {
		switch (c) {
		case 'F':
			frequency = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'd':
			drain_ms = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 's':
			for (char *tok = strtok(optarg, ","); tok; tok = strtok(NULL, ",")) {
				if (streq(tok, "kstack"))
					skip |= PARTS_SKIP_KSTACK;
				else if (streq(tok, "ustack"))
					skip |= PARTS_SKIP_USTACK;
				else if (streq(tok, "output"))
					skip |= PARTS_SKIP_OUTPUT;
				else
					goto usage;
			}
			break;
		default:
			goto usage;
		}
	}
	for (unsigned i = 0; optind < argc && i < _VARIANT_MAX; i++)
		if (streq(argv[optind], variant_names[i]))
			v = (Variant)i;
	if (v == _VARIANT_MAX || optind + 1 != argc || frequency == 0 || drain_ms == 0)
		goto usage;

	/* Signals first: a SIGTERM during load must still end in a clean detach. */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	/* Open and load: the skeleton embeds the object. */
	r = loaded_open(v, skip, &l);
	if (r < 0) {
		fprintf(stderr, "Failed to load the '%s' BPF variant: %s\n", variant_names[v],
			strerror(-r));
		return 1;
	}

	/* Attach: one cpu-clock event per online CPU. */
	r = attach_all(&l, frequency, &links, &n_cpus);
	if (r <= 0) {
		fprintf(stderr, "Failed to attach: %s\n", r < 0 ? strerror(-r) : "no CPU online");
		loaded_destroy(&l);
		return 1;
	}
	if (bpf_obj_get_info_by_fd(bpf_program__fd(l.prog), &info, &info_len) == 0)
		printf("prog_id %u\n", info.id);
	fflush(stdout);

	/* Run: read as the design being measured reads. */
	if (v == VARIANT_STACKMAP || v == VARIANT_EMPTY) {
		uint64_t t0;

		wait_for_stop();
		for (unsigned cpu = 0; cpu < n_cpus; cpu++)
			bpf_link__destroy(TAKE_PTR(links[cpu]));
		t0 = now_ns(CLOCK_MONOTONIC);
		r = v == VARIANT_STACKMAP ? walk_stackmap(&l, &st) : 0;
		walk_ns = now_ns(CLOCK_MONOTONIC) - t0;
	} else {
		r = read_ringbuf(&l, drain_ms, &st);
	}
	if (r < 0)
		fprintf(stderr, "Failed to read the BPF maps: %s\n", strerror(-r));

	(void)read_counters(&l, n_cpus, counters);
	fprintf(stderr,
		"variant=%s samples=%" PRIu64 " idle=%" PRIu64 " lost=%" PRIu64
		" stack_errors=%" PRIu64 " records=%" PRIu64 " bytes_or_count=%" PRIu64
		" frames=%" PRIu64 " bad=%" PRIu64 " walk_ms=%.3f\n",
		variant_names[v], counters[0], counters[1], counters[2], counters[3], st.records,
		st.bytes, st.frames, st.bad, (double)walk_ns / 1e6);

	for (unsigned cpu = 0; cpu < n_cpus; cpu++)
		bpf_link__destroy(links[cpu]);
	free(links);
	loaded_destroy(&l);
	return r < 0 ? 1 : 0;
usage:
	fprintf(stderr,
		"usage: %s stackmap|rbwake|rbnowake|parts|empty [--frequency HZ] [--drain-ms MS]\n"
		"       [--skip kstack,ustack,output]   (parts only)\n",
		argv[0]);
	return 2;
}
