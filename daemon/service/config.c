/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <stdarg.h>

#include "base/log.h"
#include "base/macro.h"
#include "base/parse.h"
#include "base/procfs.h"
#include "service/config.h"
#include "service/upload.h"

#define CONFIG_MAX_FILE (1u << 20)
#define CONFIG_MAX_LINE 4096

static int set_error(char **ret_error, int r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int set_error(char **ret_error, int r, const char *fmt, ...)
{
	va_list ap;

	if (ret_error) {
		va_start(ap, fmt);
		if (vasprintf(ret_error, fmt, ap) < 0)
			*ret_error = NULL;
		va_end(ap);
	}
	return r;
}

static int set_string(char **field, const char *value)
{
	char *s = strdup(value);

	if (!s)
		return -ENOMEM;
	free(*field);
	*field = s;
	return 0;
}

static int set_socket(Config *c, const char *v, char **err)
{
	if (v[0] != '/')
		return set_error(err, -EINVAL, "must be an absolute path, got '%s'", v);
	if (strlen(v) >= 108)
		return set_error(err, -ERANGE, "path is longer than 107 bytes");
	return set_string(&c->socket_path, v);
}

static int set_state_dir(Config *c, const char *v, char **err)
{
	if (v[0] != '/')
		return set_error(err, -EINVAL, "must be an absolute path, got '%s'", v);
	if (strlen(v) >= 4000)
		return set_error(err, -ERANGE, "path is too long");
	return set_string(&c->state_dir, v);
}

static int set_frequency(Config *c, const char *v, char **err)
{
	int r = parse_uint32(v, 1, 10000, &c->frequency);

	if (r < 0)
		return set_error(err, r, "must be a number of Hz in 1..10000, got '%s'", v);
	return 0;
}

static int set_window(Config *c, const char *v, char **err)
{
	uint64_t ns;
	int r = parse_duration_ns(v, &ns);

	if (r < 0)
		return set_error(err, r, "must be a duration such as 10s or 1m, got '%s'", v);
	if (ns < NSEC_PER_SEC || ns > 3600 * NSEC_PER_SEC || ns % NSEC_PER_SEC != 0)
		return set_error(err, -ERANGE, "must be whole seconds in 1s..1h, got '%s'", v);
	c->window_ns = ns;
	return 0;
}

static int set_retention(Config *c, const char *v, char **err)
{
	uint64_t ns;
	int r = parse_duration_ns(v, &ns);

	if (r < 0)
		return set_error(err, r, "must be a duration such as 1h or 30m, got '%s'", v);
	if (ns < NSEC_PER_SEC || ns > 30 * 86400 * NSEC_PER_SEC)
		return set_error(err, -ERANGE, "must be in 1s..30d, got '%s'", v);
	c->retention_ns = ns;
	return 0;
}

static int set_max_memory(Config *c, const char *v, char **err)
{
	uint64_t b;
	int r = parse_size(v, &b);

	if (r < 0)
		return set_error(err, r, "must be a size such as 64M or 1G, got '%s'", v);
	if (b < (8u << 20) || b > (1ULL << 40))
		return set_error(err, -ERANGE, "must be in 8M..1T, got '%s'", v);
	c->max_memory = b;
	return 0;
}

static int set_max_disk(Config *c, const char *v, char **err)
{
	uint64_t b;
	int r = parse_size(v, &b);

	if (r < 0)
		return set_error(err, r, "must be a size such as 512M or 4G, got '%s'", v);
	if (b < (16u << 20) || b > (1ULL << 50))
		return set_error(err, -ERANGE, "must be in 16M..1P, got '%s'", v);
	c->max_disk = b;
	return 0;
}

static int set_stack_copy(Config *c, const char *v, char **err)
{
	uint64_t b;
	int r = parse_size(v, &b);

	if (r < 0)
		return set_error(err, r, "must be a size such as 16K, or 0, got '%s'", v);
	if (b != 0 && (b < 1024 || b > 32768 || b % 8 != 0))
		return set_error(err, -ERANGE,
				 "must be 0 (frame pointers) or 1K..32K in 8-byte "
				 "steps, got '%s'",
				 v);
	c->stack_copy = (uint32_t)b;
	return 0;
}

static int set_python(Config *c, const char *v, char **err)
{
	if (streq(v, "yes"))
		c->python = true;
	else if (streq(v, "no"))
		c->python = false;
	else
		return set_error(err, -EINVAL, "must be yes or no, got '%s'", v);
	return 0;
}

static int set_memory(Config *c, const char *v, char **err)
{
	if (streq(v, "yes"))
		c->memory = true;
	else if (streq(v, "no"))
		c->memory = false;
	else
		return set_error(err, -EINVAL, "must be yes or no, got '%s'", v);
	return 0;
}

static int set_off_cpu(Config *c, const char *v, char **err)
{
	if (streq(v, "yes"))
		c->off_cpu = true;
	else if (streq(v, "no"))
		c->off_cpu = false;
	else
		return set_error(err, -EINVAL, "must be yes or no, got '%s'", v);
	return 0;
}

static int set_faults(Config *c, const char *v, char **err)
{
	if (streq(v, "yes"))
		c->faults = true;
	else if (streq(v, "no"))
		c->faults = false;
	else
		return set_error(err, -EINVAL, "must be yes or no, got '%s'", v);
	return 0;
}

static int set_debug_dirs(Config *c, const char *v, char **err)
{
	/* Absolute directories only: libdwfl reads relative ones against each binary's own. */
	for (const char *p = v; *p;) {
		const char *end = strchr(p, ':') ?: p + strlen(p);

		if (*p != '/')
			return set_error(err, -EINVAL,
					 "must be absolute directories separated by ':', "
					 "got '%s'",
					 v);
		p = *end ? end + 1 : end;
	}
	if (!*v || strlen(v) > 4000)
		return set_error(err, -EINVAL, "must be absolute directories separated by ':'");
	return set_string(&c->debug_dirs, v);
}

static int set_group(Config *c, const char *v, char **err)
{
	if (!*v || strlen(v) > 64)
		return set_error(err, -EINVAL, "must be a group name, got '%s'", v);
	c->group_explicit = true;
	return set_string(&c->group, v);
}

static int set_log_level(Config *c, const char *v, char **err)
{
	int l = log_level_from_string(v);

	if (l < 0)
		return set_error(err, -EINVAL,
				 "must be one of err, warning, notice, info, debug, got '%s'", v);
	c->log_level = l;
	return 0;
}

/* A URL profqd may POST to: http(s), no credentials (they belong in push-token-file, not on
 * the command line), no query or fragment (profqd adds its own), printable ASCII. */
static int set_push(Config *c, const char *v, char **err)
{
	const char *host = startswith(v, "http://")    ? v + strlen("http://")
			   : startswith(v, "https://") ? v + strlen("https://")
						       : NULL;
	size_t authority;
	char *s;

	if (!host || !*host || *host == '/')
		return set_error(err, -EINVAL, "must be an http:// or https:// URL, got '%s'", v);
	if (strlen(v) > CONFIG_URL_MAX)
		return set_error(err, -ERANGE, "URL is longer than %u bytes", CONFIG_URL_MAX);
	for (const char *p = v; *p; p++)
		if (*p <= ' ' || *p >= 0x7f || *p == '?' || *p == '#')
			return set_error(err, -EINVAL,
					 "must be a URL without spaces, query or fragment, "
					 "got '%s'",
					 v);
	authority = strcspn(host, "/");
	if (memchr(host, '@', authority))
		return set_error(err, -EINVAL,
				 "must not hold credentials: name a file with push-token-file");
	if (c->n_push >= CONFIG_PUSH_MAX)
		return set_error(err, -E2BIG, "at most %u push targets", CONFIG_PUSH_MAX);
	for (size_t i = 0; i < c->n_push; i++)
		if (streq(c->push[i], v))
			return set_error(err, -EEXIST, "push target '%s' is given twice", v);
	s = strdup(v);
	if (!s)
		return -ENOMEM;
	c->push[c->n_push++] = s;
	return 0;
}

static int set_push_token_file(Config *c, const char *v, char **err)
{
	if (v[0] != '/' || strlen(v) >= 4000)
		return set_error(err, -EINVAL, "must be an absolute path, got '%s'", v);
	return set_string(&c->push_token_file, v);
}

static int set_push_app(Config *c, const char *v, char **err)
{
	size_t n = strlen(v);

	if (n == 0 || n > 100 ||
	    strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		      "0123456789._-") != n)
		return set_error(err, -EINVAL, "must be 1..100 of [A-Za-z0-9._-], got '%s'", v);
	return set_string(&c->push_app, v);
}

static int set_push_labels(Config *c, const char *v, char **err)
{
	static const struct {
		const char *name;
		unsigned bit;
	} names[] = {
		{ "host", UPLOAD_LABEL_HOST },
		{ "comm", UPLOAD_LABEL_COMM },
		{ "pid", UPLOAD_LABEL_PID },
		{ "unit", UPLOAD_LABEL_UNIT },
		{ "container", UPLOAD_LABEL_CONTAINER },
	};
	unsigned labels = 0;

	for (const char *p = v; *p;) {
		size_t n = strcspn(p, ","), i;

		for (i = 0; i < ARRAY_SIZE(names); i++)
			if (strlen(names[i].name) == n && strncmp(names[i].name, p, n) == 0)
				break;
		if (i == ARRAY_SIZE(names))
			return set_error(err, -EINVAL,
					 "must be labels among host, comm, pid separated by "
					 "',', got '%s'",
					 v);
		labels |= names[i].bit;
		p += n;
		if (*p)
			p++;
	}
	c->push_labels = labels;
	return 0;
}

static int set_push_comm(Config *c, const char *v, char **err)
{
	if (strlen(v) > 256)
		return set_error(err, -ERANGE, "glob is longer than 256 bytes");
	return set_string(&c->push_comm, v);
}

static int set_push_unit(Config *c, const char *v, char **err)
{
	if (strlen(v) > 256)
		return set_error(err, -ERANGE, "glob is longer than 256 bytes");
	return set_string(&c->push_unit, v);
}

static int set_push_max_spool(Config *c, const char *v, char **err)
{
	uint64_t b;
	int r = parse_size(v, &b);

	if (r < 0)
		return set_error(err, r, "must be a size such as 64M, got '%s'", v);
	if (b < (64u << 10) || b > (1ULL << 40))
		return set_error(err, -ERANGE, "must be in 64K..1T, got '%s'", v);
	c->push_max_spool = b;
	return 0;
}

static int set_duration_in(uint64_t *field, const char *v, uint64_t min, uint64_t max, char **err)
{
	uint64_t ns;
	int r = parse_duration_ns(v, &ns);

	if (r < 0)
		return set_error(err, r, "must be a duration such as 10s, got '%s'", v);
	if (ns < min || ns > max)
		return set_error(err, -ERANGE, "must be in %llus..%llus, got '%s'",
				 (unsigned long long)(min / NSEC_PER_SEC),
				 (unsigned long long)(max / NSEC_PER_SEC), v);
	*field = ns;
	return 0;
}

static int set_push_timeout(Config *c, const char *v, char **err)
{
	return set_duration_in(&c->push_timeout_ns, v, NSEC_PER_SEC, 600 * NSEC_PER_SEC, err);
}

static int set_push_retry_max(Config *c, const char *v, char **err)
{
	return set_duration_in(&c->push_retry_max_ns, v, NSEC_PER_SEC, 3600 * NSEC_PER_SEC, err);
}

static const struct {
	const char *key;
	int (*set)(Config *c, const char *value, char **ret_error);
	bool repeatable; /* each line (or option) adds a value */
} keys[] = {
	/* One key per line. */
	/* clang-format off */
	{ "socket", set_socket },
	{ "state-dir", set_state_dir },
	{ "frequency", set_frequency },
	{ "window", set_window },
	{ "retention", set_retention },
	{ "max-memory", set_max_memory },
	{ "max-disk", set_max_disk },
	{ "stack-copy", set_stack_copy },
	{ "python", set_python },
	{ "memory", set_memory },
	{ "off-cpu", set_off_cpu },
	{ "faults", set_faults },
	{ "debug-dir", set_debug_dirs },
	{ "group", set_group },
	{ "log-level", set_log_level },
	{ "push", set_push, true },
	{ "push-token-file", set_push_token_file },
	{ "push-app", set_push_app },
	{ "push-labels", set_push_labels },
	{ "push-comm", set_push_comm },
	{ "push-unit", set_push_unit },
	{ "push-max-spool", set_push_max_spool },
	{ "push-timeout", set_push_timeout },
	{ "push-retry-max", set_push_retry_max },
	/* clang-format on */
};

int config_init(Config *c)
{
	*c = (Config){
		.frequency = 99,
		.window_ns = 10 * NSEC_PER_SEC,
		.retention_ns = 3600 * NSEC_PER_SEC,
		.max_memory = 64u << 20,
		.max_disk = 1ULL << 30,
		.stack_copy = 16384,
		.python = true,
		.memory = true,
		.off_cpu = false, /* its cost is per context switch: asked for */
		.faults = true,	  /* its cost is per sampled fault: docs/PERFORMANCE.md */
		.log_level = LOG_INFO,
		.push_labels = UPLOAD_LABEL_HOST | UPLOAD_LABEL_COMM | UPLOAD_LABEL_PID |
			       UPLOAD_LABEL_UNIT | UPLOAD_LABEL_CONTAINER,
		.push_max_spool = 64u << 20,
		.push_timeout_ns = 10 * NSEC_PER_SEC,
		.push_retry_max_ns = 60 * NSEC_PER_SEC,
	};
	c->socket_path = strdup(CONFIG_DEFAULT_SOCKET);
	c->state_dir = strdup(CONFIG_DEFAULT_STATE_DIR);
	c->group = strdup(CONFIG_DEFAULT_GROUP);
	c->push_app = strdup("profq");
	if (!c->socket_path || !c->state_dir || !c->group || !c->push_app) {
		config_done(c);
		return -ENOMEM;
	}
	return 0;
}

void config_done(Config *c)
{
	free(c->socket_path);
	free(c->state_dir);
	free(c->group);
	free(c->debug_dirs);
	for (size_t i = 0; i < c->n_push; i++)
		free(c->push[i]);
	free(c->push_token_file);
	free(c->push_app);
	free(c->push_comm);
	free(c->push_unit);
	*c = (Config){ 0 };
}

bool config_key_known(const char *key)
{
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		if (streq(keys[i].key, key))
			return true;
	return false;
}

int config_set(Config *c, const char *key, const char *value, char **ret_error)
{
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		if (streq(keys[i].key, key))
			return keys[i].set(c, value, ret_error);
	return set_error(ret_error, -ENOENT, "unknown key");
}

static bool in_list(const char *const *list, const char *s)
{
	for (; list && *list; list++)
		if (streq(*list, s))
			return true;
	return false;
}

static char *strip(char *s, char *end)
{
	while (s < end && isspace((unsigned char)*s))
		s++;
	while (end > s && isspace((unsigned char)end[-1]))
		end--;
	*end = '\0';
	return s;
}

int config_parse_text(Config *c, const char *name, const char *text, size_t len,
		      const char *const *skip_keys, char **ret_error)
{
	bool seen[ARRAY_SIZE(keys)] = { false };
	const char *p = text, *end = text + len;
	char line[CONFIG_MAX_LINE + 1];
	unsigned lineno = 0;
	Config scratch;
	int r;

	if (memchr(text, '\0', len))
		return set_error(ret_error, -EINVAL, "%s: contains a NUL byte", name);
	r = config_init(&scratch);
	if (r < 0)
		return r;
	for (; p < end; lineno++) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		_cleanup_free_ char *err = NULL;
		char *key, *value, *eq, *hash;
		size_t n;
		size_t k;

		if (!eol)
			eol = end;
		n = (size_t)(eol - p);
		if (n > CONFIG_MAX_LINE) {
			r = set_error(ret_error, -EINVAL, "%s:%u: line is longer than %u bytes",
				      name, lineno + 1, CONFIG_MAX_LINE);
			goto out;
		}
		memcpy(line, p, n);
		line[n] = '\0';
		p = eol + 1;

		/* A comment runs from a '#' at the start or after whitespace to the end. */
		for (hash = line; (hash = strchr(hash, '#')); hash++)
			if (hash == line || isspace((unsigned char)hash[-1])) {
				*hash = '\0';
				break;
			}
		key = strip(line, line + strlen(line));
		if (!*key)
			continue;
		eq = strchr(key, '=');
		if (!eq) {
			r = set_error(ret_error, -EINVAL, "%s:%u: expected 'key = value', got '%s'",
				      name, lineno + 1, key);
			goto out;
		}
		value = strip(eq + 1, eq + 1 + strlen(eq + 1));
		key = strip(key, eq);
		for (k = 0; k < ARRAY_SIZE(keys); k++)
			if (streq(keys[k].key, key))
				break;
		if (k == ARRAY_SIZE(keys)) {
			r = set_error(ret_error, -EINVAL, "%s:%u: unknown key '%s'", name,
				      lineno + 1, key);
			goto out;
		}
		if (seen[k] && !keys[k].repeatable) {
			r = set_error(ret_error, -EEXIST, "%s:%u: key '%s' is set twice", name,
				      lineno + 1, key);
			goto out;
		}
		seen[k] = true;
		if (!*value) {
			r = set_error(ret_error, -EINVAL, "%s:%u: key '%s' has no value", name,
				      lineno + 1, key);
			goto out;
		}
		/* Keys the command line sets are still checked, on a scratch config. */
		r = keys[k].set(in_list(skip_keys, key) ? &scratch : c, value, &err);
		if (r < 0) {
			if (r == -ENOMEM)
				goto out;
			r = set_error(ret_error, r, "%s:%u: key '%s': %s", name, lineno + 1, key,
				      err ? err : "bad value");
			goto out;
		}
	}
	r = 0;
out:
	config_done(&scratch);
	return r;
}

int config_parse_file(Config *c, const char *path, const char *const *skip_keys, char **ret_error)
{
	_cleanup_free_ char *text = NULL;
	size_t len;
	int r;

	r = procfs_read_file(path, CONFIG_MAX_FILE, &text, &len);
	if (r == -ENOENT)
		return r;
	if (r < 0)
		return set_error(ret_error, r, "%s: cannot be read: %s", path, strerror(-r));
	return config_parse_text(c, path, text, len, skip_keys, ret_error);
}

int config_validate(const Config *c, char **ret_error)
{
	if (c->retention_ns < c->window_ns)
		return set_error(ret_error, -EINVAL,
				 "retention (%llus) must be at least one window (%llus)",
				 (unsigned long long)(c->retention_ns / NSEC_PER_SEC),
				 (unsigned long long)(c->window_ns / NSEC_PER_SEC));
	return 0;
}
