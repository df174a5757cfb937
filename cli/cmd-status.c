/* SPDX-License-Identifier: MIT */
#include <time.h>

#include "base/json-util.h"
#include "command.h"

static void print_size(const char *label, int64_t bytes)
{
	printf("%-18s %.1f MiB\n", label, (double)bytes / (1024.0 * 1024.0));
}

static void print_clock(const char *label, double t)
{
	char buf[64];

	printf("%-18s %s\n", label, cli_format_time(t, buf, sizeof(buf)));
}

/* One line per push target: what it accepted, what waits, what was lost, and why it fails. */
static void render_push(json_object *a)
{
	json_object *push, *targets;
	char buf[64];

	if (!json_object_object_get_ex(a, "push", &push) ||
	    !json_object_object_get_ex(push, "targets", &targets) ||
	    !json_object_is_type(targets, json_type_array))
		return;
	for (size_t i = 0; i < json_object_array_length(targets); i++) {
		json_object *t = json_object_array_get_idx(targets, i);
		const char *err = json_get_string(t, "last_error");

		printf("%-18s %s: %lld sent, %lld queued (%.1f MiB), %lld dropped, %lld refused\n",
		       "Push:", strempty(json_get_string(t, "url")),
		       (long long)json_get_int(t, "sent"), (long long)json_get_int(t, "queued"),
		       (double)json_get_int(t, "queued_bytes") / (1024.0 * 1024.0),
		       (long long)json_get_int(t, "dropped"),
		       (long long)json_get_int(t, "rejected"));
		if (json_object_object_get(t, "last_success_s"))
			printf("%-18s last success %s\n", "",
			       cli_format_time(json_get_double(t, "last_success_s"), buf,
					       sizeof(buf)));
		if (err)
			printf("%-18s last error %s: %s\n", "",
			       cli_format_time(json_get_double(t, "last_error_s"), buf,
					       sizeof(buf)),
			       err);
	}
}

static void render_offline(json_object *a)
{
	printf("%-18s offline, from a state directory\n", "Source:");
	printf("%-18s %lld (idle %lld, lost %lld)\n",
	       "Samples:", (long long)json_get_int(a, "samples"),
	       (long long)json_get_int(a, "idle"), (long long)json_get_int(a, "lost"));
	printf("%-18s %lld\n", "Windows:", (long long)json_get_int(a, "windows"));
	if (json_get_int(a, "windows") > 0) {
		print_clock("First:", json_get_double(a, "first_window_start"));
		print_clock("Last:", json_get_double(a, "last_window_end"));
	}
	printf("%-18s %lld\n", "Processes:", (long long)json_get_int(a, "processes"));
	printf("%-18s %lld (%.1f MiB, %lld corrupt)\n",
	       "Segments:", (long long)json_get_int(a, "segments"),
	       (double)json_get_int(a, "disk_bytes") / (1024.0 * 1024.0),
	       (long long)json_get_int(a, "corrupt_segments"));
}

static void render_status(json_object *a, const Request *req)
{
	json_object *sym, *pers, *mem, *rss;

	(void)req;
	if (json_object_get_boolean(json_object_object_get(a, "offline"))) {
		render_offline(a);
		return;
	}

	printf("%-18s %.0f s\n", "Uptime:", json_get_double(a, "uptime_s"));
	printf("%-18s %lld Hz on %lld CPUs\n",
	       "Sampling:", (long long)json_get_int(a, "frequency_hz"),
	       (long long)json_get_int(a, "cpus"));
	printf("%-18s %lld (stored %lld, idle %lld)\n",
	       "Samples:", (long long)json_get_int(a, "samples"),
	       (long long)json_get_int(a, "stored"), (long long)json_get_int(a, "idle"));
	printf("%-18s %lld (ring buffer full %lld)\n", "Lost:", (long long)json_get_int(a, "lost"),
	       (long long)json_get_int(a, "lost_ringbuf"));
	printf("%-18s %lld stack errors, %lld truncated stacks\n",
	       "Stacks:", (long long)json_get_int(a, "stack_errors"),
	       (long long)json_get_int(a, "truncated_stacks"));
	printf("%-18s %lld of %lld s (retention %lld s, %lld evicted)\n",
	       "Windows:", (long long)json_get_int(a, "windows"),
	       (long long)json_get_int(a, "window_s"), (long long)json_get_int(a, "retention_s"),
	       (long long)json_get_int(a, "evicted_windows"));
	print_size("Memory:", json_get_int(a, "memory_bytes"));
	print_size("Memory budget:", json_get_int(a, "max_memory_bytes"));
	if (json_object_object_get_ex(a, "memory", &mem) && json_get_int(mem, "rss_bytes") > 0)
		printf("%-18s %.1f MiB resident; the budget leaves %.1f MiB to profiles and "
		       "symbols\n",
		       "", (double)json_get_int(mem, "rss_bytes") / (1024.0 * 1024.0),
		       (double)json_get_int(mem, "data_budget_bytes") / (1024.0 * 1024.0));
	printf("%-18s %lld running, %lld exited kept (%lld dropped)\n",
	       "Processes:", (long long)json_get_int(a, "processes"),
	       (long long)json_get_int(a, "exited_processes"),
	       (long long)json_get_int(a, "exited_dropped"));
	if (json_object_object_get_ex(a, "persistence", &pers)) {
		const char *err = json_get_string(pers, "error");

		if (json_object_get_boolean(json_object_object_get(pers, "enabled")))
			printf("%-18s %s: %lld segments, %.1f MiB, %lld windows written%s%s\n",
			       "State:", strempty(json_get_string(pers, "state_dir")),
			       (long long)json_get_int(pers, "segments"),
			       (double)json_get_int(pers, "disk_bytes") / (1024.0 * 1024.0),
			       (long long)json_get_int(pers, "windows_written"),
			       err ? ", last write failed: " : "", strempty(err));
		else
			printf("%-18s in memory only (%s)\n", "State:", err ? err : "disabled");
	}
	if (json_object_object_get_ex(a, "rss_tracking", &rss)) {
		if (json_object_get_boolean(json_object_object_get(rss, "enabled")))
			printf("%-18s %lld points kept of %lld records (%lld lost, %lld of "
			       "processes gone unnamed)\n",
			       "Memory tracking:", (long long)json_get_int(rss, "points"),
			       (long long)json_get_int(rss, "records"),
			       (long long)json_get_int(rss, "lost"),
			       (long long)json_get_int(rss, "unknown"));
		else
			printf("%-18s off\n", "Memory tracking:");
	}
	if (json_object_object_get_ex(a, "off_cpu", &sym) && sym) {
		if (!json_object_get_boolean(json_object_object_get(sym, "enabled")))
			printf("%-18s off\n", "Off-CPU:");
		else
			printf("%-18s %lld switches, %lld stacks captured, %lld waits recorded "
			       "(%.1f s), %lld dropped\n",
			       "Off-CPU:", (long long)json_get_int(sym, "switches"),
			       (long long)json_get_int(sym, "captured"),
			       (long long)json_get_int(sym, "recorded"),
			       json_get_double(sym, "recorded_s"),
			       (long long)json_get_int(sym, "dropped"));
	}
	if (json_object_object_get_ex(a, "faults", &sym) && sym) {
		char bytes[32];

		if (!json_object_get_boolean(json_object_object_get(sym, "enabled")))
			printf("%-18s off\n", "Page faults:");
		else
			printf("%-18s 1 in %lld sampled, %lld stored (%s faulted in), %lld "
			       "dropped\n",
			       "Page faults:", (long long)json_get_int(sym, "period"),
			       (long long)json_get_int(sym, "stored"),
			       cli_bytes((uint64_t)MAX(json_get_int(sym, "sent_bytes"), 0), bytes,
					 sizeof(bytes)),
			       (long long)json_get_int(sym, "dropped"));
	}
	render_push(a);
	if (!json_object_object_get_ex(a, "symbolizer", &sym))
		return;
	printf("%-18s %lld binaries (%lld unreadable), %lld kernel symbols, "
	       "%lld lookups (%lld cached), %lld unresolved\n",
	       "Symbols:", (long long)json_get_int(sym, "binaries"),
	       (long long)json_get_int(sym, "binary_errors"),
	       (long long)json_get_int(sym, "kernel_symbols"),
	       (long long)json_get_int(sym, "lookups"), (long long)json_get_int(sym, "cache_hits"),
	       (long long)json_get_int(sym, "unresolved"));
	if (json_get_int(sym, "perf_maps_read") > 0)
		printf("%-18s %lld read, %lld malformed lines skipped\n",
		       "JIT perf maps:", (long long)json_get_int(sym, "perf_maps_read"),
		       (long long)json_get_int(sym, "perf_map_bad_lines"));
}

static const CliQuery status = {
	.name = "status",
	.command = COMMAND_STATUS,
	.help = "Usage: profq status [--json]\n\nShow the daemon's health.\n",
	.render = render_status,
};

int cmd_status(CliContext *ctx, int argc, char **argv)
{
	return cli_query_command(&status, ctx, argc, argv);
}
