/* SPDX-License-Identifier: MIT */
/*
 * Memory plot: a `mem --pid` answer (docs/profq.1) as a self-contained SVG, in the manner of
 * mprof plot: the resident set over time as a line (with anonymous memory shaded under it), time
 * axis in seconds from the first point, size axis in MiB, the peak marked with a dot and its
 * value, an OOM kill marked in red. No scripts and no external resources. The answer is hostile
 * input: names are escaped, points with non-finite or negative values are skipped.
 * Not thread-safe.
 */
#pragma once

#include <json-c/json.h>
#include <stdio.h>

/* Writes the SVG to f. 0, or a negative errno (-EIO when the stream lost a write). */
int memplot_write(json_object *answer, FILE *f);
