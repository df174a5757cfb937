/* SPDX-License-Identifier: MIT */
#include <inttypes.h>
#include <systemd/sd-daemon.h>

#include "base/log.h"
#include "base/macro.h"
#include "service/notify.h"

struct Notifier {
	bool enabled;		   /* $NOTIFY_SOCKET is set */
	uint64_t watchdog_ns;	   /* 0: no keep-alives expected */
	uint64_t last_watchdog_ns; /* monotonic */
	uint64_t last_status_ns;   /* monotonic */
	uint64_t last_samples;	   /* at the last STATUS= line */
	bool failed;		   /* a send failed and was logged */
};

int notifier_new(Notifier **ret)
{
	Notifier *n = calloc(1, sizeof(*n));
	uint64_t usec = 0;

	if (!n)
		return -ENOMEM;
	n->enabled = !!getenv("NOTIFY_SOCKET");
	/* > 0 only when $WATCHDOG_USEC is set and $WATCHDOG_PID, if set, is us. */
	if (n->enabled && sd_watchdog_enabled(0, &usec) > 0 && usec > 0)
		n->watchdog_ns = usec * NSEC_PER_USEC;
	*ret = n;
	return 0;
}

Notifier *notifier_free(Notifier *n)
{
	free(n);
	return NULL;
}

static void send_state(Notifier *n, const char *state)
{
	int r = sd_notify(0, state);

	if (r >= 0 || n->failed)
		return;
	n->failed = true;
	log_warning_errno(r, "Failed to notify the service manager: %m");
}

/* "12.3M": one decimal, binary units, like the --max-memory values it is compared with. */
static const char *format_bytes(char *buf, size_t len, uint64_t b)
{
	static const char units[] = "KMGT";
	double v = (double)b;
	int u = -1;

	while (v >= 1024 && u < (int)sizeof(units) - 2) {
		v /= 1024;
		u++;
	}
	if (u < 0)
		snprintf(buf, len, "%" PRIu64 "B", b);
	else
		snprintf(buf, len, "%.1f%c", v, units[u]);
	return buf;
}

static void format_status(char *buf, size_t len, const NotifyStats *st, uint64_t rate)
{
	char mem[16], max[16];

	snprintf(buf, len,
		 "STATUS=Sampling %u CPUs at %u Hz: %" PRIu64 " samples/s, %" PRIu64
		 " lost, %" PRIu64 " processes, memory %s of %s",
		 st->cpus, st->frequency_hz, rate, st->lost, st->processes,
		 format_bytes(mem, sizeof(mem), st->memory_bytes),
		 format_bytes(max, sizeof(max), st->max_memory_bytes));
}

void notifier_ready(Notifier *n, uint64_t now_mono_ns, NotifyStatsFn stats, void *userdata)
{
	NotifyStats st = {};
	char msg[256];

	if (!n->enabled)
		return;
	stats(userdata, &st);
	/* A first keep-alive too: the watchdog has been counting since exec. */
	snprintf(msg, sizeof(msg), "READY=1\n%sSTATUS=Sampling %u CPUs at %u Hz",
		 n->watchdog_ns ? "WATCHDOG=1\n" : "", st.cpus, st.frequency_hz);
	send_state(n, msg);
	n->last_watchdog_ns = n->last_status_ns = now_mono_ns;
	n->last_samples = st.samples;
}

void notifier_tick(Notifier *n, uint64_t now_mono_ns, NotifyStatsFn stats, void *userdata)
{
	bool watchdog, status;
	char msg[256] = "";
	size_t k = 0;

	if (!n->enabled)
		return;
	watchdog = n->watchdog_ns && now_mono_ns - n->last_watchdog_ns >= n->watchdog_ns / 4;
	status = now_mono_ns - n->last_status_ns >= NOTIFY_STATUS_INTERVAL_NS;
	if (!watchdog && !status)
		return;
	if (watchdog) {
		k = (size_t)snprintf(msg, sizeof(msg), "WATCHDOG=1%s", status ? "\n" : "");
		n->last_watchdog_ns = now_mono_ns;
	}
	if (status) {
		uint64_t elapsed = now_mono_ns - n->last_status_ns, delta;
		NotifyStats st = {};

		stats(userdata, &st);
		delta = st.samples >= n->last_samples ? st.samples - n->last_samples : 0;
		format_status(msg + k, sizeof(msg) - k, &st,
			      (uint64_t)((double)delta * NSEC_PER_SEC / (double)elapsed + 0.5));
		n->last_status_ns = now_mono_ns;
		n->last_samples = st.samples;
	}
	send_state(n, msg);
}

void notifier_stopping(Notifier *n)
{
	if (!n->enabled)
		return;
	send_state(n, "STOPPING=1\nSTATUS=Stopping: writing the open window");
}
