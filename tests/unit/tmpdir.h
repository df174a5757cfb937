/* SPDX-License-Identifier: MIT */
/* Temporary directories for unit tests: made under /tmp, removed with all they hold. */
#pragma once

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tmpdir_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path) < 0 ? -errno : 0;
}

static inline void rm_rf(const char *path)
{
	(void)nftw(path, tmpdir_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* A new empty directory /tmp/PREFIX-XXXXXX (the caller asserts on NULL). */
static inline char *tmpdir_new_named(const char *prefix)
{
	char *dir = NULL;

	if (asprintf(&dir, "/tmp/%s-XXXXXX", prefix) < 0)
		return NULL;
	if (!mkdtemp(dir)) {
		free(dir);
		return NULL;
	}
	return dir;
}

static inline void tmpdir_freep(char **dir)
{
	if (*dir) {
		rm_rf(*dir);
		free(*dir);
	}
}

#define _cleanup_tmpdir_ _cleanup_(tmpdir_freep)
