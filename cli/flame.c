/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "base/hashindex.h"
#include "base/macro.h"
#include "flame.h"

#define FRAME_HEIGHT 16
#define FONT_SIZE 12
#define FONT_WIDTH 0.59 /* of FONT_SIZE: an average character of Verdana */
#define PAD 10
#define HEADER 80 /* title, subtitle, the buttons and the legend */
#define FOOTER 30 /* the details line */
#define NONE UINT32_MAX
#define ROOT_FRAME (UINT32_MAX - 1)	 /* the "all" box */
#define TRUNCATED_FRAME (UINT32_MAX - 2) /* what the answer left out */

/* A box: one call path, merged by function and module. */
typedef struct Node {
	uint32_t frame; /* a frame with this function and module, or ROOT_FRAME/TRUNCATED_FRAME */
	uint32_t parent;
	uint32_t depth;
	uint32_t first_child; /* after sort_children: index into Flame.children */
	uint32_t n_children;
	uint64_t samples;
	uint64_t base_samples; /* a differential graph: the base profile's, on the same path */
} Node;

typedef struct Flame {
	const Profile *p;
	const Profile *base; /* a differential graph's base; NULL otherwise */
	Node *nodes;
	size_t n_nodes, a_nodes;
	HashIndex *index;
	uint32_t *children; /* the children of every node, back to back, sorted by name */
	uint32_t max_depth;
} Flame;

static const char *frame_function(const Profile *p, uint32_t frame)
{
	if (frame == ROOT_FRAME)
		return "all";
	if (frame == TRUNCATED_FRAME)
		return "[truncated]";
	return p->frames[frame].function;
}

/* What tells functions of one name apart: the module, or a Python function's .py file (every
 * Python function's module is [python], and every module's code is <module>). */
static const char *frame_module(const Profile *p, uint32_t frame)
{
	const ProfileFrame *f;

	if (frame >= TRUNCATED_FRAME)
		return NULL;
	f = &p->frames[frame];
	return f->python && f->file ? f->file : f->module;
}

static const char *node_function(const Flame *fl, const Node *n)
{
	return frame_function(fl->p, n->frame);
}

static const char *node_module(const Flame *fl, const Node *n)
{
	return frame_module(fl->p, n->frame);
}

typedef struct NodeKey {
	uint32_t parent;
	const char *function, *module;
} NodeKey;

static uint64_t node_hash(const NodeKey *k)
{
	uint64_t h = XXH3_64bits_withSeed(k->function, strlen(k->function), k->parent);

	if (k->module)
		h ^= XXH3_64bits(k->module, strlen(k->module)) * 0x9e3779b97f4a7c15ULL;
	return h;
}

static bool node_eq(uint32_t idx, const void *key, void *userdata)
{
	const Flame *fl = userdata;
	const NodeKey *k = key;
	const Node *n = &fl->nodes[idx];

	return n->parent == k->parent && streq(node_function(fl, n), k->function) &&
	       streq_ptr(node_module(fl, n), k->module);
}

/* The child of parent for frame (added when new). */
static int child_of(Flame *fl, uint32_t parent, uint32_t frame, uint32_t *ret)
{
	Node n = { .frame = frame, .parent = parent, .first_child = NONE };
	NodeKey k = { parent, NULL, NULL };
	uint32_t idx;
	uint64_t hash;
	int r;

	k.function = node_function(fl, &n);
	k.module = node_module(fl, &n);
	hash = node_hash(&k);
	if (hash_index_find(fl->index, hash, node_eq, &k, fl, &idx) == 0) {
		*ret = idx;
		return 0;
	}
	if (fl->n_nodes >= TRUNCATED_FRAME ||
	    GREEDY_REALLOC(fl->nodes, fl->a_nodes, fl->n_nodes + 1) < 0)
		return -ENOMEM;
	r = hash_index_insert(fl->index, hash, (uint32_t)fl->n_nodes);
	if (r < 0)
		return r;
	n.depth = fl->nodes[parent].depth + 1;
	fl->max_depth = MAX(fl->max_depth, n.depth);
	fl->nodes[fl->n_nodes] = n;
	fl->nodes[parent].n_children++;
	*ret = (uint32_t)fl->n_nodes++;
	return 0;
}

static int build_tree(Flame *fl)
{
	const Profile *p = fl->p;
	uint32_t at;
	int r;

	if (GREEDY_REALLOC(fl->nodes, fl->a_nodes, 1) < 0)
		return -ENOMEM;
	fl->nodes[0] = (Node){
		.frame = ROOT_FRAME, .parent = NONE, .first_child = NONE, .samples = p->samples
	};
	fl->n_nodes = 1;
	for (size_t i = 0; i < p->n_stacks; i++) {
		const ProfileStack *s = &p->stacks[i];

		at = 0;
		for (size_t j = s->n_frames; j-- > 0;) { /* outermost first */
			r = child_of(fl, at, s->frames[j], &at);
			if (r < 0)
				return r;
			fl->nodes[at].samples += s->samples;
		}
	}
	if (p->truncated_samples > 0) {
		r = child_of(fl, 0, TRUNCATED_FRAME, &at);
		if (r < 0)
			return r;
		fl->nodes[at].samples += p->truncated_samples;
	}
	return 0;
}

/* The child of parent that the base profile's frame names, or NONE: base paths are found in
 * the tree, never added. */
static uint32_t base_child(const Flame *fl, uint32_t parent, uint32_t frame)
{
	NodeKey k = { parent, frame_function(fl->base, frame), frame_module(fl->base, frame) };
	uint32_t idx;

	return hash_index_find(fl->index, node_hash(&k), node_eq, &k, (void *)fl, &idx) == 0 ? idx
											     : NONE;
}

/* A differential graph: the base profile's samples on each path the tree has. */
static void add_base(Flame *fl)
{
	const Profile *b = fl->base;

	fl->nodes[0].base_samples = b->samples;
	for (size_t i = 0; i < b->n_stacks; i++) {
		const ProfileStack *s = &b->stacks[i];
		uint32_t at = 0;

		for (size_t j = s->n_frames; j-- > 0 && at != NONE;) {
			at = base_child(fl, at, s->frames[j]);
			if (at != NONE)
				fl->nodes[at].base_samples += s->samples;
		}
	}
	if (b->truncated_samples > 0) {
		uint32_t at = base_child(fl, 0, TRUNCATED_FRAME);

		if (at != NONE)
			fl->nodes[at].base_samples += b->truncated_samples;
	}
}

static int cmp_nodes(const void *a, const void *b, void *userdata)
{
	const Flame *fl = userdata;
	const Node *x = &fl->nodes[*(const uint32_t *)a], *y = &fl->nodes[*(const uint32_t *)b];
	int c = strcmp(node_function(fl, x), node_function(fl, y));

	return c ? c : strcmp(strempty(node_module(fl, x)), strempty(node_module(fl, y)));
}

/* Lays the children of every node out in Flame.children, each node's sorted by name. */
static int sort_children(Flame *fl)
{
	uint32_t offset = 0;

	fl->children = calloc(MAX(fl->n_nodes, (size_t)1), sizeof(uint32_t));
	if (!fl->children)
		return -ENOMEM;
	for (size_t i = 0; i < fl->n_nodes; i++) {
		fl->nodes[i].first_child = offset;
		offset += fl->nodes[i].n_children;
		fl->nodes[i].n_children = 0; /* counted again as they are placed */
	}
	for (size_t i = 1; i < fl->n_nodes; i++) {
		Node *parent = &fl->nodes[fl->nodes[i].parent];

		fl->children[parent->first_child + parent->n_children++] = (uint32_t)i;
	}
	for (size_t i = 0; i < fl->n_nodes; i++)
		qsort_r(fl->children + fl->nodes[i].first_child, fl->nodes[i].n_children,
			sizeof(uint32_t), cmp_nodes, fl);
	return 0;
}

/* Length of the valid UTF-8 sequence at s, or 0 when it is not one. */
static size_t utf8_length(const unsigned char *s)
{
	size_t n;
	uint32_t c;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0)
		n = 2, c = s[0] & 0x1f;
	else if ((s[0] & 0xf0) == 0xe0)
		n = 3, c = s[0] & 0x0f;
	else if ((s[0] & 0xf8) == 0xf0)
		n = 4, c = s[0] & 0x07;
	else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	if ((n == 2 && c < 0x80) || (n == 3 && c < 0x800) || (n == 4 && c < 0x10000) ||
	    c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff) || c == 0xfffe || c == 0xffff)
		return 0; /* overlong, out of range, a surrogate or not a character in XML */
	return n;
}

/*
 * s as XML text or attribute value: markup characters escaped, and what XML 1.0 cannot hold at
 * all (control characters, invalid UTF-8) as '?'. At most max characters, then "..".
 */
static void xml_text(FILE *f, const char *s, size_t max)
{
	const unsigned char *c = (const unsigned char *)s;
	size_t chars = 0;

	while (*c) {
		size_t n = utf8_length(c);

		if (chars++ == max) {
			fputs("..", f);
			return;
		}
		if (n == 0 || (*c < 0x20 && *c != '\t') || *c == 0x7f) {
			fputc('?', f);
			c++;
			continue;
		}
		switch (*c) {
		case '&':
			fputs("&amp;", f);
			break;
		case '<':
			fputs("&lt;", f);
			break;
		case '>':
			fputs("&gt;", f);
			break;
		case '"':
			fputs("&quot;", f);
			break;
		case '\'':
			fputs("&apos;", f);
			break;
		default:
			fwrite(c, 1, n, f);
		}
		c += n;
	}
}

/* A stable colour per name: FNV-1a hashes, as flamegraph.pl picks its random-looking ones. */
static void node_colour(const Flame *fl, const Node *n, char *buf, size_t len)
{
	const char *name = node_function(fl, n), *module = node_module(fl, n);
	const ProfileFrame *f = n->frame < TRUNCATED_FRAME ? &fl->p->frames[n->frame] : NULL;
	uint32_t h = 2166136261u;
	double v1, v2, v3;
	uint8_t c[3];

	for (const char *k = name; *k; k++)
		h = (h ^ (unsigned char)*k) * 16777619u;
	v1 = (h & 0xff) / 255.0, v2 = ((h >> 8) & 0xff) / 255.0, v3 = ((h >> 16) & 0xff) / 255.0;

	if (!f) /* all, [truncated] */
		c[0] = c[1] = c[2] = 200;
	else if (f->kernel) /* blue-green, as the kernel in perf's and Parca's graphs */
		c[0] = 50 + 60 * v1, c[1] = 160 + 60 * v2, c[2] = 200 + 55 * v3;
	else if (f->inlined) /* aqua, flamegraph.pl's colour for _[i] */
		c[0] = 80 + 50 * v1, c[1] = 200 + 40 * v1, c[2] = 200 + 40 * v2;
	else if (f->python) /* violet */
		c[0] = 150 + 50 * v1, c[1] = 90 + 50 * v2, c[2] = 200 + 55 * v3;
	else if (module && streq(module, "[jit]")) /* green, as _[j] */
		c[0] = 50 + 60 * v1, c[1] = 180 + 60 * v2, c[2] = 50 + 60 * v3;
	else /* flamegraph.pl's "hot" */
		c[0] = 205 + 50 * v3, c[1] = 230 * v1, c[2] = 55 * v2;
	snprintf(buf, len, "rgb(%u,%u,%u)", c[0], c[1], c[2]);
}

typedef struct Layout {
	FILE *f;
	double scale; /* pixels per sample */
	double min_width;
	uint64_t total;
	unsigned height;
	bool icicle;
	double max_change; /* differential: the largest change of a box's share (> 0) */
} Layout;

/* A differential graph: the change of the box's share of all samples, from base to now. */
static double node_change(const Flame *fl, const Node *n)
{
	double now = fl->p->samples ? (double)n->samples / fl->p->samples : 0;
	double then = fl->base->samples ? (double)n->base_samples / fl->base->samples : 0;

	return now - then;
}

/* Red where the share grew, blue where it shrank, in proportion to the largest change. */
static void diff_colour(const Flame *fl, const Layout *lo, const Node *n, char *buf, size_t len)
{
	double d = node_change(fl, n) / lo->max_change;
	unsigned fade = (unsigned)(210 * (1 - MIN(fabs(d), 1.0)));

	if (d >= 0)
		snprintf(buf, len, "rgb(255,%u,%u)", fade + 45, fade + 45);
	else
		snprintf(buf, len, "rgb(%u,%u,255)", fade + 45, fade + 45);
}

static double max_change(const Flame *fl)
{
	double m = 0;

	for (size_t i = 0; i < fl->n_nodes; i++)
		m = MAX(m, fabs(node_change(fl, &fl->nodes[i])));
	return m > 0 ? m : 1;
}

static void write_node(const Flame *fl, const Layout *lo, uint32_t idx, uint64_t start)
{
	const Node *n = &fl->nodes[idx];
	const char *name = node_function(fl, n), *module = node_module(fl, n);
	double x = PAD + start * lo->scale, w = n->samples * lo->scale;
	double y = lo->icicle ? HEADER + n->depth * FRAME_HEIGHT
			      : lo->height - FOOTER - (n->depth + 1) * FRAME_HEIGHT;
	size_t chars = w > 6 ? (size_t)((w - 6) / (FONT_SIZE * FONT_WIDTH)) : 0;
	char fill[32];

	if (w < lo->min_width)
		return; /* and its children, which are narrower */
	if (fl->base)
		diff_colour(fl, lo, n, fill, sizeof(fill));
	else
		node_colour(fl, n, fill, sizeof(fill));
	fprintf(lo->f,
		"<g class=\"f\" data-s=\"%" PRIu64 "\" data-n=\"%" PRIu64 "\" data-d=\"%" PRIu32
		"\" data-fill=\"%s\"",
		start, n->samples, n->depth, fill);
	fputs(" data-name=\"", lo->f);
	xml_text(lo->f, name, 512);
	fputs("\"><title>", lo->f);
	xml_text(lo->f, name, 512);
	if (module) {
		fputs(" (", lo->f);
		xml_text(lo->f, module, 512);
		fputc(')', lo->f);
	}
	if (streq(fl->p->event, "faults"))
		fprintf(lo->f, " %.1f KiB faulted in, %.2f%%", (double)n->samples / 1024,
			lo->total ? 100.0 * n->samples / lo->total : 0.0);
	else
		fprintf(lo->f, " %" PRIu64 " samples, %.2f%%", n->samples,
			lo->total ? 100.0 * n->samples / lo->total : 0.0);
	if (fl->base)
		fprintf(lo->f, " (base %.2f%%: %+.2f points)",
			fl->base->samples ? 100.0 * n->base_samples / fl->base->samples : 0.0,
			100.0 * node_change(fl, n));
	fputs("</title>", lo->f);
	fprintf(lo->f,
		"<rect x=\"%.2f\" y=\"%.1f\" width=\"%.3f\" height=\"%d\" fill=\"%s\" rx=\"2\"/>",
		x, y, w, FRAME_HEIGHT - 1, fill);
	fprintf(lo->f, "<text x=\"%.2f\" y=\"%.1f\">", x + 3, y + FRAME_HEIGHT - 4.5);
	if (chars >= 3)
		xml_text(lo->f, name, strlen(name) <= chars ? chars : chars - 2);
	fputs("</text></g>\n", lo->f);

	for (uint32_t i = 0; i < n->n_children; i++) {
		uint32_t c = fl->children[n->first_child + i];

		write_node(fl, lo, c, start);
		start += fl->nodes[c].samples;
	}
}

/* Zoom: click a box to fit it to the width (its callers stay below, faded); click "Reset Zoom"
 * or press Escape for all. Search: the button or Ctrl-F asks for a regular expression, paints
 * the matching boxes and says what share of the samples they hold. A URL fragment
 * "#search=RE" searches on load (for links, and for headless checks). */
static const char flame_script[] =
	"var W, PAD, total, frames, details, matched, resetbtn, searchbtn, searching = false;\n"
	"function init() {\n"
	"  var svg = document.documentElement;\n"
	"  W = +svg.getAttribute('width'); PAD = +svg.getAttribute('data-pad');\n"
	"  total = +svg.getAttribute('data-total');\n"
	"  frames = document.getElementById('frames');\n"
	"  details = document.getElementById('details');\n"
	"  matched = document.getElementById('matched');\n"
	"  resetbtn = document.getElementById('reset');\n"
	"  searchbtn = document.getElementById('search');\n"
	"  svg.addEventListener('click', onclick);\n"
	"  svg.addEventListener('mouseover', function (e) {\n"
	"    var g = frame_of(e.target);\n"
	"    if (g) details.textContent = g.querySelector('title').textContent;\n"
	"  });\n"
	"  svg.addEventListener('mouseout', function (e) {\n"
	"    if (frame_of(e.target)) details.textContent = ' ';\n"
	"  });\n"
	"  window.addEventListener('keydown', function (e) {\n"
	"    if ((e.ctrlKey || e.metaKey) && e.key == 'f') { e.preventDefault(); ask(); }\n"
	"    else if (e.key == 'Escape') { layout(0, total, -1); reset_search(); }\n"
	"  });\n"
	"  var m = /[#&]search=([^&]*)/.exec(location.hash);\n"
	"  if (m) search(decodeURIComponent(m[1]));\n"
	"}\n"
	"function frame_of(t) {\n"
	"  for (; t && t.getAttribute; t = t.parentNode)\n"
	"    if (t.getAttribute('class') == 'f') return t;\n"
	"  return null;\n"
	"}\n"
	"function onclick(e) {\n"
	"  if (e.target.id == 'reset') { layout(0, total, -1); return; }\n"
	"  if (e.target.id == 'search') { if (searching) reset_search(); else ask(); return; }\n"
	"  var g = frame_of(e.target);\n"
	"  if (g) layout(+g.getAttribute('data-s'), +g.getAttribute('data-n'),\n"
	"                +g.getAttribute('data-d'));\n"
	"}\n"
	"function fit(g, r, w) {\n"
	"  var t = g.querySelector('text'), name = g.getAttribute('data-name');\n"
	"  var n = Math.floor((w - 6) / (12 * 0.59));\n"
	"  t.setAttribute('x', +r.getAttribute('x') + 3);\n"
	"  t.textContent = n < 3 ? '' : name.length <= n ? name : name.substring(0, n - 2) + "
	"'..';\n"
	"}\n"
	"/* Shows the samples [s, s + n) across the width; d is the zoomed box's depth, -1 for\n"
	"   all. */\n"
	"function layout(s, n, d) {\n"
	"  var scale = (W - 2 * PAD) / n;\n"
	"  for (var g = frames.firstElementChild; g; g = g.nextElementSibling) {\n"
	"    var gs = +g.getAttribute('data-s'), gn = +g.getAttribute('data-n');\n"
	"    var r = g.querySelector('rect'), gd = +g.getAttribute('data-d'), w;\n"
	"    if (gs >= s && gs + gn <= s + n && (d < 0 || gd >= d)) {\n"
	"      r.setAttribute('x', PAD + (gs - s) * scale); w = gn * scale;\n"
	"      g.style.display = ''; g.style.opacity = '';\n"
	"    } else if (gd < d && gs <= s && gs + gn >= s + n) {\n"
	"      r.setAttribute('x', PAD); w = W - 2 * PAD;\n"
	"      g.style.display = ''; g.style.opacity = '0.6';\n"
	"    } else { g.style.display = 'none'; continue; }\n"
	"    r.setAttribute('width', w); fit(g, r, w);\n"
	"  }\n"
	"  resetbtn.style.opacity = d < 0 ? '0' : '1';\n"
	"}\n"
	"function ask() {\n"
	"  var re = prompt('Search for (a regular expression):', '');\n"
	"  if (re) search(re);\n"
	"}\n"
	"function search(text) {\n"
	"  var re, spans = [], sum = 0, end = -1;\n"
	"  try { re = new RegExp(text); } catch (e) { matched.textContent = 'Bad expression'; "
	"return; }\n"
	"  for (var g = frames.firstElementChild; g; g = g.nextElementSibling) {\n"
	"    var hit = re.test(g.getAttribute('data-name'));\n"
	"    g.querySelector('rect').setAttribute('fill', hit ? 'rgb(230,0,230)' : "
	"g.getAttribute('data-fill'));\n"
	"    if (hit) spans.push([+g.getAttribute('data-s'), +g.getAttribute('data-n')]);\n"
	"  }\n"
	"  spans.sort(function (a, b) { return a[0] - b[0]; });\n"
	"  for (var i = 0; i < spans.length; i++) {\n"
	"    var a = Math.max(spans[i][0], end), b = spans[i][0] + spans[i][1];\n"
	"    if (b > a) { sum += b - a; end = b; }\n"
	"  }\n"
	"  matched.textContent = 'Matched: ' + (total ? 100 * sum / total : 0).toFixed(1) + '%';\n"
	"  searching = true; searchbtn.textContent = 'Reset Search';\n"
	"}\n"
	"function reset_search() {\n"
	"  for (var g = frames.firstElementChild; g; g = g.nextElementSibling)\n"
	"    g.querySelector('rect').setAttribute('fill', g.getAttribute('data-fill'));\n"
	"  matched.textContent = ' '; searching = false; searchbtn.textContent = 'Search';\n"
	"}\n";

/* What the colours mean, in a line under the subtitle. */
static void write_legend(const Flame *fl, FILE *f)
{
	static const struct {
		const char *fill, *what;
	} plain[] = {
		{ "rgb(230,115,30)", "native code" }, { "rgb(80,190,228)", "kernel" },
		{ "rgb(105,220,220)", "inlined" },    { "rgb(175,115,228)", "Python" },
		{ "rgb(80,210,80)", "JIT" },
	},
	  diff[] = {
		  { "rgb(255,45,45)", "share grew" },
		  { "rgb(255,255,255)", "unchanged" },
		  { "rgb(45,45,255)", "share shrank" },
	  };
	size_t n = fl->base ? ARRAY_SIZE(diff) : ARRAY_SIZE(plain);
	unsigned x = PAD;

	fputs("<g id=\"legend\">\n", f);
	for (size_t i = 0; i < n; i++) {
		const char *fill = fl->base ? diff[i].fill : plain[i].fill;
		const char *what = fl->base ? diff[i].what : plain[i].what;

		fprintf(f,
			"<rect x=\"%u\" y=\"%d\" width=\"12\" height=\"12\" fill=\"%s\" "
			"stroke=\"#999\" stroke-width=\"0.5\"/><text x=\"%u\" y=\"%d\">%s</text>\n",
			x, HEADER - 24, fill, x + 16, HEADER - 14, what);
		x += 16 + (unsigned)(strlen(what) * FONT_SIZE * FONT_WIDTH) + 18;
	}
	fputs("</g>\n", f);
}

static void write_svg(const Flame *fl, const FlameOptions *o, FILE *f)
{
	unsigned width = o->width ? o->width : 1200;
	Layout lo = {
		.f = f,
		.min_width = o->min_width > 0 ? o->min_width : 0.1,
		.total = fl->p->samples,
		.height = HEADER + (fl->max_depth + 1) * FRAME_HEIGHT + FOOTER,
		.icicle = o->icicle,
		.max_change = fl->base ? max_change(fl) : 1,
	};

	lo.scale = lo.total ? (double)(width - 2 * PAD) / lo.total : 0;
	fprintf(f,
		"<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n"
		"<svg version=\"1.1\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%u\" "
		"height=\"%u\" viewBox=\"0 0 %u %u\" onload=\"init()\" data-pad=\"%d\" "
		"data-total=\"%" PRIu64 "\">\n",
		width, lo.height, width, lo.height, PAD, lo.total);
	fputs("<style>\n"
	      "text { font-family: Verdana, sans-serif; font-size: 12px; fill: #000; }\n"
	      "#title { font-size: 17px; text-anchor: middle; }\n"
	      "#subtitle { text-anchor: middle; fill: #555; }\n"
	      "#reset, #search { cursor: pointer; }\n"
	      "g.f { cursor: pointer; }\n"
	      "g.f text { pointer-events: none; }\n"
	      "g.f:hover rect { stroke: #000; stroke-width: 0.5; }\n"
	      "</style>\n<script><![CDATA[\n",
	      f);
	fputs(flame_script, f);
	fputs("]]></script>\n", f);
	fprintf(f, "<rect x=\"0\" y=\"0\" width=\"%u\" height=\"%u\" fill=\"#f8f8f0\"/>\n", width,
		lo.height);
	fprintf(f, "<text id=\"title\" x=\"%u\" y=\"24\">", width / 2);
	xml_text(f, o->title ? o->title : "Flame graph", 256);
	fputs("</text>\n", f);
	if (o->subtitle) {
		fprintf(f, "<text id=\"subtitle\" x=\"%u\" y=\"42\">", width / 2);
		xml_text(f, o->subtitle, 256);
		fputs("</text>\n", f);
	}
	fprintf(f, "<text id=\"reset\" x=\"%d\" y=\"24\" style=\"opacity:0\">Reset Zoom</text>\n",
		PAD);
	fprintf(f, "<text id=\"search\" x=\"%u\" y=\"24\" text-anchor=\"end\">Search</text>\n",
		width - PAD);
	fprintf(f, "<text id=\"matched\" x=\"%u\" y=\"%u\" text-anchor=\"end\"> </text>\n",
		width - PAD, lo.height - 10);
	fprintf(f, "<text id=\"details\" x=\"%d\" y=\"%u\"> </text>\n", PAD, lo.height - 10);
	write_legend(fl, f);
	fputs("<g id=\"frames\">\n", f);
	if (lo.total)
		write_node(fl, &lo, 0, 0);
	fputs("</g>\n</svg>\n", f);
}

int flame_write_svg(const Profile *p, const FlameOptions *o, FILE *f)
{
	Flame fl = { .p = p, .base = o->base };
	int r;

	r = hash_index_new(&fl.index);
	if (r >= 0)
		r = build_tree(&fl);
	if (r >= 0 && fl.base)
		add_base(&fl);
	if (r >= 0)
		r = sort_children(&fl);
	if (r >= 0) {
		write_svg(&fl, o, f);
		if (fflush(f) != 0)
			r = errno > 0 ? -errno : -EIO;
		else if (ferror(f))
			r = -EIO; /* failed earlier; the stream does not say why */
	}
	free(fl.nodes);
	free(fl.children);
	hash_index_free(fl.index);
	return r;
}
