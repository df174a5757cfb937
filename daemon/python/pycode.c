/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/macro.h"
#include "python/pycode.h"

/* The most of a code object or str header read at once (3.13's code object: 208 bytes). */
#define OBJECT_READ_MAX 4096u
/* CPython's own limit on a str's length is PY_SSIZE_T_MAX; anything beyond this is garbage. */
#define STRING_LENGTH_MAX (1ull << 40)

uint32_t py_ident_hash(const void *bytes16)
{
	__u64 w[2];

	memcpy(w, bytes16, sizeof(w));
	return profq_py_ident_hash(w);
}

static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static uint32_t get_u32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static bool field_fits(uint32_t off, uint32_t width, uint32_t size)
{
	return off <= size && width <= size - off;
}

/* Appends code point c as UTF-8; lone surrogates and NUL become U+FFFD (names stay C strings
 * and valid UTF-8). */
static size_t put_utf8(char *out, uint32_t c)
{
	if (c == 0 || (c >= 0xd800 && c <= 0xdfff))
		c = 0xfffd;
	if (c < 0x80) {
		out[0] = (char)c;
		return 1;
	}
	if (c < 0x800) {
		out[0] = (char)(0xc0 | (c >> 6));
		out[1] = (char)(0x80 | (c & 0x3f));
		return 2;
	}
	if (c < 0x10000) {
		out[0] = (char)(0xe0 | (c >> 12));
		out[1] = (char)(0x80 | ((c >> 6) & 0x3f));
		out[2] = (char)(0x80 | (c & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | (c >> 18));
	out[1] = (char)(0x80 | ((c >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((c >> 6) & 0x3f));
	out[3] = (char)(0x80 | (c & 0x3f));
	return 4;
}

/* n characters of `kind` bytes each, as UTF-8. */
static int to_utf8(const uint8_t *data, size_t n, unsigned kind, bool ascii, char **ret)
{
	_cleanup_free_ char *out = malloc(n * 4 + 1);
	size_t o = 0;

	if (!out)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		uint32_t c = kind == 1	 ? data[i]
			     : kind == 2 ? (uint32_t)(data[2 * i] | data[2 * i + 1] << 8)
					 : get_u32(data + 4 * i);

		if ((ascii && c >= 0x80) || c > 0x10ffff)
			return -EINVAL;
		o += put_utf8(out + o, c);
	}
	out[o] = '\0';
	*ret = TAKE_PTR(out);
	return 0;
}

/* A compact str object at addr, as UTF-8 (cut at PY_STRING_MAX characters). */
static int read_str(const PyLayout *l, PyReadFn read, void *userdata, uint64_t addr, char **ret)
{
	uint8_t hdr[OBJECT_READ_MAX], data[PY_STRING_MAX * 4];
	uint32_t state, kind, data_off;
	uint64_t length;
	size_t n;
	int r;

	if (l->unicode_compact_data > sizeof(hdr) ||
	    l->unicode_ascii_data > l->unicode_compact_data ||
	    !field_fits(l->unicode_state, 4, l->unicode_ascii_data) ||
	    !field_fits(l->unicode_length, 8, l->unicode_ascii_data))
		return -EINVAL;
	r = read(userdata, addr, hdr, l->unicode_ascii_data);
	if (r < 0)
		return r;
	state = get_u32(hdr + l->unicode_state);
	length = get_u64(hdr + l->unicode_length);
	kind = (state >> PY_UNICODE_KIND_SHIFT) & PY_UNICODE_KIND_MASK;
	if (!(state & PY_UNICODE_COMPACT) || (kind != 1 && kind != 2 && kind != 4) ||
	    ((state & PY_UNICODE_ASCII) && kind != 1) || length > STRING_LENGTH_MAX)
		return -EINVAL;
	data_off = state & PY_UNICODE_ASCII ? l->unicode_ascii_data : l->unicode_compact_data;
	n = length < PY_STRING_MAX ? (size_t)length : PY_STRING_MAX;
	if (n > 0) {
		r = read(userdata, addr + data_off, data, n * kind);
		if (r < 0)
			return r;
	}
	return to_utf8(data, n, kind, state & PY_UNICODE_ASCII, ret);
}

/* A bytes object at addr: a malloc'd copy of its bytes (NULL when empty). */
static int read_bytes(const PyLayout *l, PyReadFn read, void *userdata, uint64_t addr,
		      uint8_t **ret, size_t *ret_len)
{
	uint8_t hdr[OBJECT_READ_MAX];
	_cleanup_free_ uint8_t *copy = NULL;
	uint64_t size;
	int r;

	if (l->bytes_data > sizeof(hdr) || !field_fits(l->bytes_size, 8, l->bytes_data))
		return -EINVAL;
	r = read(userdata, addr, hdr, l->bytes_data);
	if (r < 0)
		return r;
	size = get_u64(hdr + l->bytes_size);
	if (size > PY_LINETABLE_MAX)
		return -EINVAL;
	if (size > 0) {
		copy = malloc(size);
		if (!copy)
			return -ENOMEM;
		r = read(userdata, addr + l->bytes_data, copy, size);
		if (r < 0)
			return r;
	}
	*ret = TAKE_PTR(copy);
	*ret_len = size;
	return 0;
}

/* A live object's reference count is from 1 to immortal (below 2^32 in every version); a freed
 * one's first word holds the allocator's free-list link: NULL, or a pointer, most often above
 * 4 GiB (not always: glibc's links into a low heap). A hint, not a proof: see same_code(). */
static bool alive(const uint8_t *obj)
{
	uint64_t refcnt = get_u64(obj);

	return refcnt >= 1 && refcnt <= UINT32_MAX;
}

/* Whether the code object read again (now) is still the one whose fields were read (then). */
static bool same_code(const PyLayout *l, uint32_t name_off, const uint8_t *then, const uint8_t *now)
{
	const uint32_t ptrs[] = { PY_OBJECT_TYPE, name_off, l->code_filename, l->code_linetable };

	for (size_t i = 0; i < sizeof(ptrs) / sizeof(ptrs[0]); i++)
		if (get_u64(then + ptrs[i]) != get_u64(now + ptrs[i]))
			return false;
	return alive(now) &&
	       memcmp(then + l->bpf.code_ident, now + l->bpf.code_ident, PROFQ_PY_IDENT_LEN) == 0;
}

int pycode_read(const PyLayout *l, PyReadFn read, void *userdata, uint64_t addr, uint64_t code_type,
		PyCode *ret)
{
	uint8_t obj[OBJECT_READ_MAX], again[OBJECT_READ_MAX];
	uint32_t name_off = l->code_qualname != PY_OFFSET_NONE ? l->code_qualname : l->code_name;
	PyCode c = { 0 };
	int32_t firstlineno;
	int r;

	if (l->code_size > sizeof(obj) || !field_fits(PY_OBJECT_TYPE, 8, l->code_size) ||
	    !field_fits(name_off, 8, l->code_size) ||
	    !field_fits(l->code_filename, 8, l->code_size) ||
	    !field_fits(l->code_linetable, 8, l->code_size) ||
	    !field_fits(l->code_firstlineno, 4, l->code_size) ||
	    !field_fits(l->bpf.code_ident, PROFQ_PY_IDENT_LEN, l->code_size))
		return -EINVAL;
	r = read(userdata, addr, obj, l->code_size);
	if (r < 0)
		return r;
	if (get_u64(obj + PY_OBJECT_TYPE) != code_type)
		return -EINVAL;
	if (!alive(obj))
		return -ESTALE;
	firstlineno = (int32_t)get_u32(obj + l->code_firstlineno);
	if (firstlineno < 0)
		return -EINVAL;
	c.firstlineno = (uint32_t)firstlineno;
	c.ident = py_ident_hash(obj + l->bpf.code_ident);

	r = read_str(l, read, userdata, get_u64(obj + name_off), &c.qualname);
	if (r >= 0)
		r = read_str(l, read, userdata, get_u64(obj + l->code_filename), &c.filename);
	if (r >= 0)
		r = read_bytes(l, read, userdata, get_u64(obj + l->code_linetable), &c.linetable,
			       &c.linetable_len);
	/* Freed or reused while its strings were read: they may be another object's by now. */
	if (r >= 0)
		r = read(userdata, addr, again, l->code_size);
	if (r >= 0 && !same_code(l, name_off, obj, again))
		r = -ESTALE;
	if (r < 0) {
		pycode_done(&c);
		return r;
	}
	*ret = c;
	return 0;
}

void pycode_done(PyCode *c)
{
	free(c->qualname);
	free(c->filename);
	free(c->linetable);
	*c = (PyCode){ 0 };
}

/* A line as the API returns it: CPython's -1 (no line) and anything out of range as 0. */
static uint32_t line_result(int64_t line)
{
	return line > 0 && line <= UINT32_MAX ? (uint32_t)line : 0;
}

/* 3.8, 3.9: PyCode_Addr2Line over co_lnotab. */
static uint32_t line_lnotab(const uint8_t *t, size_t len, int64_t line, uint32_t offset)
{
	uint64_t addr = 0;

	for (size_t i = 0; i + 1 < len; i += 2) {
		addr += t[i];
		if (addr > offset)
			break;
		line += (int8_t)t[i + 1];
	}
	return line_result(line);
}

/* 3.10: _PyCode_CheckLineNumber over PEP 626 pairs; zero-width ranges are skipped, as
 * PyLineTable_NextAddressRange does. */
static uint32_t line_310(const uint8_t *t, size_t len, int64_t computed, uint32_t offset)
{
	uint64_t start, end = 0;

	for (size_t i = 0; i + 1 < len; i += 2) {
		int8_t ldelta = (int8_t)t[i + 1];
		int64_t line = -1;

		start = end;
		end += t[i];
		if (ldelta != -128) {
			computed += ldelta;
			line = computed;
		}
		if (end > offset && end != start)
			return line_result(line);
	}
	return 0;
}

/* A varint of the location table at t[*i] (6 bits a byte, bit 6: more), within len. */
static int scan_varint(const uint8_t *t, size_t len, size_t i, uint32_t *ret)
{
	uint32_t val = 0;

	for (unsigned shift = 0; shift < 32; shift += 6, i++) {
		if (i >= len)
			return -EINVAL;
		val |= (uint32_t)(t[i] & 63) << shift;
		if (!(t[i] & 64)) {
			*ret = val;
			return 0;
		}
	}
	return -EINVAL;
}

/* The line delta of the location entry at t[i] (get_line_delta in Objects/codeobject.c). */
static int line_delta_311(const uint8_t *t, size_t len, size_t i, int64_t *ret)
{
	unsigned code = (t[i] >> 3) & 15;
	uint32_t u;

	switch (code) {
	case 13: /* PY_CODE_LOCATION_INFO_NO_COLUMNS */
	case 14: /* PY_CODE_LOCATION_INFO_LONG */
		if (scan_varint(t, len, i + 1, &u) < 0)
			return -EINVAL;
		*ret = u & 1 ? -(int64_t)(u >> 1) : (int64_t)(u >> 1);
		return 0;
	case 10: /* PY_CODE_LOCATION_INFO_ONE_LINE0..2 */
	case 11:
	case 12:
		*ret = code - 10;
		return 0;
	default: /* short forms and NONE (15): the same line */
		*ret = 0;
		return 0;
	}
}

/* 3.11+: _PyCode_CheckLineNumber over the location table; an entry covers (b & 7) + 1 code
 * units and starts with a byte with bit 7 set. */
static uint32_t line_311(const uint8_t *t, size_t len, int64_t computed, uint32_t offset)
{
	uint64_t start, end = 0;
	size_t i = 0;

	if (len == 0 || !(t[0] & 128))
		return 0;
	while (i < len) {
		int64_t delta, line;

		if (line_delta_311(t, len, i, &delta) < 0)
			return 0;
		computed += delta;
		line = (t[i] >> 3) == 0x1f ? -1 : computed;
		start = end;
		end += ((t[i] & 7) + 1) * 2;
		do
			i++;
		while (i < len && !(t[i] & 128));
		if (end > offset && end != start)
			return line_result(line);
	}
	return 0;
}

uint32_t pycode_line(const PyLayout *l, const uint8_t *table, size_t len, uint32_t firstlineno,
		     uint32_t offset)
{
	if ((int32_t)offset < 0)
		return firstlineno;
	if (len > PY_LINETABLE_MAX)
		len = PY_LINETABLE_MAX;
	switch (l->line_format) {
	case PY_LINES_LNOTAB:
		return line_lnotab(table, len, firstlineno, offset);
	case PY_LINES_310:
		return line_310(table, len, firstlineno, offset);
	case PY_LINES_311:
		return line_311(table, len, firstlineno, offset);
	default:
		return 0;
	}
}

static int read_u64(PyReadFn read, void *userdata, uint64_t addr, uint64_t *ret)
{
	return read(userdata, addr, ret, sizeof(*ret));
}

int pythreads_read(const PyLayout *l, PyReadFn read, void *userdata, uint64_t runtime,
		   PyThreadRef *out, size_t *ret_n)
{
	size_t n = 0, steps = 0;
	uint64_t interp;
	int r;

	r = read_u64(read, userdata, runtime + l->runtime_interpreters_head, &interp);
	for (unsigned k = 0; r >= 0 && interp && k < PY_INTERPRETERS_MAX; k++) {
		uint64_t tstate;

		r = read_u64(read, userdata, interp + l->interp_threads_head, &tstate);
		/* Steps, not states kept, bound the walk: a list looping through a state with no
		 * thread id adds none. */
		while (r >= 0 && tstate && steps++ < PY_THREADS_MAX) {
			out[n].tstate = tstate;
			r = read_u64(read, userdata, tstate + l->bpf.tstate_thread_id,
				     &out[n].thread);
			if (r >= 0)
				r = read_u64(read, userdata, tstate + l->tstate_next, &tstate);
			if (r >= 0 && out[n].thread)
				n++;
		}
		if (r >= 0)
			r = read_u64(read, userdata, interp + l->interp_next, &interp);
	}
	*ret_n = n;
	return r < 0 ? r : 0;
}
