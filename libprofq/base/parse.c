/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <inttypes.h>

#include "base/macro.h"
#include "base/parse.h"

/* Reads the leading decimal digits of s; *end points after them. */
static int read_digits(const char *s, const char **end, uint64_t *ret)
{
	uint64_t v = 0;
	const char *p = s;

	if (!isdigit((unsigned char)*p))
		return -EINVAL;
	for (; isdigit((unsigned char)*p); p++) {
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	*end = p;
	*ret = v;
	return 0;
}

int parse_uint64(const char *s, uint64_t min, uint64_t max, uint64_t *ret)
{
	const char *end;
	uint64_t v;
	int r;

	if (!s)
		return -EINVAL;
	r = read_digits(s, &end, &v);
	if (r < 0)
		return r;
	if (*end != '\0')
		return -EINVAL;
	if (v < min || v > max)
		return -ERANGE;
	*ret = v;
	return 0;
}

int parse_uint32(const char *s, uint32_t min, uint32_t max, uint32_t *ret)
{
	uint64_t v;
	int r;

	r = parse_uint64(s, min, max, &v);
	if (r < 0)
		return r;
	*ret = (uint32_t)v;
	return 0;
}

int parse_pid(const char *s, uint32_t *ret)
{
	return parse_uint32(s, 1, 4194304, ret);
}

static const struct {
	const char *suffix;
	uint64_t mult;
} duration_units[] = {
	/* Longest suffixes first so "ms" is not read as "m" followed by garbage. */
	{ "min", 60 * NSEC_PER_SEC }, { "ns", 1 },
	{ "us", NSEC_PER_USEC },      { "ms", NSEC_PER_MSEC },
	{ "s", NSEC_PER_SEC },	      { "m", 60 * NSEC_PER_SEC },
	{ "h", 3600 * NSEC_PER_SEC }, { "d", 86400 * NSEC_PER_SEC },
};

int parse_duration_ns(const char *s, uint64_t *ret)
{
	uint64_t total = 0;
	const char *p = s;
	int r;

	if (!s || !*s)
		return -EINVAL;
	while (*p) {
		const char *start = p, *end;
		uint64_t v, mult = 0;

		r = read_digits(p, &end, &v);
		if (r < 0)
			return r;
		p = end;
		if (*p == '\0') {
			/* A bare number is seconds, but only on its own ("1h30" is ambiguous). */
			if (start != s)
				return -EINVAL;
			mult = NSEC_PER_SEC;
		} else {
			for (size_t i = 0; i < ARRAY_SIZE(duration_units); i++) {
				size_t n = strlen(duration_units[i].suffix);
				if (strncmp(p, duration_units[i].suffix, n) == 0 &&
				    !isalpha((unsigned char)p[n])) {
					mult = duration_units[i].mult;
					p += n;
					break;
				}
			}
			if (mult == 0)
				return -EINVAL;
		}
		if (v > UINT64_MAX / mult || total > UINT64_MAX - v * mult)
			return -ERANGE;
		total += v * mult;
	}
	*ret = total;
	return 0;
}

int parse_size(const char *s, uint64_t *ret)
{
	uint64_t v, mult = 1;
	const char *p;
	int r;

	if (!s)
		return -EINVAL;
	r = read_digits(s, &p, &v);
	if (r < 0)
		return r;
	switch (*p) {
	case 'K':
	case 'k':
		mult = 1ULL << 10;
		p++;
		break;
	case 'M':
		mult = 1ULL << 20;
		p++;
		break;
	case 'G':
		mult = 1ULL << 30;
		p++;
		break;
	case 'T':
		mult = 1ULL << 40;
		p++;
		break;
	default:
		break;
	}
	if (mult > 1 && *p == 'i')
		p++;
	if (*p == 'B')
		p++;
	if (*p != '\0')
		return -EINVAL;
	if (v > UINT64_MAX / mult)
		return -ERANGE;
	*ret = v * mult;
	return 0;
}

const char *format_duration(char *buf, size_t len, uint64_t ns)
{
	static const struct {
		const char *suffix;
		uint64_t mult;
	} units[] = { { "d", 86400 * NSEC_PER_SEC }, { "h", 3600 * NSEC_PER_SEC },
		      { "m", 60 * NSEC_PER_SEC },    { "s", NSEC_PER_SEC },
		      { "ms", NSEC_PER_MSEC },	     { "us", NSEC_PER_USEC } };

	for (size_t i = 0; i < ARRAY_SIZE(units); i++)
		if (ns >= units[i].mult && ns % units[i].mult == 0) {
			snprintf(buf, len, "%" PRIu64 "%s", ns / units[i].mult, units[i].suffix);
			return buf;
		}
	snprintf(buf, len, "%" PRIu64 "ns", ns);
	return buf;
}
