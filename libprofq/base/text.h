/* SPDX-License-Identifier: MIT */
/*
 * Text: display-safe strings from untrusted bytes.
 *
 * Symbol names, source file names, perf map entries, /proc's comm and cmdline and anything read
 * from process memory are arbitrary bytes. Every such string is made safe once, where it enters
 * the profile store, so that every answer (JSON, which must be valid UTF-8, and plain tables,
 * which go to terminals) shows it the same way: each byte that is not part of a valid UTF-8
 * sequence, and each control byte (0x00-0x1f, 0x7f), becomes the four characters `\xNN`
 * (lower-case hex). Everything else, backslashes included, is kept as it is. Overlong forms,
 * surrogates (U+D800..U+DFFF) and code points above U+10FFFF are invalid.
 *
 * Pure functions, no state: thread-safe.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* True when s[0..len) is valid UTF-8 without control bytes: text_escape() would copy it. */
bool text_is_clean(const char *s, size_t len);

/*
 * Writes the escaped form of s[0..len) as a new NUL-terminated string to *ret (the caller
 * frees it). 0, or -ENOMEM; -E2BIG when the result would not fit in a size_t.
 */
int text_escape(const char *s, size_t len, char **ret);

/* Length in bytes of the valid UTF-8 sequence at s[0..len), or 0 when s[0] starts none. */
size_t text_utf8_sequence(const unsigned char *s, size_t len);

/* "…", U+2026: what stands for text left out. */
#define TEXT_ELLIPSIS "\xe2\x80\xa6"

/*
 * A C++ (or Rust) function name shortened for a table: the contents of each template argument
 * list and parameter list become "…" ("std::vector<int, std::allocator<int> >::push_back(int
 * const&)" gives "std::vector<…>::push_back(…)"); empty lists, operator names ("operator<",
 * "operator()"), "(anonymous namespace)", Python's "<module>", Go's "pkg.(*T).m" and
 * everything outside the lists are kept. A list opens only right after a name ('<' after a
 * letter, digit or '_'; '(' also after '>' or ')'). From an opening bracket without its match
 * (or nested deeper than 64) on, the rest is copied as it is. Linear in strlen(name).
 *
 * Writes at most size bytes with the NUL into buf (size > 0), cut short at a UTF-8 character's
 * start when it does not fit. Returns buf.
 */
const char *text_shorten_name(const char *name, char *buf, size_t size);

/*
 * s cut to at most columns characters (UTF-8 sequences, each counted as one column) into buf:
 * when it is longer, its first columns - 1 characters and "…". columns 0 gives "". Writes at
 * most size bytes with the NUL (size > 0), cut short at a character's start. Returns buf.
 */
const char *text_fit(const char *s, size_t columns, char *buf, size_t size);

/* The characters (as text_fit() counts them) of s. */
size_t text_columns(const char *s);
