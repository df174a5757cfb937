/* SPDX-License-Identifier: MIT */
/*
 * The query socket's answer boundary: an answer that lost a member to a failed allocation
 * (json-util.h) goes out as the out-of-memory error, never as a partial document. json-c's
 * integer constructor is wrapped (-Wl,--wrap) to fail on demand.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/json-util.h"
#include "base/macro.h"
#include "service/server.h"
#include "tmpdir.h"

json_object *__real_json_object_new_int64(int64_t i);
json_object *__wrap_json_object_new_int64(int64_t i);

static unsigned fail_after = UINT32_MAX; /* allocations that succeed before the failures */

json_object *__wrap_json_object_new_int64(int64_t i)
{
	if (fail_after == 0)
		return NULL;
	fail_after--;
	return __real_json_object_new_int64(i);
}

typedef struct Ctx {
	Loop *loop;
} Ctx;

/* Builds {"a":1,"b":2,"c":3} without checking the adds, as answer builders do. */
static int handler(void *userdata, const Peer *peer, const Request *req, json_object **ret)
{
	Ctx *ctx = userdata;
	json_object *o = json_object_new_object();

	(void)peer;
	(void)req;
	if (!o)
		return -ENOMEM;
	json_add_int(o, "a", 1);
	json_add_int(o, "b", 2);
	json_add_int(o, "c", 3);
	*ret = o;
	loop_exit(ctx->loop);
	return 0;
}

/* Sends one request and returns the answer line the server wrote. */
static void ask(Ctx *ctx, const char *path, char *buf, size_t size)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	static const char req[] = "{\"command\":\"status\"}\n";
	struct timeval tv = { .tv_sec = 10 };
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	size_t n = 0;

	assert_true(fd >= 0);
	strncpy(sa.sun_path, path, sizeof(sa.sun_path) - 1);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(write(fd, req, sizeof(req) - 1), (ssize_t)(sizeof(req) - 1));
	assert_int_equal(loop_run(ctx->loop), 0);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
	while (n < size - 1 && (n == 0 || buf[n - 1] != '\n')) {
		ssize_t k = read(fd, buf + n, size - 1 - n);

		assert_true(k > 0);
		n += (size_t)k;
	}
	buf[n] = '\0';
}

static void test_partial_answer_refused(void **state)
{
	_cleanup_tmpdir_ char *dir = tmpdir_new_named("test-server");
	_cleanup_(loop_freep) Loop *loop = NULL;
	_cleanup_(server_freep) Server *s = NULL;
	_cleanup_free_ char *path = NULL;
	ServerOptions opts = {
		.max_clients = 4,
		.max_per_uid = 4,
		.idle_timeout_ns = 60 * NSEC_PER_SEC,
		.request_timeout_ns = 60 * NSEC_PER_SEC,
	};
	Ctx ctx;
	char buf[4096];

	(void)state;
	assert_non_null(dir);
	assert_true(asprintf(&path, "%s/socket", dir) > 0);
	opts.path = path;
	assert_int_equal(loop_new(&loop), 0);
	ctx.loop = loop;
	assert_int_equal(server_new(loop, &opts, handler, &ctx, &s), 0);

	ask(&ctx, path, buf, sizeof(buf));
	assert_string_equal(buf, "{\"a\":1,\"b\":2,\"c\":3}\n");

	/* From "b" on, allocations fail: the answer would be {"a":1}. */
	fail_after = 1;
	ask(&ctx, path, buf, sizeof(buf));
	fail_after = UINT32_MAX;
	assert_string_equal(buf, JSON_OUT_OF_MEMORY "\n");

	/* The next answer is whole again. */
	ask(&ctx, path, buf, sizeof(buf));
	assert_string_equal(buf, "{\"a\":1,\"b\":2,\"c\":3}\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_partial_answer_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
