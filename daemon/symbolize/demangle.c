/* SPDX-License-Identifier: MIT */
#include <libiberty/demangle.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "symbolize/demangle.h"

char *demangle(const char *sym)
{
	const char *at;
	char *prefix, *readable, *out;

	/* Only what looks mangled: C++/legacy Rust "_Z...", Rust v0 "_R...". */
	if (!sym || sym[0] != '_' || (sym[1] != 'Z' && sym[1] != 'R') || strlen(sym) > 4096)
		return NULL;
	/* A suffix no mangled name has: "@plt" of a PLT stub, "@@VERSION". Kept as it is. */
	at = strchr(sym, '@');
	if (!at)
		return cplus_demangle(sym, DMGL_PARAMS | DMGL_ANSI | DMGL_AUTO);
	prefix = strndup(sym, (size_t)(at - sym));
	if (!prefix)
		return NULL;
	readable = cplus_demangle(prefix, DMGL_PARAMS | DMGL_ANSI | DMGL_AUTO);
	free(prefix);
	if (!readable || asprintf(&out, "%s%s", readable, at) < 0)
		out = NULL;
	free(readable);
	return out;
}
