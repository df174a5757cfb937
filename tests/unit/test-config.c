/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <syslog.h>
#include <cmocka.h>

#include "base/macro.h"
#include "service/config.h"
#include "service/upload.h"

/* Sets key = value on a fresh config; returns the result, *ret_error the message. */
static int set1(Config *c, const char *key, const char *value)
{
	_cleanup_free_ char *err = NULL;
	int r;

	r = config_set(c, key, value, &err);
	if (r < 0) {
		assert_non_null(err);
		assert_true(strlen(err) > 0);
	} else {
		assert_null(err);
	}
	return r;
}

static void test_defaults(void **state)
{
	Config c;

	(void)state;
	assert_int_equal(config_init(&c), 0);
	assert_string_equal(c.socket_path, CONFIG_DEFAULT_SOCKET);
	assert_string_equal(c.state_dir, CONFIG_DEFAULT_STATE_DIR);
	assert_string_equal(c.group, CONFIG_DEFAULT_GROUP);
	assert_false(c.group_explicit);
	assert_int_equal(c.frequency, 99);
	assert_true(c.window_ns == 10 * NSEC_PER_SEC);
	assert_true(c.retention_ns == 3600 * NSEC_PER_SEC);
	assert_true(c.max_memory == 64ULL << 20);
	assert_int_equal(config_validate(&c, NULL), 0);
	config_done(&c);
	assert_null(c.socket_path);
	for (const char *const *k =
		     (const char *const[]){ "socket", "state-dir", "frequency", "window",
					    "retention", "max-memory", "group", "log-level", NULL };
	     *k; k++)
		assert_true(config_key_known(*k));
	assert_false(config_key_known("Frequency"));
	assert_false(config_key_known("config"));
	assert_false(config_key_known(""));
}

static void test_values(void **state)
{
	Config c;

	(void)state;
	assert_int_equal(config_init(&c), 0);

	assert_int_equal(set1(&c, "frequency", "0"), -ERANGE);
	assert_int_equal(set1(&c, "frequency", "10001"), -ERANGE);
	assert_int_equal(set1(&c, "frequency", "99Hz"), -EINVAL);
	assert_int_equal(set1(&c, "frequency", "-1"), -EINVAL);
	assert_int_equal(c.frequency, 99); /* untouched by failures */
	assert_true(c.python);
	assert_int_equal(set1(&c, "python", "maybe"), -EINVAL);
	assert_int_equal(set1(&c, "python", "No"), -EINVAL);
	assert_true(c.python);
	assert_int_equal(set1(&c, "python", "no"), 0);
	assert_false(c.python);
	assert_int_equal(set1(&c, "python", "yes"), 0);
	assert_true(c.python);
	assert_int_equal(set1(&c, "frequency", "1"), 0);
	assert_int_equal(c.frequency, 1);
	assert_int_equal(set1(&c, "frequency", "10000"), 0);
	assert_int_equal(c.frequency, 10000);

	assert_int_equal(set1(&c, "window", "0s"), -ERANGE);
	assert_int_equal(set1(&c, "window", "0"), -ERANGE);
	assert_int_equal(set1(&c, "window", "61m"), -ERANGE);
	assert_int_equal(set1(&c, "window", "1500ms"), -ERANGE);
	assert_int_equal(set1(&c, "window", "999ms"), -ERANGE);
	assert_int_equal(set1(&c, "window", "ten"), -EINVAL);
	assert_true(c.window_ns == 10 * NSEC_PER_SEC);
	assert_int_equal(set1(&c, "window", "1s"), 0);
	assert_true(c.window_ns == NSEC_PER_SEC);
	assert_int_equal(set1(&c, "window", "1h"), 0);
	assert_true(c.window_ns == 3600 * NSEC_PER_SEC);
	assert_int_equal(set1(&c, "window", "2000ms"), 0);
	assert_true(c.window_ns == 2 * NSEC_PER_SEC);
	assert_int_equal(set1(&c, "window", "30"), 0);
	assert_true(c.window_ns == 30 * NSEC_PER_SEC);

	assert_int_equal(set1(&c, "retention", "0"), -ERANGE);
	assert_int_equal(set1(&c, "retention", "31d"), -ERANGE);
	assert_int_equal(set1(&c, "retention", "1x"), -EINVAL);
	assert_int_equal(set1(&c, "retention", "30d"), 0);
	assert_true(c.retention_ns == 30 * 86400 * NSEC_PER_SEC);
	assert_int_equal(set1(&c, "retention", "1s"), 0);
	assert_true(c.retention_ns == NSEC_PER_SEC);
	assert_int_equal(set1(&c, "retention", "2h30m"), 0);
	assert_true(c.retention_ns == 9000 * NSEC_PER_SEC);

	assert_int_equal(set1(&c, "max-memory", "7M"), -ERANGE);
	assert_int_equal(set1(&c, "max-memory", "2T"), -ERANGE);
	assert_int_equal(set1(&c, "max-memory", "lots"), -EINVAL);
	assert_true(c.max_memory == 64ULL << 20);
	assert_int_equal(set1(&c, "max-memory", "8M"), 0);
	assert_true(c.max_memory == 8ULL << 20);
	assert_int_equal(set1(&c, "max-memory", "1T"), 0);
	assert_true(c.max_memory == 1ULL << 40);

	assert_int_equal(set1(&c, "socket", "run/profq.sock"), -EINVAL);
	assert_int_equal(set1(&c, "socket", ""), -EINVAL);
	{
		char path[110] = "/";

		memset(path + 1, 'a', 107); /* 108 bytes: no room for the NUL in sun_path */
		path[108] = '\0';
		assert_int_equal(set1(&c, "socket", path), -ERANGE);
		path[107] = '\0'; /* 107 bytes fit */
		assert_int_equal(set1(&c, "socket", path), 0);
		assert_string_equal(c.socket_path, path);
	}
	assert_int_equal(set1(&c, "socket", "/tmp/p.sock"), 0);
	assert_string_equal(c.socket_path, "/tmp/p.sock");

	assert_int_equal(set1(&c, "state-dir", "var/lib"), -EINVAL);
	assert_int_equal(set1(&c, "state-dir", "/srv/profq"), 0);
	assert_string_equal(c.state_dir, "/srv/profq");

	assert_int_equal(set1(&c, "group", ""), -EINVAL);
	assert_false(c.group_explicit);
	assert_int_equal(set1(&c, "group", "wheel"), 0);
	assert_string_equal(c.group, "wheel");
	assert_true(c.group_explicit);

	assert_int_equal(set1(&c, "log-level", "loud"), -EINVAL);
	assert_int_equal(set1(&c, "log-level", "debug"), 0);
	assert_int_equal(c.log_level, LOG_DEBUG);
	assert_int_equal(set1(&c, "log-level", "warning"), 0);
	assert_int_equal(c.log_level, LOG_WARNING);
	assert_int_equal(set1(&c, "log-level", "err"), 0);
	assert_int_equal(c.log_level, LOG_ERR);

	assert_int_equal(set1(&c, "colour", "blue"), -ENOENT);
	config_done(&c);
}

/* Applies text; on failure checks the message contains every one of the NULL-ended hints. */
static int parse(Config *c, const char *text, const char *const *skip, ...)
{
	_cleanup_free_ char *err = NULL;
	const char *hint;
	va_list ap;
	int r;

	r = config_parse_text(c, "test.conf", text, strlen(text), skip, &err);
	va_start(ap, skip);
	while ((hint = va_arg(ap, const char *)))
		if (!err || !strstr(err, hint)) {
			va_end(ap);
			fail_msg("message '%s' lacks '%s'", strempty(err), hint);
		}
	va_end(ap);
	if (r < 0)
		assert_non_null(err);
	return r;
}

static void test_parse_text(void **state)
{
	static const char good[] = "# profqd settings\n"
				   "\n"
				   "   # indented comment\n"
				   "frequency=199\n"
				   "  window   =   5s   # trailing comment\n"
				   "\tretention\t=\t2h\t\n"
				   "max-memory = 128M\r\n"
				   "socket = /run/x#y.sock\n"
				   "state-dir = /var/lib/p q\n"
				   "group = adm\n"
				   "log-level = notice";
	Config c;

	(void)state;
	assert_int_equal(config_init(&c), 0);
	assert_int_equal(parse(&c, good, NULL, NULL), 0);
	assert_int_equal(c.frequency, 199);
	assert_true(c.window_ns == 5 * NSEC_PER_SEC);
	assert_true(c.retention_ns == 7200 * NSEC_PER_SEC);
	assert_true(c.max_memory == 128ULL << 20);
	/* '#' not after whitespace is part of the value. */
	assert_string_equal(c.socket_path, "/run/x#y.sock");
	assert_string_equal(c.state_dir, "/var/lib/p q");
	assert_string_equal(c.group, "adm");
	assert_true(c.group_explicit);
	assert_int_equal(c.log_level, LOG_NOTICE);
	config_done(&c);

	/* An empty file and a comments-only file change nothing. */
	assert_int_equal(config_init(&c), 0);
	assert_int_equal(parse(&c, "", NULL, NULL), 0);
	assert_int_equal(parse(&c, "#frequency = 5\n\n   \n", NULL, NULL), 0);
	assert_int_equal(c.frequency, 99);
	config_done(&c);
}

static void test_parse_errors(void **state)
{
	_cleanup_free_ char *long_line = NULL, *ok_line = NULL;
	size_t n = 4097;
	Config c;

	(void)state;
	assert_int_equal(config_init(&c), 0);
	assert_int_equal(parse(&c, "frequency = 99\n\n# x\nfrobnicate = yes\n", NULL,
			       "test.conf:4: unknown key 'frobnicate'", NULL),
			 -EINVAL);
	assert_int_equal(parse(&c, "\n\nwindow = 61m\n", NULL, "test.conf:3:", "'window'", "61m",
			       NULL),
			 -ERANGE);
	assert_int_equal(parse(&c, "max-memory = 7M\n", NULL, "test.conf:1:", "'max-memory'", NULL),
			 -ERANGE);
	assert_int_equal(parse(&c, "frequency = fast\n", NULL, "test.conf:1:", "'frequency'", NULL),
			 -EINVAL);
	assert_int_equal(parse(&c, "frequency = 10\nfrequency = 20\n", NULL,
			       "test.conf:2:", "'frequency'", NULL),
			 -EEXIST);
	assert_int_equal(parse(&c, "window 10s\n", NULL, "test.conf:1:", "window 10s", NULL),
			 -EINVAL);
	assert_int_equal(parse(&c, "# c\nwindow =\n", NULL, "test.conf:2:", "'window'", NULL),
			 -EINVAL);
	assert_int_equal(parse(&c, "window = # nothing\n", NULL, "test.conf:1:", "'window'", NULL),
			 -EINVAL);
	assert_int_equal(parse(&c, "= 10s\n", NULL, "test.conf:1:", NULL), -EINVAL);
	assert_int_equal(parse(&c, "Window = 10s\n", NULL, "unknown key 'Window'", NULL), -EINVAL);
	/* The key is the whole left side, spaces inside included. */
	assert_int_equal(parse(&c, "max memory = 8M\n", NULL, "unknown key 'max memory'", NULL),
			 -EINVAL);
	assert_int_equal(config_parse_text(&c, "nul.conf", "window = 1s\0x", 13, NULL, NULL),
			 -EINVAL);
	{
		_cleanup_free_ char *err = NULL;

		assert_int_equal(config_parse_text(&c, "nul.conf", "window = 1s\0x", 13, NULL,
						   &err),
				 -EINVAL);
		assert_non_null(strstr(err, "nul.conf"));
		assert_non_null(strstr(err, "NUL"));
	}

	/* A line over 4096 bytes is refused; 4096 is fine. */
	long_line = malloc(n + 32);
	assert_non_null(long_line);
	memset(long_line, ' ', n);
	memcpy(long_line, "# ", 2);
	strcpy(long_line + n, "\nwindow = 2s\n");
	assert_int_equal(parse(&c, long_line, NULL, "test.conf:1:", "4096", NULL), -EINVAL);
	ok_line = strdup(long_line + 1); /* the same with 4096 bytes */
	assert_non_null(ok_line);
	ok_line[0] = '#';
	assert_int_equal(parse(&c, ok_line, NULL, NULL), 0);
	assert_true(c.window_ns == 2 * NSEC_PER_SEC);
	config_done(&c);
}

static void test_skip_keys(void **state)
{
	static const char *const skip[] = { "frequency", "socket", NULL };
	Config c;

	(void)state;
	assert_int_equal(config_init(&c), 0);
	c.frequency = 500; /* as set by --frequency */
	assert_int_equal(parse(&c, "frequency = 7\nsocket = /tmp/s\nwindow = 3s\n", skip, NULL), 0);
	assert_int_equal(c.frequency, 500);
	assert_string_equal(c.socket_path, CONFIG_DEFAULT_SOCKET);
	assert_true(c.window_ns == 3 * NSEC_PER_SEC);
	/* Skipped keys are still checked. */
	assert_int_equal(parse(&c, "frequency = 0\n", skip, "test.conf:1:", "'frequency'", NULL),
			 -ERANGE);
	assert_int_equal(parse(&c, "socket = relative\n", skip, "test.conf:1:", "'socket'", NULL),
			 -EINVAL);
	assert_int_equal(c.frequency, 500);
	config_done(&c);
}

static void test_validate_and_file(void **state)
{
	char path[] = "/tmp/profq-test-config-XXXXXX";
	static const char text[] = "window = 20s\nretention = 10s\n";
	_cleanup_free_ char *err = NULL, *err2 = NULL, *err3 = NULL;
	_cleanup_close_ int fd = -1;
	Config c;

	(void)state;
	assert_int_equal(config_init(&c), 0);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)(sizeof(text) - 1));
	assert_int_equal(config_parse_file(&c, path, NULL, NULL), 0);
	assert_true(c.window_ns == 20 * NSEC_PER_SEC);
	assert_true(c.retention_ns == 10 * NSEC_PER_SEC);
	/* Retention shorter than one window. */
	assert_int_equal(config_validate(&c, &err), -EINVAL);
	assert_non_null(strstr(err, "retention"));
	c.retention_ns = c.window_ns;
	assert_int_equal(config_validate(&c, NULL), 0);

	/* Errors from a file name the file; only a missing file is -ENOENT. */
	assert_int_equal(lseek(fd, 0, SEEK_END), (off_t)(sizeof(text) - 1));
	assert_int_equal(write(fd, "bogus = 1\n", 10), 10);
	assert_int_equal(config_parse_file(&c, path, NULL, &err2), -EINVAL);
	assert_non_null(strstr(err2, path));
	assert_non_null(strstr(err2, ":3: unknown key 'bogus'"));
	unlink(path);
	/* A missing file is -ENOENT for the caller to judge. */
	assert_int_equal(config_parse_file(&c, path, NULL, NULL), -ENOENT);
	/* Any other failure explains itself. */
	assert_int_equal(config_parse_file(&c, "/proc/self", NULL, &err3), -EISDIR);
	assert_non_null(strstr(err3, "/proc/self"));
	config_done(&c);
}

/* push: repeatable, http(s) only, never credentials in the URL; the other push keys. */
static void test_push(void **state)
{
	const char *text = "push = http://a:4040\npush = https://b.example/base/\n"
			   "push-labels = comm,pid\n";
	_cleanup_free_ char *err = NULL;
	Config c;

	(void)state;
	assert_int_equal(config_init(&c), 0);
	assert_int_equal(c.n_push, 0);
	assert_int_equal(c.push_labels, UPLOAD_LABEL_HOST | UPLOAD_LABEL_COMM | UPLOAD_LABEL_PID |
						UPLOAD_LABEL_UNIT | UPLOAD_LABEL_CONTAINER);
	assert_string_equal(c.push_app, "profq");
	assert_int_equal(config_parse_text(&c, "t", text, strlen(text), NULL, &err), 0);
	assert_int_equal(c.n_push, 2);
	assert_string_equal(c.push[1], "https://b.example/base/");
	assert_int_equal(c.push_labels, UPLOAD_LABEL_COMM | UPLOAD_LABEL_PID);
	assert_int_equal(set1(&c, "push", "http://a:4040"), -EEXIST);
	assert_int_equal(set1(&c, "push", "ftp://a"), -EINVAL);
	assert_int_equal(set1(&c, "push", "http://"), -EINVAL);
	assert_int_equal(set1(&c, "push", "http:///x"), -EINVAL);
	assert_int_equal(set1(&c, "push", "http://user:secret@a/"), -EINVAL);
	assert_int_equal(set1(&c, "push", "http://a/?x=1"), -EINVAL);
	assert_int_equal(set1(&c, "push", "http://a/ b"), -EINVAL);
	/* '@' past the authority is a path. */
	assert_int_equal(set1(&c, "push", "http://a/x@y"), 0);
	for (int i = 0; c.n_push < CONFIG_PUSH_MAX; i++) {
		char url[64];

		snprintf(url, sizeof(url), "http://h%d", i);
		assert_int_equal(set1(&c, "push", url), 0);
	}
	assert_int_equal(set1(&c, "push", "http://one-too-many"), -E2BIG);
	assert_int_equal(set1(&c, "push-labels", "host,cgroup"), -EINVAL);
	assert_int_equal(set1(&c, "push-labels", "unit,container"), 0);
	assert_int_equal(c.push_labels, UPLOAD_LABEL_UNIT | UPLOAD_LABEL_CONTAINER);
	assert_int_equal(set1(&c, "push-labels", "host"), 0);
	assert_int_equal(c.push_labels, UPLOAD_LABEL_HOST);
	assert_int_equal(set1(&c, "push-app", "my app"), -EINVAL);
	assert_int_equal(set1(&c, "push-app", "api.cpu"), 0);
	assert_int_equal(set1(&c, "push-token-file", "token"), -EINVAL);
	assert_int_equal(set1(&c, "push-max-spool", "1K"), -ERANGE);
	assert_int_equal(set1(&c, "push-max-spool", "1M"), 0);
	assert_true(c.push_max_spool == 1u << 20);
	assert_int_equal(set1(&c, "push-timeout", "0s"), -ERANGE);
	assert_int_equal(set1(&c, "push-retry-max", "5m"), 0);
	assert_true(c.push_retry_max_ns == 300 * NSEC_PER_SEC);
	config_done(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),   cmocka_unit_test(test_values),
		cmocka_unit_test(test_parse_text), cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_skip_keys),  cmocka_unit_test(test_validate_and_file),
		cmocka_unit_test(test_push),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
