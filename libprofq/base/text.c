/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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

/* Nesting deeper than this is not a name a table should shorten. */
#define SHORTEN_DEPTH_MAX 64

typedef struct Out {
	char *buf;
	size_t size, n;
	bool full;
} Out;

/* Appends s[0..len) to o, as much as fits, cut at a character's start. */
static void out_add(Out *o, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;

	for (size_t i = 0; i < len && !o->full;) {
		size_t n = p[i] < 0x80 ? 1 : text_utf8_sequence(p + i, len - i);

		if (n == 0)
			n = 1; /* not UTF-8: a byte at a time */
		if (o->n + n >= o->size) {
			o->full = true;
			break;
		}
		memcpy(o->buf + o->n, s + i, n);
		o->n += n;
		i += n;
	}
	o->buf[o->n] = '\0';
}

static bool is_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_';
}

static char closer_of(char c)
{
	return c == '<' ? '>' : c == '(' ? ')' : c == '[' ? ']' : c == '{' ? '}' : 0;
}

/* The index of the bracket that closes the one at s[i], or 0 when it has none (unbalanced, or
 * nested too deep). Looks no further than the first mismatch. */
static size_t matching(const char *s, size_t i)
{
	char want[SHORTEN_DEPTH_MAX];
	size_t depth = 0;

	want[depth++] = closer_of(s[i]);
	for (size_t k = i + 1; s[k]; k++) {
		char c = closer_of(s[k]);

		/* "->" inside a list (a trailing return type, "operator->") closes nothing. */
		if (s[k] == '>' && s[k - 1] == '-')
			continue;
		if (c) {
			if (depth == SHORTEN_DEPTH_MAX)
				return 0;
			want[depth++] = c;
		} else if (s[k] == '>' || s[k] == ')' || s[k] == ']' || s[k] == '}') {
			if (s[k] != want[depth - 1])
				return 0;
			if (--depth == 0)
				return k;
		}
	}
	return 0;
}

/* The length of the operator's symbol at s, just after the word "operator": "()", "[]", or a
 * run of operator characters ("<<=", "->*", "<"); 0 for a conversion operator's type. */
static size_t operator_symbol(const char *s)
{
	size_t n = 0;

	if ((s[0] == '(' && s[1] == ')') || (s[0] == '[' && s[1] == ']'))
		return 2;
	while (n < 4 && s[n] && strchr("<>=!+-*/%^&|~,", s[n]))
		n++;
	return n;
}

const char *text_shorten_name(const char *name, char *buf, size_t size)
{
	Out o = { .buf = buf, .size = size };
	size_t i = 0, copied = 0; /* name[copied..i) is still to be written */
	size_t op_end = SIZE_MAX; /* where the last operator's symbol ended */

	buf[0] = '\0';
	while (name[i] && !o.full) {
		char c = name[i];
		size_t end;

		if (c == 'o' && strncmp(name + i, "operator", 8) == 0 &&
		    (i == 0 || !is_name_char(name[i - 1]))) {
			i += 8;
			i += operator_symbol(name + i);
			op_end = i;
			continue;
		}
		if (!((c == '<' && i > 0 && is_name_char(name[i - 1])) ||
		      (c == '(' && i > 0 &&
		       (is_name_char(name[i - 1]) || name[i - 1] == '>' || name[i - 1] == ')' ||
			i == op_end)))) {
			i++;
			continue;
		}
		end = matching(name, i);
		if (end == 0)
			break; /* unbalanced: the rest as it is */
		out_add(&o, name + copied, i + 1 - copied);
		if (end > i + 1)
			out_add(&o, TEXT_ELLIPSIS, strlen(TEXT_ELLIPSIS));
		i = copied = end;
	}
	out_add(&o, name + copied, strlen(name + copied));
	return buf;
}

/* The length of the character at s (a byte that starts none counts as one). */
static size_t char_len(const char *s)
{
	size_t n = (unsigned char)s[0] < 0x80 ? 1 : text_utf8_sequence((const unsigned char *)s, 4);

	/* A sequence is never longer than the string: its bytes are not NUL. */
	return n ? n : 1;
}

size_t text_columns(const char *s)
{
	size_t n = 0;

	for (size_t i = 0; s[i]; i += char_len(s + i))
		n++;
	return n;
}

const char *text_fit(const char *s, size_t columns, char *buf, size_t size)
{
	Out o = { .buf = buf, .size = size };
	size_t i = 0, n = 0;

	buf[0] = '\0';
	if (columns == 0)
		return buf;
	while (s[i] && n + 1 < columns) {
		i += char_len(s + i);
		n++;
	}
	/* One character left: s ends with it, or the ellipsis stands for the rest. */
	if (s[i] && s[i + char_len(s + i)] == '\0') {
		out_add(&o, s, strlen(s));
		return buf;
	}
	out_add(&o, s, i);
	if (s[i])
		out_add(&o, TEXT_ELLIPSIS, strlen(TEXT_ELLIPSIS));
	return buf;
}
