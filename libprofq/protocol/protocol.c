/* SPDX-License-Identifier: MIT */
#include <stdarg.h>

#include "base/json-util.h"
#include "protocol/protocol.h"

static const char *const command_names[_COMMAND_MAX] = {
	[COMMAND_STATUS] = "status", [COMMAND_PS] = "ps",	[COMMAND_TOP] = "top",
	[COMMAND_TIME] = "time",     [COMMAND_LINES] = "lines", [COMMAND_TREE] = "tree",
	[COMMAND_STACKS] = "stacks", [COMMAND_MEM] = "mem",
};

static const char *const sort_names[_SORT_MAX] = {
	[SORT_SELF] = "self",	    [SORT_TOTAL] = "total",	[SORT_TIME] = "time",
	[SORT_CPU] = "cpu",	    [SORT_USER] = "user",	[SORT_SYS] = "sys",
	[SORT_SAMPLES] = "samples", [SORT_START] = "start",	[SORT_PEAK] = "peak",
	[SORT_GROWTH] = "growth",   [SORT_OFF_CPU] = "off-cpu",
};

static const char *const group_names[_GROUP_MAX] = {
	[GROUP_UNIT] = "unit",	     [GROUP_COMM] = "comm",	[GROUP_CONTAINER] = "container",
	[GROUP_PROCESS] = "process", [GROUP_MODULE] = "module", [GROUP_FUNCTION] = "function",
};

static const char *const error_names[_ERROR_MAX] = {
	[ERROR_DENIED] = "denied",
	[ERROR_NOT_FOUND] = "not_found",
	[ERROR_BAD_REQUEST] = "bad_request",
	[ERROR_UNAVAILABLE] = "unavailable",
};

static int lookup(const char *const *names, size_t n, const char *s)
{
	if (!s)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (names[i] && streq(names[i], s))
			return (int)i;
	return -EINVAL;
}

const char *command_to_string(Command c)
{
	return c >= 0 && c < _COMMAND_MAX ? command_names[c] : NULL;
}

Command command_from_string(const char *s)
{
	return (Command)lookup(command_names, _COMMAND_MAX, s);
}

const char *sort_key_to_string(SortKey k)
{
	return k >= 0 && k < _SORT_MAX ? sort_names[k] : NULL;
}

SortKey sort_key_from_string(const char *s)
{
	return (SortKey)lookup(sort_names, _SORT_MAX, s);
}

const char *group_by_to_string(GroupBy g)
{
	return g >= 0 && g < _GROUP_MAX ? group_names[g] : NULL;
}

GroupBy group_by_from_string(const char *s)
{
	return (GroupBy)lookup(group_names, _GROUP_MAX, s);
}

const char *error_code_to_string(ErrorCode c)
{
	return c >= 0 && c < _ERROR_MAX ? error_names[c] : NULL;
}

ErrorCode error_code_from_string(const char *s)
{
	return (ErrorCode)lookup(error_names, _ERROR_MAX, s);
}

bool sort_key_valid(Command c, SortKey k)
{
	if (c == COMMAND_PS)
		return (k >= SORT_TIME && k <= SORT_START) || k == SORT_OFF_CPU;
	if (c == COMMAND_MEM)
		return k == SORT_PEAK || k == SORT_GROWTH;
	return k == SORT_SELF || k == SORT_TOTAL;
}

static SortKey sort_default(Command c)
{
	if (c == COMMAND_MEM)
		return SORT_PEAK;
	return c == COMMAND_PS ? SORT_TIME : SORT_SELF;
}

bool request_has_match(const Request *req)
{
	const RequestMatch *m = &req->match;

	return m->unit[0] || m->cgroup[0] || m->container[0] || m->comm[0];
}

/* The field of req->match a wire key names, and its size; NULL for another key. */
static char *match_field(Request *req, const char *key, size_t *ret_size)
{
	RequestMatch *m = &req->match;

	if (streq(key, "unit")) {
		*ret_size = sizeof(m->unit);
		return m->unit;
	}
	if (streq(key, "cgroup")) {
		*ret_size = sizeof(m->cgroup);
		return m->cgroup;
	}
	if (streq(key, "container")) {
		*ret_size = sizeof(m->container);
		return m->container;
	}
	if (streq(key, "comm")) {
		*ret_size = sizeof(m->comm);
		return m->comm;
	}
	return NULL;
}

void request_init(Request *req, Command command)
{
	*req = (Request){ .command = command,
			  .limit = REQUEST_LIMIT_DEFAULT,
			  .sort = sort_default(command),
			  .min_pct = REQUEST_MIN_PCT_DEFAULT };
}

static int fail(char **ret_error, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(char **ret_error, const char *fmt, ...)
{
	va_list ap;

	if (ret_error) {
		va_start(ap, fmt);
		if (vasprintf(ret_error, fmt, ap) < 0)
			*ret_error = NULL;
		va_end(ap);
	}
	return -EINVAL;
}

/* A selector's value into field (size bytes with the NUL): a string of 1 to size - 1 bytes
 * without NUL; a cgroup an absolute path, a container id hex digits. */
static int get_match(json_object *v, const char *key, char *field, size_t size, char **ret_error)
{
	const char *str;
	size_t n;

	if (!json_object_is_type(v, json_type_string))
		return fail(ret_error, "Field '%s' must be a string", key);
	str = json_object_get_string(v);
	n = (size_t)json_object_get_string_len(v);
	if (n == 0 || n >= size || strlen(str) != n)
		return fail(ret_error, "Field '%s' must have 1 to %zu bytes, no NUL", key,
			    size - 1);
	if (streq(key, "cgroup") && str[0] != '/')
		return fail(ret_error, "Field 'cgroup' must be an absolute path");
	if (streq(key, "container") && strspn(str, "0123456789abcdef") != n)
		return fail(ret_error, "Field 'container' must be lower-case hex digits");
	memcpy(field, str, n + 1);
	return 0;
}

/* An integer field in [min, max]; json-c parses integers into int64. */
static int get_uint(json_object *v, const char *key, uint64_t min, uint64_t max, uint64_t *ret,
		    char **ret_error)
{
	int64_t x;

	if (!json_object_is_type(v, json_type_int))
		return fail(ret_error, "Field '%s' must be an integer", key);
	errno = 0;
	x = json_object_get_int64(v);
	/* json-c saturates out-of-range integers and sets errno. */
	if (errno != 0 || x < 0 || (uint64_t)x < min || (uint64_t)x > max)
		return fail(ret_error, "Field '%s' is out of range [%llu, %llu]", key,
			    (unsigned long long)min, (unsigned long long)max);
	*ret = (uint64_t)x;
	return 0;
}

/* "by": which of its kinds the command takes; "process" of ps and "function" of top are its
 * rows without grouping, GROUP_NONE. */
static int by_check(Request *req, char **ret_error)
{
	if (req->command == COMMAND_PS && req->by == GROUP_PROCESS)
		req->by = GROUP_NONE;
	if (req->command == COMMAND_TOP && req->by == GROUP_FUNCTION)
		req->by = GROUP_NONE;
	if (req->by == GROUP_NONE)
		return 0;
	if (req->command == COMMAND_TREE || req->command == COMMAND_STACKS)
		return req->by == GROUP_COMM
			       ? 0
			       : fail(ret_error, "Field 'by' of tree and stacks must be \"comm\"");
	if (req->command == COMMAND_TOP)
		return req->by == GROUP_PROCESS || req->by == GROUP_MODULE
			       ? 0
			       : fail(ret_error, "Field 'by' of top must be \"function\", "
						 "\"process\" or \"module\"");
	if (req->command != COMMAND_PS || req->threads)
		return fail(ret_error,
			    "Field 'by' is for ps, without threads, top, tree and stacks");
	if (req->by != GROUP_UNIT && req->by != GROUP_COMM && req->by != GROUP_CONTAINER)
		return fail(ret_error, "Field 'by' of ps must be \"process\", \"unit\", "
				       "\"comm\" or \"container\"");
	return 0;
}

int request_parse(const char *line, size_t len, Request *ret, char **ret_error)
{
	_cleanup_(json_tokener_freep) json_tokener *tok = NULL;
	json_object *root = NULL, *v;
	Request req;
	int r = -EINVAL;

	if (ret_error)
		*ret_error = NULL;
	if (len > PROTOCOL_MAX_REQUEST) {
		fail(ret_error, "Request is larger than %u bytes", PROTOCOL_MAX_REQUEST);
		return -E2BIG;
	}
	if (memchr(line, '\0', len))
		return fail(ret_error, "Request contains a NUL byte");
	tok = json_tokener_new_ex(16);
	if (!tok)
		return -ENOMEM;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	root = json_tokener_parse_ex(tok, line, (int)len);
	/* A lone "null" parses to NULL with success: valid JSON, refused as not an object. */
	if (json_tokener_get_error(tok) != json_tokener_success) {
		r = fail(ret_error, "Request is not valid JSON: %s",
			 json_tokener_error_desc(json_tokener_get_error(tok)));
		goto out;
	}
	/* Only whitespace may follow the object. */
	for (size_t i = json_tokener_get_parse_end(tok); i < len; i++)
		if (!strchr(" \t\r\n", line[i])) {
			r = fail(ret_error, "Trailing data after the request");
			goto out;
		}
	if (!json_object_is_type(root, json_type_object)) {
		r = fail(ret_error, "Request must be a JSON object");
		goto out;
	}
	if (!json_object_object_get_ex(root, "command", &v) ||
	    !json_object_is_type(v, json_type_string)) {
		r = fail(ret_error, "Field 'command' is missing or not a string");
		goto out;
	}
	if (command_from_string(json_object_get_string(v)) < 0) {
		r = fail(ret_error, "Unknown command '%.64s'", json_object_get_string(v));
		goto out;
	}
	request_init(&req, command_from_string(json_object_get_string(v)));

	json_object_object_foreach(root, key, val)
	{
		uint64_t u;
		size_t size;
		char *field;

		if (streq(key, "command"))
			continue;
		field = match_field(&req, key, &size);
		if (field) {
			r = get_match(val, key, field, size, ret_error);
			if (r < 0)
				goto out;
			continue;
		}
		if (streq(key, "pid") || streq(key, "tid")) {
			r = get_uint(val, key, 1, 4194304, &u, ret_error);
			if (r < 0)
				goto out;
			if (key[0] == 'p')
				req.pid = (uint32_t)u;
			else
				req.tid = (uint32_t)u;
		} else if (streq(key, "limit")) {
			r = get_uint(val, key, 1, REQUEST_LIMIT_MAX, &u, ret_error);
			if (r < 0)
				goto out;
			req.limit = (uint32_t)u;
		} else if (streq(key, "sort")) {
			if (!json_object_is_type(val, json_type_string) ||
			    !sort_key_valid(req.command,
					    sort_key_from_string(json_object_get_string(val)))) {
				r = fail(ret_error,
					 req.command == COMMAND_PS
						 ? "Field 'sort' must be \"time\", \"cpu\", "
						   "\"user\", \"sys\", \"samples\", \"start\" "
						   "or \"off-cpu\""
					 : req.command == COMMAND_MEM
						 ? "Field 'sort' must be \"peak\" or \"growth\""
						 : "Field 'sort' must be \"self\" or \"total\"");
				goto out;
			}
			req.sort = sort_key_from_string(json_object_get_string(val));
		} else if (streq(key, "since_ns") || streq(key, "until_ns")) {
			/* Up to ten years back. */
			r = get_uint(val, key, 0, 10ULL * 366 * 86400 * NSEC_PER_SEC, &u,
				     ret_error);
			if (r < 0)
				goto out;
			if (key[0] == 's') {
				req.since_ns = u;
				req.has_since = true;
			} else {
				req.until_ns = u;
				req.has_until = true;
			}
		} else if (streq(key, "uid")) {
			r = get_uint(val, key, 0, UINT32_MAX - 1, &u, ret_error);
			if (r < 0)
				goto out;
			req.uid = (uint32_t)u;
			req.has_uid = true;
		} else if (streq(key, "start_ns")) {
			/* From 1970 to 2200. */
			r = get_uint(val, key, 0, 7258118400ULL * NSEC_PER_SEC, &u, ret_error);
			if (r < 0)
				goto out;
			req.start_ns = (int64_t)u;
		} else if (streq(key, "children") || streq(key, "threads") ||
			   streq(key, "inline") || streq(key, "python")) {
			if (!json_object_is_type(val, json_type_boolean)) {
				r = fail(ret_error, "Field '%s' must be true or false", key);
				goto out;
			}
			if (key[0] == 'c')
				req.children = json_object_get_boolean(val);
			else if (key[0] == 't')
				req.threads = json_object_get_boolean(val);
			else if (key[0] == 'p')
				req.no_python = !json_object_get_boolean(val);
			else
				req.no_inline = !json_object_get_boolean(val);
		} else if (streq(key, "by")) {
			if (!json_object_is_type(val, json_type_string) ||
			    group_by_from_string(json_object_get_string(val)) < 0) {
				r = fail(ret_error, "Field 'by' must be \"process\", \"unit\", "
						    "\"comm\", \"container\", \"function\" "
						    "or \"module\"");
				goto out;
			}
			req.by = group_by_from_string(json_object_get_string(val));
		} else if (streq(key, "event")) {
			if (!json_object_is_type(val, json_type_string) ||
			    event_from_string(json_object_get_string(val)) < 0) {
				r = fail(ret_error,
					 "Field 'event' must be \"cpu\", \"off-cpu\" or \"wall\"");
				goto out;
			}
			req.event = event_from_string(json_object_get_string(val));
		} else if (streq(key, "min_pct")) {
			double d;

			if (!json_object_is_type(val, json_type_double) &&
			    !json_object_is_type(val, json_type_int)) {
				r = fail(ret_error, "Field 'min_pct' must be a number");
				goto out;
			}
			d = json_object_get_double(val);
			if (!(d >= 0 && d <= 100)) {
				r = fail(ret_error, "Field 'min_pct' is out of range [0, 100]");
				goto out;
			}
			req.min_pct = d;
		} else if (streq(key, "function")) {
			size_t n;

			if (!json_object_is_type(val, json_type_string)) {
				r = fail(ret_error, "Field 'function' must be a string");
				goto out;
			}
			n = (size_t)json_object_get_string_len(val);
			if (n == 0 || n >= sizeof(req.function)) {
				r = fail(ret_error, "Field 'function' must have 1 to %zu bytes",
					 sizeof(req.function) - 1);
				goto out;
			}
			memcpy(req.function, json_object_get_string(val), n + 1);
		} else {
			r = fail(ret_error, "Unknown field '%.64s'", key);
			goto out;
		}
	}
	if ((req.command == COMMAND_TIME || req.command == COMMAND_LINES ||
	     req.command == COMMAND_TREE || req.command == COMMAND_STACKS) &&
	    !req.pid && !request_has_match(&req)) {
		r = fail(ret_error, "Command '%s' needs a pid or a unit, cgroup, container or comm",
			 command_to_string(req.command));
		goto out;
	}
	if (request_has_match(&req) && (req.pid || req.children)) {
		r = fail(ret_error, "Fields 'unit', 'cgroup', 'container' and 'comm' select "
				    "processes without a pid or children");
		goto out;
	}
	r = by_check(&req, ret_error);
	if (r < 0)
		goto out;
	if (req.threads && !req.pid) {
		r = fail(ret_error, "Field 'threads' needs a pid");
		goto out;
	}
	if (req.has_uid && req.pid) {
		r = fail(ret_error, "Field 'uid' selects processes without a pid");
		goto out;
	}
	if (req.start_ns && !req.pid) {
		r = fail(ret_error, "Field 'start_ns' needs a pid");
		goto out;
	}
	if (req.has_since && req.has_until && req.until_ns > req.since_ns) {
		r = fail(ret_error, "The range ends before it starts (until is older than since)");
		goto out;
	}
	*ret = req;
	r = 0;
out:
	json_object_put(root);
	return r;
}

int request_to_json(const Request *req, json_object **ret)
{
	json_object *o = json_object_new_object();

	if (!o)
		return -ENOMEM;
	json_object_object_add(o, "command",
			       json_object_new_string(command_to_string(req->command)));
	if (req->pid)
		json_object_object_add(o, "pid", json_object_new_int64(req->pid));
	if (req->tid)
		json_object_object_add(o, "tid", json_object_new_int64(req->tid));
	if (req->limit != REQUEST_LIMIT_DEFAULT)
		json_object_object_add(o, "limit", json_object_new_int64(req->limit));
	if (req->sort != sort_default(req->command))
		json_object_object_add(o, "sort",
				       json_object_new_string(sort_key_to_string(req->sort)));
	if (req->has_uid)
		json_object_object_add(o, "uid", json_object_new_int64(req->uid));
	if (req->has_since)
		json_object_object_add(o, "since_ns",
				       json_object_new_int64((int64_t)req->since_ns));
	if (req->has_until)
		json_object_object_add(o, "until_ns",
				       json_object_new_int64((int64_t)req->until_ns));
	if (req->start_ns)
		json_object_object_add(o, "start_ns", json_object_new_int64(req->start_ns));
	if (req->children)
		json_object_object_add(o, "children", json_object_new_boolean(true));
	if (req->threads)
		json_object_object_add(o, "threads", json_object_new_boolean(true));
	if (req->no_inline)
		json_object_object_add(o, "inline", json_object_new_boolean(false));
	if (req->no_python)
		json_object_object_add(o, "python", json_object_new_boolean(false));
	if (req->min_pct != REQUEST_MIN_PCT_DEFAULT)
		json_object_object_add(o, "min_pct", json_object_new_double(req->min_pct));
	if (req->function[0])
		json_object_object_add(o, "function", json_object_new_string(req->function));
	if (req->match.unit[0])
		json_object_object_add(o, "unit", json_object_new_string(req->match.unit));
	if (req->match.cgroup[0])
		json_object_object_add(o, "cgroup", json_object_new_string(req->match.cgroup));
	if (req->match.container[0])
		json_object_object_add(o, "container",
				       json_object_new_string(req->match.container));
	if (req->match.comm[0])
		json_object_object_add(o, "comm", json_object_new_string(req->match.comm));
	if (req->by != GROUP_NONE)
		json_object_object_add(o, "by",
				       json_object_new_string(group_by_to_string(req->by)));
	if (req->event != EVENT_CPU)
		json_object_object_add(o, "event",
				       json_object_new_string(event_to_string(req->event)));
	*ret = o;
	return 0;
}

static const char *const event_names[_EVENT_MAX] = {
	[EVENT_CPU] = "cpu",
	[EVENT_OFF_CPU] = "off-cpu",
	[EVENT_WALL] = "wall",
	[EVENT_FAULTS] = "faults",
};

const char *event_to_string(Event e)
{
	return e >= 0 && e < _EVENT_MAX ? event_names[e] : NULL;
}

Event event_from_string(const char *s)
{
	for (int i = 0; s && i < _EVENT_MAX; i++)
		if (streq(s, event_names[i]))
			return (Event)i;
	return _EVENT_INVALID;
}

json_object *error_answer_new(ErrorCode code, const char *fmt, ...)
{
	_cleanup_free_ char *msg = NULL;
	json_object *o;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	o = json_object_new_object();
	if (!o)
		return NULL;
	json_object_object_add(o, "error", json_object_new_string(msg ? msg : "out of memory"));
	json_object_object_add(o, "code", json_object_new_string(error_code_to_string(code)));
	return o;
}

int answer_error_code(json_object *answer, ErrorCode *ret_code, const char **ret_message)
{
	json_object *e, *c;
	ErrorCode code;

	if (!json_object_object_get_ex(answer, "error", &e) ||
	    !json_object_object_get_ex(answer, "code", &c))
		return -ENOENT;
	code = error_code_from_string(json_object_get_string(c));
	if (code < 0)
		code = ERROR_UNAVAILABLE;
	if (ret_code)
		*ret_code = code;
	if (ret_message)
		*ret_message = json_object_get_string(e);
	return 0;
}
