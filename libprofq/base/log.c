/* SPDX-License-Identifier: MIT */
#include <stdarg.h>

#include "base/log.h"

static int max_level = LOG_INFO;
static bool prefix_level;

void log_set_max_level(int level)
{
	max_level = level;
}

int log_get_max_level(void)
{
	return max_level;
}

int log_level_from_string(const char *s)
{
	static const char *const names[] = { "emerg",	"alert",  "crit", "err",
					     "warning", "notice", "info", "debug" };

	if (!s)
		return -EINVAL;
	if (s[0] >= '0' && s[0] <= '7' && s[1] == '\0')
		return s[0] - '0';
	if (streq(s, "error"))
		return LOG_ERR;
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (streq(s, names[i]))
			return (int)i;
	return -EINVAL;
}

void log_open(void)
{
	/* journald reads "<N>" as the priority on a stream connection. */
	prefix_level = getenv("JOURNAL_STREAM") != NULL;
}

int log_internal(int level, int error, const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	if (error != 0)
		errno = abs(error);
	if (prefix_level)
		fprintf(stderr, "<%d>", level);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	errno = saved;
	return -abs(error);
}
