/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer: a segment loaded into a fresh Store, then asked what `profq --state-dir` asks
 * (every answer: ps, top, time, tree, lines, stacks, for every process and with ranges), as
 * the offline CLI does with a state directory it did not write (profqd(8), PERSISTENCE).
 *
 *   fuzz-segment-query -max_total_time=60 CORPUS_DIR tests/fuzz/corpus/segment
 */
#include "fuzz-common.h"
#include "query/query.h"

/* The latest start_ns a request may carry (request_parse: up to the year 2200). */
#define MAX_START_NS (7258118400LL * (int64_t)NSEC_PER_SEC)

static FuzzLoad load;

static void ask(const Store *s, const Request *req, int64_t now)
{
	QueryContext ctx = { .store = s, .now_ns = now, .viewer = { .uid = 1000 } };
	json_object *answer = NULL;

	/* Also as root, who sees everything (kernel addresses too). */
	for (int privileged = 0; privileged < 2; privileged++) {
		ctx.viewer.privileged = privileged;
		FUZZ_CHECK(query_answer(&ctx, req, &answer) == 0);
		FUZZ_CHECK(answer != NULL);
		FUZZ_CHECK(json_object_to_json_string(answer) != NULL);
		json_object_put(answer);
		answer = NULL;
	}
}

static void one(const uint8_t *buf, size_t len)
{
	Store *s;
	Request req;
	int64_t now = 1700000000LL * (int64_t)NSEC_PER_SEC;
	size_t asked = 0;

	fuzz_load(&load, buf, len, false);
	s = load.store;
	/* Now is a real time (1970..2200), near the data when the data allows. */
	if (store_window_count(s) > 0) {
		int64_t end = store_window(s, store_window_count(s) - 1)->end_ns;

		if (end >= 0 && end <= MAX_START_NS)
			now = end;
	}

	request_init(&req, COMMAND_PS);
	ask(s, &req, now);
	req.has_since = true;
	req.since_ns = 10 * NSEC_PER_SEC;
	ask(s, &req, now);
	/* By %CPU of each process's life, which hostile start and exit times may make odd. */
	req.sort = SORT_CPU;
	ask(s, &req, now);
	req.sort = SORT_START;
	req.has_uid = true;
	ask(s, &req, now);
	/* Memory points: processes by peak, by growth in a range. */
	request_init(&req, COMMAND_MEM);
	ask(s, &req, now);
	req.sort = SORT_GROWTH;
	req.has_since = true;
	req.since_ns = 10 * NSEC_PER_SEC;
	ask(s, &req, now);
	request_init(&req, COMMAND_TOP);
	ask(s, &req, now);
	req.sort = SORT_TOTAL;
	req.has_until = true;
	req.until_ns = 1;
	ask(s, &req, now);
	/* By process, by module, and by function with the process names of all rows. */
	req.by = GROUP_PROCESS;
	ask(s, &req, now);
	req.by = GROUP_MODULE;
	ask(s, &req, now);
	req.by = GROUP_NONE;
	req.limit = REQUEST_LIMIT_MAX;
	ask(s, &req, now);

	/* The first processes, each by pid: newest incarnation, by start, with children. */
	for (ProcId id = 1; id < store_proc_id_limit(s) && asked < 8; id++) {
		const StoreProc *p = store_proc(s, id);
		Command commands[] = { COMMAND_TOP,   COMMAND_TIME,   COMMAND_PS, COMMAND_TREE,
				       COMMAND_LINES, COMMAND_STACKS, COMMAND_MEM };

		/* What request_parse() lets through. */
		if (!p || p->pid > 4194304)
			continue;
		asked++;
		for (size_t c = 0; c < ARRAY_SIZE(commands); c++) {
			request_init(&req, commands[c]);
			req.pid = p->pid;
			ask(s, &req, now);
			req.children = true;
			req.threads = commands[c] == COMMAND_PS;
			/* tree and stacks: by process name, from the function below. */
			if (commands[c] == COMMAND_TREE || commands[c] == COMMAND_STACKS)
				req.by = GROUP_COMM;
			req.no_inline = true;
			req.min_pct = 5;
			/* lines --function, tree and stacks --from: a function the store holds, if
			 * any. */
			if (store_string_id_limit(s) > 1 && store_string(s, 1))
				snprintf(req.function, sizeof(req.function), "%s",
					 store_string(s, 1));
			if (p->start_ns > 0 && p->start_ns <= MAX_START_NS)
				req.start_ns = p->start_ns;
			ask(s, &req, now);
		}
	}
	fuzz_release(&load);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_both_ways(data, size, one);
	return 0;
}
