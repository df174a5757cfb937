/* SPDX-License-Identifier: MIT */
/*
 * Flame graph: a Profile as a self-contained interactive SVG (`profq flame`, docs/profq.1), in
 * the manner of Brendan Gregg's flamegraph.pl: one box per call path, width proportional to its
 * samples, roots at the bottom, children above their caller sorted by name; hover shows
 * function, module, samples and percentage; click zooms into a box; search (Ctrl-F or the
 * button) highlights matching functions and says what share they hold; no external resources
 * (scripts and styles inline), so the file opens alone in a browser. Frames are merged by
 * function and module (a Python function's: its .py file) per call path (lines are not
 * split). Colours: a warm hue per function name (stable across runs), kernel, inlined, Python
 * and [jit] frames each their own hue, which a legend names.
 * Text in the SVG is XML-escaped: function names are hostile input.
 *
 * Not thread-safe.
 */
#pragma once

#include <stdbool.h>
#include <stdio.h>

#include "export/profile.h"

typedef struct FlameOptions {
	const char *title;    /* NULL: "Flame graph" */
	const char *subtitle; /* NULL: none; e.g. "pid 4711 (python3), 1234 samples, last 10m" */
	unsigned width;	      /* pixels; 0: 1200 */
	double min_width;     /* boxes narrower than this many pixels are left out; 0: 0.1 */
	bool icicle;	      /* roots at the top, callees below (an icicle graph) */
	/*
	 * A differential flame graph (as Brendan Gregg's difffolded.pl): the boxes are the
	 * profile's, each coloured by how its share of the samples changed from base: red where it
	 * grew, blue where it shrank, the deeper the more (white: unchanged). Call paths only base
	 * has are not drawn. NULL: an ordinary flame graph.
	 */
	const Profile *base;
} FlameOptions;

/* Writes the SVG to f. 0, or a negative errno (of the failed write, -EIO when the stream lost
 * it; -ENOMEM). */
int flame_write_svg(const Profile *p, const FlameOptions *o, FILE *f);
