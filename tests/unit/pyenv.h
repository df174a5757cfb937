/* SPDX-License-Identifier: MIT */
/* The pyenv builds of CPython the Python tests read: $PYENV_ROOT (else ~/.pyenv)/versions/3.N.P
 * with lib/libpython3.N.so.1.0 and bin/python3.N. CI has the same pyenv as development. */
#pragma once

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The prefix of an installed 3.minor (release, not free-threaded), in buf; false if none. */
static inline bool pyenv_prefix(unsigned minor, char *buf, size_t size)
{
	const char *root = getenv("PYENV_ROOT"), *home = getenv("HOME");
	char dir[512], want[16], lib[700];
	struct dirent *de;
	bool found = false;
	DIR *d;

	if (root)
		snprintf(dir, sizeof(dir), "%s/versions", root);
	else
		snprintf(dir, sizeof(dir), "%s/.pyenv/versions", home ? home : "/root");
	snprintf(want, sizeof(want), "3.%u.", minor);
	d = opendir(dir);
	if (!d)
		return false;
	while (!found && (de = readdir(d))) {
		const char *patch = de->d_name + strlen(want);

		if (strncmp(de->d_name, want, strlen(want)) != 0 || !*patch ||
		    strspn(patch, "0123456789") != strlen(patch))
			continue;
		if (snprintf(lib, sizeof(lib), "%s/%s/lib/libpython3.%u.so.1.0", dir, de->d_name,
			     minor) >= (int)sizeof(lib))
			continue;
		if (access(lib, R_OK) == 0)
			found = snprintf(buf, size, "%s/%s", dir, de->d_name) < (int)size;
	}
	closedir(d);
	return found;
}
