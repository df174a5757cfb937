/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "base/text.h"

size_t text_utf8_sequence(const unsigned char *s, size_t len)
{
	uint32_t cp;
	size_t n;

	if (len == 0)
		return 0;
	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		cp = s[0] & 0x07;
	} else {
		return 0; /* continuation byte, 0xc0/0xc1 (overlong), 0xf5.. (beyond U+10FFFF) */
	}
	if (len < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

static bool is_control(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

bool text_is_clean(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;

	for (size_t i = 0; i < len;) {
		size_t n;

		if (p[i] < 0x80) {
			if (is_control(p[i]))
				return false;
			i++;
			continue;
		}
		n = text_utf8_sequence(p + i, len - i);
		if (n == 0)
			return false;
		i += n;
	}
	return true;
}

int text_escape(const char *s, size_t len, char **ret)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	char *out, *o;

	/* Each byte becomes at most four. */
	if (len > (SIZE_MAX - 1) / 4)
		return -E2BIG;
	out = malloc(len * 4 + 1);
	if (!out)
		return -ENOMEM;
	o = out;
	for (size_t i = 0; i < len;) {
		size_t n = p[i] < 0x80 ? (is_control(p[i]) ? 0 : 1)
				       : text_utf8_sequence(p + i, len - i);

		if (n == 0) {
			*o++ = '\\';
			*o++ = 'x';
			*o++ = hex[p[i] >> 4];
			*o++ = hex[p[i] & 0xf];
			i++;
			continue;
		}
		for (size_t k = 0; k < n; k++)
			*o++ = (char)p[i + k];
		i += n;
	}
	*o = '\0';
	*ret = out;
	return 0;
}
