/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <math.h>
#include <stdbool.h>

#include "base/json-util.h"
#include "base/macro.h"
#include "memplot.h"

#define WIDTH 960
#define HEIGHT 480
#define LEFT 80
#define RIGHT 30
#define TOP 60
#define BOTTOM 50
#define MIB (1024.0 * 1024.0)
/* Points plotted at most (an answer holds one a second: an hour is 3600). */
#define POINTS_MAX 100000

typedef struct Pt {
	double t, rss, anon;
} Pt;

/* Text from the answer as XML: markup escaped, control bytes and non-ASCII as '?'. */
static void xml_text(FILE *f, const char *s, size_t max)
{
	for (size_t i = 0; s && s[i] && i < max; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '&')
			fputs("&amp;", f);
		else if (c == '<')
			fputs("&lt;", f);
		else if (c == '>')
			fputs("&gt;", f);
		else if (c == '"')
			fputs("&quot;", f);
		else if (c < 0x20 || c >= 0x7f)
			fputc('?', f);
		else
			fputc(c, f);
	}
}

static double num(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !v)
		return NAN;
	return json_object_get_double(v);
}

/* A round step for an axis spanning span, about n ticks. */
static double tick_step(double span, int n)
{
	double raw = span / n, mag = pow(10, floor(log10(raw))), r = raw / mag;

	return (r < 1.5 ? 1 : r < 3.5 ? 2 : r < 7.5 ? 5 : 10) * mag;
}

static void axes(FILE *f, double t_span, double y_max)
{
	double ts = tick_step(t_span, 8), ys = tick_step(y_max, 6);
	int pw = WIDTH - LEFT - RIGHT, ph = HEIGHT - TOP - BOTTOM;

	fprintf(f, "<g stroke=\"#ccc\" font-size=\"12\" fill=\"#333\">\n");
	for (int i = 0; i <= 100 && i * ys <= y_max * 1.0001; i++) {
		double y = TOP + ph - i * ys / y_max * ph;

		fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/>\n", LEFT, y,
			WIDTH - RIGHT, y);
		fprintf(f,
			"<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\" stroke=\"none\">%g</text>\n",
			LEFT - 6, y + 4, i * ys);
	}
	for (int i = 0; i <= 100 && i * ts <= t_span * 1.0001; i++) {
		double x = LEFT + i * ts / t_span * pw;

		fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\"/>\n", x, TOP, x,
			TOP + ph);
		fprintf(f,
			"<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" "
			"stroke=\"none\">%g</text>\n",
			x, TOP + ph + 18, i * ts);
	}
	fprintf(f, "</g>\n");
	fprintf(f,
		"<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" font-size=\"13\">time (s)</text>\n",
		LEFT + pw / 2, HEIGHT - 10);
	fprintf(f,
		"<text x=\"18\" y=\"%d\" font-size=\"13\" transform=\"rotate(-90 18 %d)\" "
		"text-anchor=\"middle\">MiB</text>\n",
		TOP + ph / 2, TOP + ph / 2);
}

static int read_points(json_object *answer, Pt **ret, size_t *ret_n)
{
	json_object *arr = json_object_object_get(answer, "points");
	size_t n = arr ? MIN(json_object_array_length(arr), (size_t)POINTS_MAX) : 0, k = 0;
	Pt *pts = calloc(MAX(n, (size_t)1), sizeof(Pt));

	if (!pts)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		json_object *p = json_object_array_get_idx(arr, i);
		Pt v = { num(p, "time"), num(p, "rss_bytes") / MIB, num(p, "anon_bytes") / MIB };

		if (!isfinite(v.t) || !isfinite(v.rss) || v.rss < 0 || !isfinite(v.anon) ||
		    v.anon < 0 || (k > 0 && v.t < pts[k - 1].t))
			continue;
		pts[k++] = v;
	}
	*ret = pts;
	*ret_n = k;
	return 0;
}

int memplot_write(json_object *answer, FILE *f)
{
	_cleanup_free_ Pt *pts = NULL;
	double t0, t_span, y_max, peak = num(answer, "peak_rss_bytes") / MIB;
	double peak_t = num(answer, "peak_time"), oom_t = num(answer, "oom_time");
	int pw = WIDTH - LEFT - RIGHT, ph = HEIGHT - TOP - BOTTOM;
	size_t n;
	int r;

	r = read_points(answer, &pts, &n);
	if (r < 0)
		return r;
	t0 = n ? pts[0].t : 0;
	t_span = n ? pts[n - 1].t - t0 : 0;
	if (isfinite(peak_t) && n && peak_t >= t0)
		t_span = MAX(t_span, peak_t - t0);
	if (t_span <= 0)
		t_span = 1;
	y_max = isfinite(peak) && peak > 0 ? peak : 0;
	for (size_t i = 0; i < n; i++)
		y_max = MAX(y_max, pts[i].rss);
	y_max = y_max > 0 ? y_max * 1.1 : 1;
#define X(t) (LEFT + ((t)-t0) / t_span * pw)
#define Y(v) (TOP + ph - (v) / y_max * ph)
	fprintf(f,
		"<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n"
		"<svg version=\"1.1\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
		"height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"Verdana, sans-serif\">\n"
		"<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>\n",
		WIDTH, HEIGHT, WIDTH, HEIGHT);
	fprintf(f,
		"<text x=\"%d\" y=\"24\" font-size=\"17\" text-anchor=\"middle\">"
		"Resident set of pid %lld (",
		WIDTH / 2, (long long)json_get_int(answer, "pid"));
	xml_text(f, json_get_string(answer, "comm"), 64);
	fprintf(f,
		")</text>\n<text x=\"%d\" y=\"44\" font-size=\"12\" text-anchor=\"middle\" "
		"fill=\"#555\">",
		WIDTH / 2);
	xml_text(f, json_get_string(answer, "cmdline"), 120);
	fprintf(f, "</text>\n");
	axes(f, t_span, y_max);
	if (n > 0) {
		/* Anonymous memory shaded, the resident set as a line (steps: a point holds until
		 * the next). */
		fprintf(f, "<path id=\"anon\" fill=\"#9ecae1\" fill-opacity=\"0.6\" d=\"M%.1f %.1f",
			X(pts[0].t), Y(0));
		for (size_t i = 0; i < n; i++)
			fprintf(f, " L%.1f %.1f L%.1f %.1f", X(pts[i].t), Y(pts[i].anon),
				X(i + 1 < n ? pts[i + 1].t : pts[i].t), Y(pts[i].anon));
		fprintf(f, " L%.1f %.1f Z\"/>\n", X(pts[n - 1].t), Y(0));
		fprintf(f,
			"<path id=\"rss\" fill=\"none\" stroke=\"#08519c\" stroke-width=\"2\" "
			"d=\"M%.1f %.1f",
			X(pts[0].t), Y(pts[0].rss));
		for (size_t i = 1; i < n; i++)
			fprintf(f, " L%.1f %.1f L%.1f %.1f", X(pts[i].t), Y(pts[i - 1].rss),
				X(pts[i].t), Y(pts[i].rss));
		fprintf(f, "\"/>\n");
	}
	if (isfinite(peak) && peak > 0) {
		double px = isfinite(peak_t) && n && peak_t >= t0 ? X(peak_t) : LEFT;

		fprintf(f,
			"<g id=\"peak\"><line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" "
			"stroke=\"#e6550d\" stroke-dasharray=\"4 3\"/>"
			"<circle cx=\"%.1f\" cy=\"%.1f\" r=\"5\" fill=\"#e6550d\"/>"
			"<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" fill=\"#e6550d\" "
			"text-anchor=\"%s\">peak %.1f MiB</text></g>\n",
			LEFT, Y(peak), WIDTH - RIGHT, Y(peak), px, Y(peak), px, Y(peak) - 9,
			px > WIDTH - 150 ? "end" : "start", peak);
	}
	if (isfinite(oom_t) && n && oom_t >= t0)
		fprintf(f,
			"<g id=\"oom\"><line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" "
			"stroke=\"#de2d26\" stroke-width=\"2\"/><text x=\"%.1f\" y=\"%d\" "
			"font-size=\"12\" fill=\"#de2d26\" text-anchor=\"end\">OOM "
			"kill</text></g>\n",
			X(oom_t), TOP, X(oom_t), TOP + ph, X(oom_t) - 4, TOP + 14);
	fprintf(f,
		"<text x=\"%d\" y=\"%d\" font-size=\"11\" fill=\"#555\">RSS (line), "
		"anonymous (shaded); %zu points</text>\n",
		LEFT + 4, TOP - 4, n);
	fprintf(f, "</svg>\n");
#undef X
#undef Y
	if (ferror(f))
		return -EIO;
	return 0;
}
