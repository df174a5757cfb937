/* SPDX-License-Identifier: MIT */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/perf_event.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/log.h"
#include "base/macro.h"
#include "base/procfs.h"
#include "privileges.h"
#include "sampling/sampler.h" /* before the skeleton: it declares struct profq_counters */
#include "profq_bpf.skel.h"

struct Sampler {
	struct profq_bpf *skel;
	struct ring_buffer *rb_events, *rb_samples;
	/* One per CPU; each owns its perf event fd: bpf_link__destroy() closes it. */
	struct bpf_link **links;
	struct bpf_link *exec_link, *exit_link;
	struct bpf_link *rss_link, *victim_link; /* memory tracking; NULL when off */
	struct bpf_link *switch_link;		 /* off-CPU; NULL when off */
	struct bpf_link **fault_links;		 /* page faults, one per CPU; NULL when off */
	unsigned n_fault_attached;
	bool memory;	 /* the memory tracking programs are loaded */
	unsigned n_cpus; /* possible CPUs: size of per-CPU values */
	unsigned n_attached;
	size_t ringbuf_bytes;
	uint32_t frequency, stack_copy;
	sampler_handler_t on_sample;
	sampler_event_handler_t on_event;
	void *userdata;
	int handler_error;
};

static int libbpf_log(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	_cleanup_free_ char *msg = NULL;
	size_t n;

	/* libbpf's warnings (e.g. verifier output) help, its debug chatter does not. */
	if (level == LIBBPF_DEBUG && log_get_max_level() < LOG_DEBUG)
		return 0;
	/* Whole: a verifier log runs to many kilobytes and its end says what failed. */
	if (vasprintf(&msg, fmt, ap) < 0)
		return 0;
	n = strlen(msg);
	if (n > 0 && msg[n - 1] == '\n')
		msg[n - 1] = '\0';
	log_full_errno(level == LIBBPF_WARN ? LOG_WARNING : LOG_DEBUG, 0, "libbpf: %s", msg);
	return 0;
}

Sampler *sampler_free(Sampler *s)
{
	if (!s)
		return NULL;
	ring_buffer__free(s->rb_events);
	ring_buffer__free(s->rb_samples);
	bpf_link__destroy(s->exec_link);
	bpf_link__destroy(s->exit_link);
	bpf_link__destroy(s->rss_link);
	bpf_link__destroy(s->victim_link);
	bpf_link__destroy(s->switch_link);
	for (unsigned i = 0; s->links && i < s->n_cpus; i++)
		bpf_link__destroy(s->links[i]);
	free(s->links);
	for (unsigned i = 0; s->fault_links && i < s->n_cpus; i++)
		bpf_link__destroy(s->fault_links[i]);
	free(s->fault_links);
	profq_bpf__destroy(s->skel);
	free(s);
	return NULL;
}

/* Every record goes to the handler, short ones too: it checks the size and counts what it
 * drops, so that no loss goes uncounted. */
static int on_record(void *ctx, void *data, size_t size)
{
	Sampler *s = ctx;
	int r;

	r = s->on_sample(s->userdata, data, size);
	if (r < 0 && s->handler_error == 0)
		s->handler_error = r;
	return 0;
}

static int on_event_record(void *ctx, void *data, size_t size)
{
	Sampler *s = ctx;
	int r;

	r = s->on_event(s->userdata, data, size);
	if (r < 0 && s->handler_error == 0)
		s->handler_error = r;
	return 0;
}

/* Online CPUs from /sys/devices/system/cpu/online ("0-3,6"): a bitmap over possible CPUs. */
static int online_cpus(unsigned n_possible, bool **ret)
{
	_cleanup_free_ char *buf = NULL;
	_cleanup_free_ bool *online = NULL;
	const char *p;
	int r;

	online = calloc(n_possible, sizeof(bool));
	if (!online)
		return -ENOMEM;
	r = procfs_read_file("/sys/devices/system/cpu/online", 4096, &buf, NULL);
	if (r < 0)
		return r;
	for (p = buf; *p && *p != '\n';) {
		char *end;
		unsigned long a, b;

		a = b = strtoul(p, &end, 10);
		if (end == p)
			return -EINVAL;
		if (*end == '-') {
			p = end + 1;
			b = strtoul(p, &end, 10);
			if (end == p || b < a)
				return -EINVAL;
		}
		for (unsigned long c = a; c <= b && c < n_possible; c++)
			online[c] = true;
		p = end;
		if (*p == ',')
			p++;
	}
	*ret = TAKE_PTR(online);
	return 0;
}

/* A typical record: the header and kernel frames, and half the stack copy (records are sized to
 * the stack in use, see user_stack_span()). */
static uint64_t typical_record(uint32_t stack_copy)
{
	return PROFQ_SAMPLE_STACK_OFFSET + stack_copy / 2;
}

static size_t ringbuf_size(const SamplerOptions *opts, unsigned n_cpus)
{
	uint64_t record = typical_record(opts->stack_copy);
	/* A second of samples (and off-CPU stacks at their budget) from every CPU: ten drains'
	 * worth, and room for the daemon to be busy for a while (reading a big binary) before
	 * anything is lost. The ring is mapped
	 * twice into our address space (to read records across its end), so it counts twice in
	 * RSS: no bigger than needed. */
	uint64_t want = ((uint64_t)opts->frequency + 10ull * opts->offcpu_budget) * n_cpus * record;
	size_t size = 1u << 20;

	if (opts->ringbuf_bytes)
		return opts->ringbuf_bytes;
	while (size < want && size < (16u << 20))
		size <<= 1;
	return size;
}

/* Opens, configures and loads the BPF object, with the memory tracking programs or without;
 * *ret_at_load tells a failure of the load itself (not logged) from the others (logged). */
static int load(Sampler *s, const SamplerOptions *opts, bool memory, bool *ret_at_load)
{
	int r;

	*ret_at_load = false;
	/* Open: parse the embedded object. */
	s->skel = profq_bpf__open();
	if (!s->skel)
		return log_error_errno(negative_errno(), "Failed to open BPF object: %m");

	/* Configure: size the maps and set the stack mode before the maps are created. */
	s->ringbuf_bytes = ringbuf_size(opts, s->n_cpus);
	r = bpf_map__set_max_entries(s->skel->maps.samples, (uint32_t)s->ringbuf_bytes);
	if (r < 0)
		return log_error_errno(r, "Failed to size the BPF ring buffer: %m");
	r = bpf_map__set_max_entries(s->skel->maps.scratch, s->n_cpus);
	if (r < 0)
		return log_error_errno(r, "Failed to size the BPF scratch map: %m");
	if (opts->stack_copy > PROFQ_STACK_COPY_MAX)
		return log_error_errno(-EINVAL, "Stack copy of %u bytes is over the %u maximum",
				       opts->stack_copy, PROFQ_STACK_COPY_MAX);
	s->skel->rodata->stack_copy = opts->stack_copy;
	s->memory = memory;
	s->skel->rodata->mem_enabled = memory;
	s->skel->rodata->page_shift = (uint32_t)__builtin_ctzl(
		(unsigned long)sysconf(_SC_PAGESIZE));
	if (opts->mem_threshold)
		s->skel->rodata->mem_threshold = opts->mem_threshold;
	bpf_program__set_autoload(s->skel->progs.profq_rss_stat, memory);
	bpf_program__set_autoload(s->skel->progs.profq_mark_victim, memory);
	s->skel->rodata->offcpu_budget = opts->offcpu_budget;
	if (opts->offcpu_long_ns)
		s->skel->rodata->offcpu_long_ns = opts->offcpu_long_ns;
	s->skel->rodata->offcpu_preempt_budget = opts->offcpu_preempt_budget;
	if (opts->offcpu_budget == 0)
		bpf_program__set_autoload(s->skel->progs.profq_offcpu_switch, false);
	bpf_program__set_autoload(s->skel->progs.profq_fault, opts->fault_period > 0);

	/* Load: create maps, verify and JIT the program. */
	*ret_at_load = true;
	return profq_bpf__load(s->skel);
}

/* Attaches the fault program to a minor-fault event of every online CPU, sampling one in
 * period faults. Logs a failure (a warning: the caller goes on without them). */
static int attach_faults(Sampler *s, uint64_t period, const bool *online)
{
	s->fault_links = calloc(s->n_cpus, sizeof(*s->fault_links));
	if (!s->fault_links)
		return -ENOMEM;
	for (unsigned cpu = 0; cpu < s->n_cpus; cpu++) {
		struct perf_event_attr attr = {
			.type = PERF_TYPE_SOFTWARE,
			.size = sizeof(attr),
			.config = PERF_COUNT_SW_PAGE_FAULTS_MIN,
			.sample_period = period,
		};
		_cleanup_close_ int fd = -1;

		if (!online[cpu])
			continue;
		fd = (int)syscall(__NR_perf_event_open, &attr, -1, (int)cpu, -1,
				  PERF_FLAG_FD_CLOEXEC);
		if (fd < 0 && errno == ENODEV)
			continue;
		if (fd < 0)
			return log_warning_errno(negative_errno(),
						 "Failed to open a page fault event on CPU %u, "
						 "going on without page faults: %m",
						 cpu);
		s->fault_links[cpu] = bpf_program__attach_perf_event(s->skel->progs.profq_fault,
								     fd);
		if (!s->fault_links[cpu])
			return log_warning_errno(negative_errno(),
						 "Failed to attach the fault program on CPU %u, "
						 "going on without page faults: %m",
						 cpu);
		(void)TAKE_FD(fd); /* the link's now */
		s->n_fault_attached++;
	}
	return 0;
}

int sampler_new(const SamplerOptions *opts, Sampler **ret)
{
	_cleanup_(sampler_freep) Sampler *s = NULL;
	_cleanup_free_ bool *online = NULL;
	bool at_load;
	int r;

	libbpf_set_print(libbpf_log);
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->on_sample = opts->on_sample;
	s->frequency = opts->frequency;
	s->stack_copy = opts->stack_copy;
	s->on_event = opts->on_event;
	s->userdata = opts->userdata;
	r = libbpf_num_possible_cpus();
	if (r <= 0)
		return log_error_errno(r ?: -EINVAL, "Failed to count possible CPUs: %m");
	s->n_cpus = (unsigned)r;
	s->links = calloc(s->n_cpus, sizeof(*s->links));
	if (!s->links)
		return -ENOMEM;

	r = load(s, opts, opts->memory, &at_load);
	if (r < 0 && at_load && opts->memory && !privileges_denied(r)) {
		/* A kernel without the tracepoints' BTF or the counters' form (before 6.2). */
		log_warning_errno(r, "Failed to load the memory tracking programs, going on "
				     "without them: %m");
		profq_bpf__destroy(s->skel);
		s->skel = NULL;
		r = load(s, opts, false, &at_load);
	}
	if (r < 0 && !at_load)
		return r; /* logged */
	if (r < 0 && privileges_denied(r))
		return log_error_errno(r, "Failed to load BPF program: %m\n" PRIVILEGES_HINT);
	if (r < 0)
		return log_error_errno(r, "Failed to load BPF program: %m");

	/* Attach: one cpu-clock event per online CPU. */
	r = online_cpus(s->n_cpus, &online);
	if (r < 0)
		return log_error_errno(r, "Failed to read the online CPUs: %m");
	for (unsigned cpu = 0; cpu < s->n_cpus; cpu++) {
		struct perf_event_attr attr = {
			.type = PERF_TYPE_SOFTWARE,
			.size = sizeof(attr),
			.config = PERF_COUNT_SW_CPU_CLOCK,
			.freq = 1,
			.sample_freq = opts->frequency,
		};
		_cleanup_close_ int fd = -1;

		if (!online[cpu])
			continue;
		fd = (int)syscall(__NR_perf_event_open, &attr, -1, (int)cpu, -1,
				  PERF_FLAG_FD_CLOEXEC);
		if (fd < 0) {
			r = negative_errno();
			if (r == -ENODEV) /* went offline meanwhile */
				continue;
			if (r == -EINVAL)
				return log_error_errno(
					r,
					"Failed to open a cpu-clock event at %u Hz on "
					"CPU %u: %m (is kernel.perf_event_max_sample_rate "
					"lower?)",
					opts->frequency, cpu);
			if (privileges_denied(r))
				return log_error_errno(r,
						       "Failed to open a cpu-clock event on CPU "
						       "%u: %m\n" PRIVILEGES_HINT,
						       cpu);
			return log_error_errno(r, "Failed to open a cpu-clock event on CPU %u: %m",
					       cpu);
		}
		s->links[cpu] = bpf_program__attach_perf_event(s->skel->progs.profq_sample, fd);
		if (!s->links[cpu])
			return log_error_errno(negative_errno(),
					       "Failed to attach the BPF program on CPU %u: %m",
					       cpu);
		/* The link owns the fd now (libbpf closes it in bpf_link__destroy()); on a failed
		 * attach it stays ours and the cleanup closes it. */
		(void)TAKE_FD(fd);
		s->n_attached++;
	}
	if (s->n_attached == 0)
		return log_error_errno(-ENODEV, "Failed to attach to any CPU: no CPU is online");

	/* Attach: process exec and exit (BTF tracepoints: no tracefs needed). */
	s->exec_link = bpf_program__attach(s->skel->progs.profq_exec);
	if (!s->exec_link)
		return log_error_errno(negative_errno(),
				       "Failed to attach to sched_process_exec: %m");
	s->exit_link = bpf_program__attach(s->skel->progs.profq_exit);
	if (!s->exit_link)
		return log_error_errno(negative_errno(),
				       "Failed to attach to sched_process_exit: %m");

	/* Attach: memory tracking (its section of profq.bpf.c). */
	if (s->memory) {
		s->rss_link = bpf_program__attach(s->skel->progs.profq_rss_stat);
		if (!s->rss_link)
			return log_error_errno(negative_errno(),
					       "Failed to attach to rss_stat: %m");
		s->victim_link = bpf_program__attach(s->skel->progs.profq_mark_victim);
		if (!s->victim_link)
			return log_error_errno(negative_errno(),
					       "Failed to attach to mark_victim: %m");
	}
	/* Attach: off-CPU time, at every context switch. */
	if (opts->offcpu_budget) {
		s->switch_link = bpf_program__attach(s->skel->progs.profq_offcpu_switch);
		if (!s->switch_link)
			return log_error_errno(negative_errno(),
					       "Failed to attach to sched_switch: %m");
	}

	/* Page faults are an extra: a kernel that refuses them leaves the rest running. */
	if (opts->fault_period && attach_faults(s, opts->fault_period, online) < 0) {
		for (unsigned i = 0; i < s->n_cpus; i++)
			bpf_link__destroy(TAKE_PTR(s->fault_links[i]));
		s->n_fault_attached = 0;
	}

	/* Run: the reader side of the ring buffers, one each so the caller chooses the order. */
	s->rb_events = ring_buffer__new(bpf_map__fd(s->skel->maps.events), on_event_record, s,
					NULL);
	if (!s->rb_events)
		return log_error_errno(negative_errno(), "Failed to open the BPF ring buffers: %m");
	s->rb_samples = ring_buffer__new(bpf_map__fd(s->skel->maps.samples), on_record, s, NULL);
	if (!s->rb_samples)
		return log_error_errno(negative_errno(), "Failed to open the BPF ring buffers: %m");

	*ret = TAKE_PTR(s);
	return 0;
}

static int consume(Sampler *s, struct ring_buffer *rb)
{
	int r;

	s->handler_error = 0;
	r = ring_buffer__consume(rb);
	if (r < 0)
		return r;
	if (s->handler_error < 0)
		return s->handler_error;
	return r;
}

int sampler_drain_events(Sampler *s)
{
	return consume(s, s->rb_events);
}

int sampler_drain_samples(Sampler *s)
{
	return consume(s, s->rb_samples);
}

int sampler_drain(Sampler *s)
{
	int r, n;

	/* Events first, so an exec is known before the samples of the new image. */
	n = sampler_drain_events(s);
	if (n < 0)
		return n;
	r = sampler_drain_samples(s);
	if (r < 0)
		return r;
	return n + r;
}

uint64_t sampler_ringbuf_span_ns(const Sampler *s)
{
	uint64_t per_s = (uint64_t)s->frequency * s->n_attached * typical_record(s->stack_copy);

	return per_s ? (uint64_t)s->ringbuf_bytes * NSEC_PER_SEC / per_s : NSEC_PER_SEC;
}

/* Adds one CPU's ring and stack-copy outcomes to sum. */
static void ring_counters_add(struct profq_counters *sum, const volatile struct profq_counters *c)
{
	sum->lost_ringbuf += c->lost_ringbuf;
	sum->kstack_errors += c->kstack_errors;
	sum->ustack_errors += c->ustack_errors;
	sum->stack_copy_errors += c->stack_copy_errors;
	sum->stack_copy_bytes += c->stack_copy_bytes;
}

int sampler_counters(Sampler *s, struct profq_counters *ret)
{
	/* The program's global counters, read through the skeleton's mapping of .bss. */
	const volatile struct profq_counters *v = s->skel->bss->counters;
	struct profq_counters sum = { 0 };
	unsigned n = MIN(s->n_cpus, (unsigned)PROFQ_MAX_CPUS);

	for (unsigned i = 0; i < n; i++) {
		sum.samples += v[i].samples;
		sum.idle += v[i].idle;
		ring_counters_add(&sum, &v[i]);
		sum.lost_events += v[i].lost_events;
		sum.mem_events += v[i].mem_events;
		sum.lost_mem += v[i].lost_mem;
	}
	*ret = sum;
	return 0;
}

int sampler_offcpu_counters(Sampler *s, struct profq_offcpu_counters *ret)
{
	const volatile struct profq_offcpu_counters *v = s->skel->bss->offcpu_counters;
	struct profq_offcpu_counters sum = { 0 };
	unsigned n = MIN(s->n_cpus, (unsigned)PROFQ_MAX_CPUS);

	for (unsigned i = 0; i < n; i++) {
		sum.switches += v[i].switches;
		sum.captured += v[i].captured;
		sum.ends += v[i].ends;
		sum.end_ns += v[i].end_ns;
		sum.lost_ringbuf += v[i].lost_ringbuf;
		sum.wholes += v[i].wholes;
		sum.revisits += v[i].revisits;
		sum.ring_shed += v[i].ring_shed;
		sum.no_storage += v[i].no_storage;
		ring_counters_add(&sum.ring, &v[i].ring);
	}
	*ret = sum;
	return 0;
}

int sampler_fault_counters(Sampler *s, struct profq_fault_counters *ret)
{
	const volatile struct profq_fault_counters *v = s->skel->bss->fault_counters;
	struct profq_fault_counters sum = { 0 };
	unsigned n = MIN(s->n_cpus, (unsigned)PROFQ_MAX_CPUS);

	for (unsigned i = 0; i < n; i++) {
		sum.samples += v[i].samples;
		sum.sent += v[i].sent;
		sum.bytes += v[i].bytes;
		sum.ring_shed += v[i].ring_shed;
		sum.kthread += v[i].kthread;
		ring_counters_add(&sum.ring, &v[i].ring);
	}
	*ret = sum;
	return 0;
}

bool sampler_faults(const Sampler *s)
{
	return s->n_fault_attached > 0;
}

uint32_t sampler_fault_prog_id(const Sampler *s)
{
	struct bpf_program *prog = s->skel->progs.profq_fault;
	struct bpf_prog_info info = { 0 };
	uint32_t len = sizeof(info);

	if (!sampler_faults(s) || bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len) < 0)
		return 0;
	return info.id;
}

bool sampler_offcpu(const Sampler *s)
{
	return s->switch_link != NULL;
}

uint32_t sampler_offcpu_prog_id(const Sampler *s)
{
	struct bpf_program *prog = s->skel->progs.profq_offcpu_switch;
	struct bpf_prog_info info = { 0 };
	uint32_t len = sizeof(info);

	if (!sampler_offcpu(s) || bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len) < 0)
		return 0;
	return info.id;
}

unsigned sampler_cpus(const Sampler *s)
{
	return s->n_attached;
}

size_t sampler_ringbuf_bytes(const Sampler *s)
{
	return s->ringbuf_bytes;
}

uint32_t sampler_prog_id(const Sampler *s)
{
	struct bpf_prog_info info = { 0 };
	uint32_t len = sizeof(info);

	if (bpf_obj_get_info_by_fd(bpf_program__fd(s->skel->progs.profq_sample), &info, &len) < 0)
		return 0;
	return info.id;
}

int sampler_py_set_layout(Sampler *s, uint32_t index, const struct profq_py_layout *l)
{
	return bpf_map__update_elem(s->skel->maps.py_layouts, &index, sizeof(index), l, sizeof(*l),
				    BPF_ANY);
}

int sampler_py_set_proc(Sampler *s, uint32_t tgid, const struct profq_py_proc *v)
{
	return bpf_map__update_elem(s->skel->maps.py_procs, &tgid, sizeof(tgid), v, sizeof(*v),
				    BPF_ANY);
}

int sampler_py_del_proc(Sampler *s, uint32_t tgid)
{
	return bpf_map__delete_elem(s->skel->maps.py_procs, &tgid, sizeof(tgid), 0);
}

int sampler_py_set_thread(Sampler *s, const struct profq_py_thread_key *k,
			  const struct profq_py_thread *v)
{
	return bpf_map__update_elem(s->skel->maps.py_threads, k, sizeof(*k), v, sizeof(*v),
				    BPF_ANY);
}

int sampler_py_del_thread(Sampler *s, const struct profq_py_thread_key *k)
{
	return bpf_map__delete_elem(s->skel->maps.py_threads, k, sizeof(*k), 0);
}

bool sampler_memory(const Sampler *s)
{
	return s->memory;
}

int sampler_py_next_thread(Sampler *s, const struct profq_py_thread_key *prev,
			   struct profq_py_thread_key *ret_key, struct profq_py_thread *ret)
{
	int r;

	r = bpf_map__get_next_key(s->skel->maps.py_threads, prev, ret_key, sizeof(*ret_key));
	if (r < 0)
		return r;
	return bpf_map__lookup_elem(s->skel->maps.py_threads, ret_key, sizeof(*ret_key), ret,
				    sizeof(*ret), 0);
}
