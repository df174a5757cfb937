/* SPDX-License-Identifier: MIT */
#include <libiberty/demangle.h>
#include <stdlib.h>
#include <string.h>

#include "demangle.h"

char *demangle(const char *sym)
{
	/* Only what looks mangled: C++/legacy Rust "_Z...", Rust v0 "_R...". */
	if (!sym || sym[0] != '_' || (sym[1] != 'Z' && sym[1] != 'R') || strlen(sym) > 4096)
		return NULL;
	return cplus_demangle(sym, DMGL_PARAMS | DMGL_ANSI | DMGL_AUTO);
}
