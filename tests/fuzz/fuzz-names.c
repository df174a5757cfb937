/* SPDX-License-Identifier: MIT */
/*
 * Names are arbitrary bytes (symbols, source files, perf map entries, comm and cmdline): every
 * answer that carries them must still be valid UTF-8 JSON, and must parse back as such with
 * json-c's strict UTF-8 validation. The input is split at NUL bytes into names, which become a
 * process's comm and cmdline and the functions, modules and files of a few stacks; every answer
 * of the query engine is then written and checked, for a privileged and an unprivileged viewer.
 */
#include <string.h>

#include "base/json-util.h"
#include "base/macro.h"
#include "base/text.h"
#include "fuzz-check.h"
#include "query/query.h"

#define T0 (1700000000LL * (int64_t)NSEC_PER_SEC)
#define MAX_NAMES 64

static StrId name(Store *s, char **names, size_t n, size_t i)
{
	StrId id;

	FUZZ_CHECK(store_intern_string(s, names[i % n], &id) == 0);
	return id;
}

static void check_answer(const Store *s, Command c, const Viewer *viewer)
{
	QueryContext ctx = { .store = s, .now_ns = T0 + 20 * (int64_t)NSEC_PER_SEC };
	_cleanup_json_ json_object *answer = NULL, *back = NULL;
	json_tokener *tok;
	const char *text;
	Request req;

	ctx.viewer = *viewer;
	request_init(&req, c);
	if (c != COMMAND_PS && c != COMMAND_STATUS)
		req.pid = 42;
	if (query_answer(&ctx, &req, &answer) < 0)
		return; /* out of memory or not answered here (status) */
	text = json_object_to_json_string_ext(answer, JSON_C_TO_STRING_PLAIN);
	FUZZ_CHECK(text);
	FUZZ_CHECK(text_is_clean(text, strlen(text)));
	tok = json_tokener_new();
	FUZZ_CHECK(tok);
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	back = json_tokener_parse_ex(tok, text, (int)strlen(text));
	FUZZ_CHECK(json_tokener_get_error(tok) == json_tokener_success);
	json_tokener_free(tok);
	FUZZ_CHECK(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const Command commands[] = { COMMAND_PS,	   COMMAND_TOP,	 COMMAND_TIME,
					    COMMAND_LINES, COMMAND_TREE, COMMAND_STACKS,
					    COMMAND_MEM };
	const Viewer viewers[] = { { .privileged = true }, { .uid = 1000, .kernel_names = true } };
	_cleanup_(store_freep) Store *s = NULL;
	_cleanup_free_ char *buf = NULL;
	char *names[MAX_NAMES];
	FrameId frames[8];
	size_t n = 0;
	StoreProc p = { .pid = 42, .ppid = 1, .uid = 1000, .start_ns = T0, .start_boot_ns = 1 };
	ProcId proc;
	StackId stack;

	/* Names are NUL-terminated pieces of the input; at least one. */
	buf = malloc(size + 1);
	FUZZ_CHECK(buf);
	memcpy(buf, data, size);
	buf[size] = '\0';
	for (char *q = buf; n < MAX_NAMES && q <= buf + size; q += strlen(q) + 1)
		names[n++] = q;

	FUZZ_CHECK(store_new(&s) == 0);
	p.comm = name(s, names, n, 0);
	p.cmdline = name(s, names, n, 1);
	FUZZ_CHECK(store_proc_add(s, &p, &proc) == 0);
	FUZZ_CHECK(store_window_open(s, T0, T0 + 10 * (int64_t)NSEC_PER_SEC, 10 * NSEC_PER_MSEC) ==
		   0);
	for (size_t i = 0; i < ARRAY_SIZE(frames); i++) {
		StoreFrame f = { .address = 0x1000 + i,
				 .line = (uint32_t)i,
				 .flags = (uint32_t)(i % 4 == 3 ? FRAME_KERNEL : i % 4) };

		/* Some frames stay unresolved: shown as module+0xaddress. */
		f.function = i % 3 == 2 ? 0 : name(s, names, n, 2 + i);
		f.module = name(s, names, n, 3 + i);
		f.file = name(s, names, n, 4 + i);
		FUZZ_CHECK(store_intern_frame(s, &f, &frames[i]) == 0);
	}
	for (size_t len = 1; len <= ARRAY_SIZE(frames); len += 3) {
		FUZZ_CHECK(store_intern_stack(s, frames, len, &stack) == 0);
		FUZZ_CHECK(store_window_add(s, proc, 43, p.comm, stack, len % 2, 5) == 0);
	}
	/* A memory point: mem answers name the process too. */
	FUZZ_CHECK(store_window_add_mem(s, &(MemPoint){ .proc = proc,
							.time_ns = T0 + 1,
							.anon = 4096,
							.peak = 4096,
							.peak_ns = T0 + 1 }) == 0);
	FUZZ_CHECK(store_window_close(s) == 0);

	for (size_t v = 0; v < ARRAY_SIZE(viewers); v++)
		for (size_t c = 0; c < ARRAY_SIZE(commands); c++)
			check_answer(s, commands[c], &viewers[v]);
	return 0;
}
