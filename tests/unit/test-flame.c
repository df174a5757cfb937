/* SPDX-License-Identifier: MIT */
/* Flame graph export: the fixture profile written as SVG and its boxes read back (position,
 * width, name, title, colour), hostile names escaped, narrow boxes dropped, write errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flame.h"
#include "profile-fixture.h"

#define WIDTH 1200
#define PAD 10 /* flame.c's */

typedef struct Box {
	char name[128];
	char title[256];
	unsigned long s, n;
	double x, y, width;
	unsigned rgb[3];
} Box;

/* The SVG of p, as a string (caller frees). */
static char *svg_of(const Profile *p, const FlameOptions *o)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	assert_int_equal(flame_write_svg(p, o, f), 0);
	assert_int_equal(fclose(f), 0);
	return buf;
}

/* The text between after and the next end, at most max - 1 bytes, from s; the end of it. */
static const char *between(const char *s, const char *after, const char *end, char *out, size_t max)
{
	const char *a = strstr(s, after), *b;

	assert_non_null(a);
	a += strlen(after);
	b = strstr(a, end);
	assert_non_null(b);
	assert_true((size_t)(b - a) < max);
	memcpy(out, a, (size_t)(b - a));
	out[b - a] = '\0';
	return b;
}

/* The boxes of an SVG in document order; their number in *ret_n. */
static Box *boxes_of(const char *svg, size_t *ret_n)
{
	Box *boxes = NULL;
	size_t n = 0;
	char tmp[64];

	for (const char *g = strstr(svg, "<g class=\"f\""); g;
	     g = strstr(g + 1, "<g class=\"f\"")) {
		const char *end = strstr(g, "</g>");
		Box *b;

		assert_non_null(end);
		boxes = realloc(boxes, (n + 1) * sizeof(Box));
		assert_non_null(boxes);
		b = &boxes[n++];
		between(g, "data-s=\"", "\"", tmp, sizeof(tmp));
		b->s = strtoul(tmp, NULL, 10);
		between(g, "data-n=\"", "\"", tmp, sizeof(tmp));
		b->n = strtoul(tmp, NULL, 10);
		between(g, "data-name=\"", "\"", b->name, sizeof(b->name));
		between(g, "<title>", "</title>", b->title, sizeof(b->title));
		between(g, "<rect x=\"", "\"", tmp, sizeof(tmp));
		b->x = strtod(tmp, NULL);
		between(g, " y=\"", "\"", tmp, sizeof(tmp));
		b->y = strtod(tmp, NULL);
		between(g, " width=\"", "\"", tmp, sizeof(tmp));
		b->width = strtod(tmp, NULL);
		between(g, " fill=\"rgb(", ")\"", tmp, sizeof(tmp));
		assert_int_equal(sscanf(tmp, "%u,%u,%u", &b->rgb[0], &b->rgb[1], &b->rgb[2]), 3);
		assert_true(strstr(g, "</g>") == end); /* one box does not run into the next */
	}
	*ret_n = n;
	return boxes;
}

static const Box *box_named(const Box *boxes, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (streq(boxes[i].name, name))
			return &boxes[i];
	fail_msg("no box named %s", name);
	return NULL;
}

static void assert_width(const Box *b, unsigned long samples, unsigned long total)
{
	double want = (double)(WIDTH - 2 * PAD) * samples / total;

	assert_int_equal(b->n, samples);
	assert_true(b->width > want - 0.01 && b->width < want + 0.01);
}

static void test_boxes(void **state)
{
	_cleanup_(profile_freep) Profile *p = fixture_profile_of(fixture_answer);
	_cleanup_free_ char *svg = svg_of(p, &(FlameOptions){ .subtitle = "pid 100 (prog)" });
	_cleanup_free_ Box *boxes = NULL;
	const Box *all, *trunc, *main_, *kfunc, *other, *work, *hot;
	size_t n;

	(void)state;
	assert_true(strncmp(svg, "<?xml version=\"1.0\"", 19) == 0);
	assert_non_null(strstr(svg, "<svg version=\"1.1\" xmlns=\"http://www.w3.org/2000/svg\""));
	assert_non_null(strstr(svg, ">pid 100 (prog)</text>"));
	assert_non_null(strstr(svg, "<script><![CDATA["));
	assert_null(strstr(svg, "href")); /* self-contained: nothing to fetch */
	assert_true(strlen(svg) > 7 && streq(svg + strlen(svg) - 7, "</svg>\n"));

	/* main's three lines are one box; all, [truncated], main, kfunc, other, work, hot */
	boxes = boxes_of(svg, &n);
	assert_int_equal(n, 7);
	all = box_named(boxes, n, "all");
	trunc = box_named(boxes, n, "[truncated]");
	main_ = box_named(boxes, n, "main");
	kfunc = box_named(boxes, n, "kfunc");
	other = box_named(boxes, n, "other");
	work = box_named(boxes, n, "work");
	hot = box_named(boxes, n, "hot");

	assert_width(all, 105, 105);
	assert_width(trunc, 5, 105);
	assert_width(main_, 100, 105);
	assert_width(kfunc, 30, 105);
	assert_width(other, 10, 105);
	assert_width(work, 60, 105);
	assert_width(hot, 60, 105);
	assert_string_equal(all->title, "all 105 samples, 100.00%");
	assert_string_equal(work->title, "work (prog) 60 samples, 57.14%");
	assert_string_equal(kfunc->title, "kfunc ([kernel.kallsyms]) 30 samples, 28.57%");
	assert_string_equal(trunc->title, "[truncated] 5 samples, 4.76%");

	/* children in name order from their parent's left edge: "[" sorts before "m" */
	assert_int_equal(all->s, 0);
	assert_int_equal(trunc->s, 0);
	assert_int_equal(main_->s, 5);
	assert_int_equal(kfunc->s, 5);
	assert_int_equal(other->s, 35);
	assert_int_equal(work->s, 45);
	assert_int_equal(hot->s, 45);
	assert_true(work->x > other->x && other->x > kfunc->x);
	assert_true(fabs(work->x - (PAD + 45.0 * (WIDTH - 2 * PAD) / 105)) < 0.01);

	/* roots at the bottom, callees a row above their caller */
	assert_true(all->y > main_->y && main_->y > work->y && work->y > hot->y);
	assert_true(fabs(work->y - kfunc->y) < 0.01 && fabs(main_->y - trunc->y) < 0.01);
	assert_true(fabs((main_->y - work->y) - (work->y - hot->y)) < 0.01);

	/* colours: the kernel blue-green, inlined aqua, user code warm */
	assert_true(kfunc->rgb[2] >= 200 && kfunc->rgb[0] < 120);
	assert_true(hot->rgb[1] >= 200 && hot->rgb[2] >= 200 && hot->rgb[0] < 140);
	assert_true(work->rgb[0] >= 205 && work->rgb[2] <= 55);
}

/* Python functions are boxes of their own, named by function, apart from the interpreter's
 * functions of the same name (main of run.py, main of python3.11), in a hue of their own. */
static void test_python(void **state)
{
	_cleanup_(profile_freep) Profile *p = fixture_profile_of(fixture_python_answer);
	_cleanup_free_ char *svg = svg_of(p, &(FlameOptions){ 0 });
	_cleanup_free_ Box *boxes = NULL;
	const Box *parse = NULL, *main_py = NULL, *main_c = NULL, *unnamed, *cmp;
	size_t n;

	(void)state;
	boxes = boxes_of(svg, &n);
	/* all, libc, main, PyEval_EvalCode, main, Worker.parse, list_contains,
	 * long_richcompare, [python] */
	assert_int_equal(n, 9);
	for (size_t i = 0; i < n; i++) {
		if (streq(boxes[i].name, "Worker.parse"))
			parse = &boxes[i];
		else if (streq(boxes[i].name, "main") &&
			 strstr(boxes[i].title, "(/srv/app/run.py)"))
			main_py = &boxes[i];
		else if (streq(boxes[i].name, "main"))
			main_c = &boxes[i];
	}
	assert_non_null(parse);
	assert_non_null(main_py);
	assert_non_null(main_c);
	unnamed = box_named(boxes, n, "[python]");
	cmp = box_named(boxes, n, "long_richcompare");
	/* Worker.parse's two lines are one box, over main of run.py, over PyEval_EvalCode */
	assert_width(parse, 70, 80);
	/* hover: a Python function's file where other functions have their module */
	assert_string_equal(parse->title, "Worker.parse (/srv/app/worker.py) 70 samples, 87.50%");
	assert_width(main_py, 70, 80);
	assert_width(main_c, 80, 80);
	assert_width(unnamed, 10, 80);
	assert_true(main_c->y > main_py->y && main_py->y > parse->y && parse->y > cmp->y);
	assert_true(fabs(main_py->y - unnamed->y) < 0.01);
	/* violet for Python, and for nothing else; the interpreter's C code warm */
	for (const Box *b = boxes; b < boxes + n; b++) {
		bool python = b == parse || b == main_py || b == unnamed;

		assert_true((b->rgb[0] >= 150 && b->rgb[1] < 150 && b->rgb[2] >= 200) == python);
	}
	assert_true(cmp->rgb[0] >= 205 && cmp->rgb[2] <= 55);
}

/* Every module's code is <module>: the code of two files called from one place is two boxes. */
static void test_python_modules(void **state)
{
	_cleanup_(profile_freep) Profile *p = fixture_profile_of(
		"{\"pid\": 7, \"samples\": 4, \"period_ns\": 1000000, \"frames\": ["
		" {\"function\": \"<module>\", \"module\": \"[python]\", \"file\": \"/a.py\","
		"  \"line\": 1, \"python\": true},"
		" {\"function\": \"<module>\", \"module\": \"[python]\", \"file\": \"/b.py\","
		"  \"line\": 1, \"python\": true},"
		" {\"function\": \"exec\", \"module\": \"python3.11\"}],"
		" \"stacks\": [{\"frames\": [0, 2], \"samples\": 3},"
		"  {\"frames\": [1, 2], \"samples\": 1}]}");
	_cleanup_free_ char *svg = svg_of(p, &(FlameOptions){ 0 });
	_cleanup_free_ Box *boxes = NULL;
	size_t n, modules = 0;

	(void)state;
	boxes = boxes_of(svg, &n);
	assert_int_equal(n, 4); /* all, exec, two <module>s */
	for (size_t i = 0; i < n; i++) {
		if (!streq(boxes[i].name, "&lt;module&gt;"))
			continue;
		modules++;
		assert_true(boxes[i].n == (strstr(boxes[i].title, "/a.py") ? 3 : 1));
	}
	assert_int_equal(modules, 2);
}

/* Valid UTF-8 throughout, no C0 control but newline and tab. */
static void assert_xml_chars(const char *s)
{
	const unsigned char *c = (const unsigned char *)s;

	while (*c) {
		size_t n = *c < 0x80		 ? 1
			   : (*c & 0xe0) == 0xc0 ? 2
			   : (*c & 0xf0) == 0xe0 ? 3
			   : (*c & 0xf8) == 0xf0 ? 4
						 : 0;

		assert_true(n > 0);
		assert_true(*c >= 0x20 || *c == '\n' || *c == '\t');
		for (size_t i = 1; i < n; i++)
			assert_true((c[i] & 0xc0) == 0x80);
		c += n;
	}
}

static void rename_frame(Profile *p, uint32_t frame, const char *name)
{
	free(p->frames[frame].function);
	p->frames[frame].function = strdup(name);
	assert_non_null(p->frames[frame].function);
}

static void test_hostile_names(void **state)
{
	_cleanup_(profile_freep) Profile *p = fixture_profile_of(fixture_answer);
	_cleanup_free_ char *svg = NULL;
	_cleanup_free_ Box *boxes = NULL;
	size_t n;

	(void)state;
	rename_frame(p, 1, "a<b>&\"'c</title></g><script>x()</script>"); /* work */
	rename_frame(p, 6, "bad\xff\xfe utf8\x01\x1b[31m ok \xc3\xa9");	 /* other */
	rename_frame(p, 4, "]]><!--");					 /* kfunc */
	free(p->frames[4].module);
	p->frames[4].module = strdup("m&m");
	assert_non_null(p->frames[4].module);

	svg = svg_of(p, &(FlameOptions){ .title = "<T&T>" });
	assert_xml_chars(svg);
	assert_null(strstr(svg, "<script>x()"));
	assert_non_null(strstr(svg, ">&lt;T&amp;T&gt;</text>"));
	boxes = boxes_of(svg, &n);
	assert_int_equal(n, 7);
	box_named(boxes, n,
		  "a&lt;b&gt;&amp;&quot;&apos;c&lt;/title&gt;&lt;/g&gt;&lt;script&gt;x()&lt;/"
		  "script&gt;");
	box_named(boxes, n, "bad?? utf8??[31m ok \xc3\xa9");
	assert_string_equal(box_named(boxes, n, "]]&gt;&lt;!--")->title,
			    "]]&gt;&lt;!-- (m&amp;m) 30 samples, 28.57%");
	/* the only CDATA section is the script's, and it ends once */
	assert_non_null(strstr(svg, "]]></script>"));
	assert_null(strstr(strstr(svg, "]]></script>") + 1, "]]>"));
}

static void test_long_name_shortened(void **state)
{
	_cleanup_(profile_freep) Profile *p = fixture_profile_of(fixture_answer);
	_cleanup_free_ char *svg = NULL;
	char long_name[400], text[2048];
	const char *at;

	(void)state;
	memset(long_name, 'x', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	rename_frame(p, 6, long_name); /* other: 10 of 105 samples, 112 px at 1200 */
	svg = svg_of(p, &(FlameOptions){ 0 });
	at = strstr(svg, "data-name=\"xxx");
	assert_non_null(at);
	between(at, "\">", "</text>", text, sizeof(text)); /* the text after <text x y> */
	at = strrchr(text, '>');
	assert_non_null(at);
	at++;
	/* as many characters as fit in 112 px of 12 px Verdana, the last two ".." */
	assert_true(strlen(at) >= 10 && strlen(at) < 20);
	assert_string_equal(at + strlen(at) - 2, "..");
}

static void test_min_width(void **state)
{
	_cleanup_(profile_freep) Profile *p = fixture_profile_of(fixture_answer);
	_cleanup_free_ char *svg = svg_of(p, &(FlameOptions){ .min_width = 200 });
	_cleanup_free_ Box *boxes = NULL;
	size_t n;

	(void)state;
	/* other (112 px) and [truncated] (56 px) dropped; kfunc (337 px) and the rest kept */
	boxes = boxes_of(svg, &n);
	assert_int_equal(n, 5);
	assert_null(strstr(svg, "data-name=\"other\""));
	assert_null(strstr(svg, "data-name=\"[truncated]\""));
	box_named(boxes, n, "kfunc");
	box_named(boxes, n, "hot");
}

static void test_empty(void **state)
{
	_cleanup_(profile_freep) Profile *p = fixture_profile_of(
		"{\"pid\": 7, \"comm\": \"idle\", \"samples\": 0, \"truncated_samples\": 0,"
		" \"period_ns\": 10101010, \"start_ns\": 0, \"end_ns\": 0,"
		" \"frames\": [], \"stacks\": []}");
	_cleanup_free_ char *svg = svg_of(p, &(FlameOptions){ .width = 600 });
	size_t n;

	(void)state;
	assert_non_null(strstr(svg, "width=\"600\""));
	assert_null(boxes_of(svg, &n));
	assert_int_equal(n, 0);
	assert_true(streq(svg + strlen(svg) - 7, "</svg>\n"));
}

static void test_write_error(void **state)
{
	_cleanup_(profile_freep) Profile *p = fixture_profile_of(fixture_answer);
	FILE *f = fopen("/dev/full", "we");

	(void)state;
	assert_non_null(f);
	assert_int_equal(flame_write_svg(p, &(FlameOptions){ 0 }, f), -ENOSPC);
	fclose(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_boxes),
		cmocka_unit_test(test_python),
		cmocka_unit_test(test_python_modules),
		cmocka_unit_test(test_hostile_names),
		cmocka_unit_test(test_long_name_shortened),
		cmocka_unit_test(test_min_width),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_write_error),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
