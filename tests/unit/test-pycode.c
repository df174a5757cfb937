/* SPDX-License-Identifier: MIT */
/*
 * Code objects and line tables against the interpreters themselves, for every pyenv build of
 * 3.8 to 3.13 installed (others are skipped, with the reason printed):
 *   - pycode_line() against the version's own PyCode_Addr2Line() (called through ctypes by
 *     fixtures/pycode-dump.py) at every instruction of a module of awkward functions;
 *   - pycode_read() on code objects of a live interpreter, read through /proc/PID/mem, against
 *     what the interpreter says of them (3.13: with the layout from its _Py_DebugOffsets, read
 *     the same way); and its stack, walked from the thread state as the BPF program does, each
 *     frame named by code object and line as CPython's frame objects name it.
 * Plus hostile code objects in a fake memory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <sys/wait.h>

#include "pyenv.h"
#include "python/pycode.h"

#define LINE_MAX_LEN (1u << 20)

static bool python_path(unsigned minor, char *buf, size_t size)
{
	char prefix[600];

	if (!pyenv_prefix(minor, prefix, sizeof(prefix))) {
		printf("SKIP 3.%u: no pyenv build of it installed\n", minor);
		return false;
	}
	return snprintf(buf, size, "%s/bin/python3.%u", prefix, minor) < (int)size;
}

static size_t unhex(const char *hex, uint8_t *out, size_t size)
{
	size_t n = 0;

	if (strcmp(hex, "-") == 0)
		return 0;
	for (; hex[0] && hex[1] && n < size; hex += 2)
		assert_int_equal(sscanf(hex, "%2hhx", &out[n++]), 1);
	assert_true(*hex == '\0' || *hex == '\n');
	return n;
}

/* The layout pycode_line() needs: the line format only, the same for 3.13 as for 3.12. */
static const PyLayout *line_layout(unsigned minor)
{
	return pylayout_for_version(3, minor < 13 ? minor : 12);
}

static void check_lines(unsigned minor, const char *options)
{
	static char line[LINE_MAX_LEN];
	static uint8_t table[PY_LINETABLE_MAX];
	const PyLayout *l = line_layout(minor);
	size_t len = 0, codes = 0, offsets = 0, bad = 0;
	char py[700], cmd[2048];
	unsigned firstlineno = 0;
	FILE *f;

	if (!python_path(minor, py, sizeof(py)))
		return;
	snprintf(cmd, sizeof(cmd), "%s %s %s lines", py, options, PYCODE_DUMP);
	f = popen(cmd, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		char hex[sizeof(line)];
		long offset, want;
		unsigned nbytes;
		uint32_t got;

		if (sscanf(line, "code %u %u %s", &firstlineno, &nbytes, hex) == 3) {
			len = unhex(hex, table, sizeof(table));
			codes++;
			continue;
		}
		if (strcmp(line, "end\n") == 0)
			continue;
		assert_int_equal(sscanf(line, "%ld %ld", &offset, &want), 2);
		got = pycode_line(l, table, len, firstlineno, (uint32_t)offset);
		offsets++;
		if (got != (uint32_t)(want < 0 ? 0 : want) && bad++ < 10)
			printf("3.%u: firstlineno %u offset %ld: line %u, CPython says %ld\n",
			       minor, firstlineno, offset, got, want);
	}
	assert_int_equal(pclose(f), 0);
	printf("3.%u%s%s: %zu code objects, %zu offsets, %zu wrong\n", minor, *options ? " " : "",
	       options, codes, offsets, bad);
	assert_int_equal(bad, 0);
	/* The module has 14 code objects and thousands of instructions in every version. */
	assert_true(codes >= 14);
	assert_true(offsets >= 1000);
}

static void test_lines(void **state)
{
	(void)state;
	for (unsigned v = 8; v <= 13; v++) {
		check_lines(v, "");
		/* Without columns, the 3.11+ location table uses its no-column entries. */
		if (v >= 11)
			check_lines(v, "-X no_debug_ranges");
	}
}

typedef struct Proc {
	pid_t pid;
	int mem;
	FILE *out;
	int in;
} Proc;

static int mem_read(void *userdata, uint64_t addr, void *buf, size_t len)
{
	Proc *p = userdata;
	ssize_t n = pread(p->mem, buf, len, (off_t)addr);

	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EFAULT;
}

static void proc_start(Proc *p, const char *py)
{
	int in[2], out[2];

	assert_int_equal(pipe2(in, O_CLOEXEC), 0);
	assert_int_equal(pipe2(out, O_CLOEXEC), 0);
	p->pid = fork();
	assert_true(p->pid >= 0);
	if (p->pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		execl(py, py, PYCODE_DUMP, "serve", (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	p->in = in[1];
	p->out = fdopen(out[0], "r");
	assert_non_null(p->out);
	p->mem = -1;
}

/* After the child's first line: /proc/PID/mem opened before the exec would be the old image's. */
static void proc_open_mem(Proc *p)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/mem", (int)p->pid);
	p->mem = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(p->mem >= 0);
}

static void proc_stop(Proc *p)
{
	int status;

	close(p->in);
	fclose(p->out);
	close(p->mem);
	assert_int_equal(waitpid(p->pid, &status, 0), p->pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* The first PY_STRING_MAX characters of UTF-8 s (in place). */
static void cut_utf8(char *s)
{
	size_t chars = 0;

	for (char *c = s; *c; c++)
		if ((*c & 0xc0) != 0x80 && chars++ == PY_STRING_MAX) {
			*c = '\0';
			return;
		}
}

typedef struct Expected {
	uint64_t addr, type;
	char qualname[4096], filename[4096];
	unsigned firstlineno;
	uint8_t table[PY_LINETABLE_MAX], object[1024];
	size_t table_len, object_len;
} Expected;

static void check_code(const PyLayout *l, Proc *p, const Expected *e, unsigned minor)
{
	PyCode c, again;
	uint32_t first;

	int r = pycode_read(l, mem_read, p, e->addr, e->type, &c);

	if (r < 0)
		fail_msg("3.%u: reading the code object of %.40s at %#" PRIx64 ": %s", minor,
			 e->qualname, e->addr, strerror(-r));
	assert_string_equal(c.qualname, e->qualname);
	assert_string_equal(c.filename, e->filename);
	assert_int_equal(c.firstlineno, e->firstlineno);
	assert_int_equal(c.linetable_len, e->table_len);
	assert_memory_equal(c.linetable, e->table, e->table_len);
	/* The identity bytes: those the interpreter holds at code_ident, co_firstlineno among
	 * them; stable from one read to the next. */
	assert_true((size_t)l->bpf.code_ident + PROFQ_PY_IDENT_LEN <= e->object_len);
	assert_int_equal(c.ident, py_ident_hash(e->object + l->bpf.code_ident));
	memcpy(&first, e->object + l->code_firstlineno, 4);
	assert_int_equal(first, e->firstlineno);
	assert_true(l->code_firstlineno >= l->bpf.code_ident &&
		    l->code_firstlineno + 4 <= l->bpf.code_ident + (uint32_t)PROFQ_PY_IDENT_LEN);
	assert_int_equal(pycode_read(l, mem_read, p, e->addr, e->type, &again), 0);
	assert_int_equal(again.ident, c.ident);
	pycode_done(&again);
	/* Not a code object: its type is another. */
	assert_int_equal(pycode_read(l, mem_read, p, e->addr, e->type + 8, &again), -EINVAL);
	pycode_done(&c);
	assert_null(c.qualname);
}

#define WALK_MAX 16

typedef struct Walk {
	uint64_t tstate;
	uint64_t code[WALK_MAX];
	uint32_t line[WALK_MAX];
	size_t n;
} Walk;

static uint64_t read_u64(Proc *p, uint64_t addr)
{
	uint64_t v;

	assert_int_equal(mem_read(p, addr, &v, sizeof(v)), 0);
	return v;
}

/* The BPF walk of the frame chain from the thread state, as the layout describes it, with each
 * frame's line as profqd would name it: must be CPython's own view of the stack. */
static void check_walk(const PyLayout *l, Proc *p, const Walk *want, unsigned minor)
{
	const struct profq_py_layout *b = &l->bpf;
	uint64_t frame = read_u64(p, want->tstate + b->tstate_frame);
	size_t n = 0;

	if (b->cframe_frame != PROFQ_PY_NONE)
		frame = read_u64(p, frame + b->cframe_frame);
	for (int i = 0; frame && i < 64; i++) {
		uint8_t f[PROFQ_PY_FRAME_READ_MAX];
		uint64_t code, instr;
		uint32_t offset, line;
		int32_t lasti;
		PyCode c;

		assert_int_equal(mem_read(p, frame, f, b->frame_read), 0);
		memcpy(&code, f + b->frame_code, 8);
		if (b->frame_owner != PROFQ_PY_NONE && f[b->frame_owner] == b->owner_cstack) {
			memcpy(&frame, f + b->frame_previous, 8);
			continue;
		}
		if (b->model == PROFQ_PY_MODEL_FRAMEOBJ) {
			memcpy(&lasti, f + b->frame_instr, 4);
			offset = (uint32_t)lasti * b->lasti_scale;
		} else {
			memcpy(&instr, f + b->frame_instr, 8);
			offset = (uint32_t)(instr - (code + b->code_instr_base));
		}
		assert_int_equal(pycode_read(l, mem_read, p, code, read_u64(p, code + 8), &c), 0);
		line = pycode_line(l, c.linetable, c.linetable_len, c.firstlineno, offset);
		printf("3.%u: frame %zu: %s line %u (offset %u), CPython says line %u\n", minor, n,
		       c.qualname, line, offset, n < want->n ? want->line[n] : 0);
		assert_true(n < want->n);
		assert_int_equal(code, want->code[n]);
		assert_int_equal(line, want->line[n]);
		pycode_done(&c);
		n++;
		memcpy(&frame, f + b->frame_previous, 8);
	}
	assert_int_equal(n, want->n);
}

static void check_process(unsigned minor)
{
	static char line[LINE_MAX_LEN];
	static Expected e;
	Walk walk = { 0 };
	PyLayout from_debug;
	const PyLayout *l = NULL;
	size_t codes = 0, cut = 0;
	char py[700];
	Proc p;

	if (!python_path(minor, py, sizeof(py)))
		return;
	proc_start(&p, py);
	while (fgets(line, sizeof(line), p.out)) {
		static char qn[sizeof(line)], fn[sizeof(line)], table[sizeof(line)],
			obj[sizeof(line)];
		unsigned long long addr, type;
		size_t n;

		if (sscanf(line, "runtime %llu", &addr) == 1) {
			uint8_t runtime[PY_DEBUG_OFFSETS_MIN];

			proc_open_mem(&p);
			if (minor < 13) {
				l = pylayout_for_version(3, minor);
				continue;
			}
			assert_int_equal(mem_read(&p, addr, runtime, sizeof(runtime)), 0);
			assert_int_equal(pylayout_from_debug_offsets(runtime, sizeof(runtime),
								     &from_debug),
					 0);
			l = &from_debug;
			continue;
		}
		if (sscanf(line, "tstate %llu", &addr) == 1) {
			walk.tstate = addr;
			continue;
		}
		if (sscanf(line, "frame %llu %u", &addr, &walk.line[walk.n]) == 2) {
			assert_true(walk.n < WALK_MAX);
			walk.code[walk.n++] = addr;
			continue;
		}
		if (strcmp(line, "ready\n") == 0)
			break;
		assert_non_null(l);
		assert_int_equal(sscanf(line, "obj %llu %llu %s %s %u %s %s", &addr, &type, qn, fn,
					&e.firstlineno, table, obj),
				 7);
		e.addr = addr, e.type = type;
		n = unhex(qn, (uint8_t *)e.qualname, sizeof(e.qualname) - 1);
		e.qualname[n] = '\0';
		cut += n > PY_STRING_MAX;
		cut_utf8(e.qualname);
		n = unhex(fn, (uint8_t *)e.filename, sizeof(e.filename) - 1);
		e.filename[n] = '\0';
		e.table_len = unhex(table, e.table, sizeof(e.table));
		e.object_len = unhex(obj, e.object, sizeof(e.object));
		check_code(l, &p, &e, minor);
		codes++;
	}
	assert_non_null(fgets(line, sizeof(line), p.out));
	assert_true(walk.n > 0);
	assert_int_equal(sscanf(line, "inner %u", &walk.line[0]), 1);
	check_walk(l, &p, &walk, minor);
	proc_stop(&p);
	printf("3.%u: %zu code objects read from process %d (%zu names cut)\n", minor, codes,
	       (int)p.pid, cut);
	assert_true(codes >= 20);
	assert_int_equal(cut, 1);
}

static void test_process(void **state)
{
	(void)state;
	signal(SIGPIPE, SIG_IGN);
	for (unsigned v = 8; v <= 13; v++)
		check_process(v);
}

/* A fake process: MEM_SIZE bytes at MEM_BASE. */
#define MEM_BASE 0x10000ull
#define MEM_SIZE 8192

typedef struct Mem {
	uint8_t b[MEM_SIZE];
} Mem;

static int fake_read(void *userdata, uint64_t addr, void *buf, size_t len)
{
	Mem *m = userdata;

	if (addr < MEM_BASE || addr - MEM_BASE > MEM_SIZE || len > MEM_SIZE - (addr - MEM_BASE))
		return -EFAULT;
	memcpy(buf, m->b + (addr - MEM_BASE), len);
	return 0;
}

static void put64(Mem *m, uint64_t addr, uint64_t v)
{
	memcpy(m->b + (addr - MEM_BASE), &v, 8);
}

static void put32(Mem *m, uint64_t addr, uint32_t v)
{
	memcpy(m->b + (addr - MEM_BASE), &v, 4);
}

#define CODE MEM_BASE
#define NAME (MEM_BASE + 1024)
#define FILE_ (MEM_BASE + 2560)
#define TABLE (MEM_BASE + 3584)

/* fake_read, but the code object at CODE is freed (its first word a free-list link) once its
 * header has been read: as a process does between two reads of profqd. */
static int freeing_read(void *userdata, uint64_t addr, void *buf, size_t len)
{
	Mem *m = userdata;
	int r = fake_read(userdata, addr, buf, len);

	if (r == 0 && addr == CODE)
		put64(m, CODE, 0x7f0012345000ull);
	return r;
}
#define TYPE 0x7777ull

/* A 3.12 code object "fn" from "a.py", line 7, table of 3 bytes. */
static void fake_code(Mem *m, const PyLayout *l)
{
	memset(m, 0, sizeof(*m));
	put64(m, CODE, 1); /* ob_refcnt: a live object */
	put64(m, CODE + PY_OBJECT_TYPE, TYPE);
	put32(m, CODE + l->code_firstlineno, 7);
	put64(m, CODE + l->code_qualname, NAME);
	put64(m, CODE + l->code_name, NAME);
	put64(m, CODE + l->code_filename, FILE_);
	put64(m, CODE + l->code_linetable, TABLE);
	put32(m, NAME + l->unicode_state, 1u << 2 | PY_UNICODE_COMPACT | PY_UNICODE_ASCII);
	put64(m, NAME + l->unicode_length, 2);
	memcpy(m->b + (NAME - MEM_BASE) + l->unicode_ascii_data, "fn", 2);
	put32(m, FILE_ + l->unicode_state, 2u << 2 | PY_UNICODE_COMPACT);
	put64(m, FILE_ + l->unicode_length, 4);
	memcpy(m->b + (FILE_ - MEM_BASE) + l->unicode_compact_data, "a\0.\0p\0y\0", 8);
	put64(m, TABLE + l->bytes_size, 3);
	memcpy(m->b + (TABLE - MEM_BASE) + l->bytes_data, "\x80\x00\xd8", 3);
}

static void test_hostile(void **state)
{
	const PyLayout *l = pylayout_for_version(3, 12);
	static Mem m;
	PyCode c;

	(void)state;
	fake_code(&m, l);
	assert_int_equal(pycode_read(l, fake_read, &m, CODE, TYPE, &c), 0);
	assert_string_equal(c.qualname, "fn");
	assert_string_equal(c.filename, "a.py");
	assert_int_equal(c.linetable_len, 3);
	pycode_done(&c);
	pycode_done(&c);

	assert_int_equal(pycode_read(l, fake_read, &m, MEM_BASE + MEM_SIZE - 8, TYPE, &c), -EFAULT);
	put32(&m, FILE_ + l->unicode_state, 2u << 2); /* not compact */
	assert_int_equal(pycode_read(l, fake_read, &m, CODE, TYPE, &c), -EINVAL);
	put32(&m, FILE_ + l->unicode_state, 3u << 2 | PY_UNICODE_COMPACT); /* kind 3 */
	assert_int_equal(pycode_read(l, fake_read, &m, CODE, TYPE, &c), -EINVAL);
	put32(&m, FILE_ + l->unicode_state,
	      4u << 2 | PY_UNICODE_COMPACT); /* 0x2e0061: > 0x10ffff */
	assert_int_equal(pycode_read(l, fake_read, &m, CODE, TYPE, &c), -EINVAL);
	fake_code(&m, l);
	memcpy(m.b + (NAME - MEM_BASE) + l->unicode_ascii_data, "f\xe9", 2); /* "ASCII" */
	assert_int_equal(pycode_read(l, fake_read, &m, CODE, TYPE, &c), -EINVAL);
	fake_code(&m, l);
	put64(&m, NAME + l->unicode_length, UINT64_MAX);
	assert_int_equal(pycode_read(l, fake_read, &m, CODE, TYPE, &c), -EINVAL);
	fake_code(&m, l);
	put64(&m, NAME + l->unicode_length, 5000); /* cut to PY_STRING_MAX characters */
	memset(m.b + (NAME - MEM_BASE) + l->unicode_ascii_data, 'x', PY_STRING_MAX);
	assert_int_equal(pycode_read(l, fake_read, &m, CODE, TYPE, &c), 0);
	assert_int_equal(strlen(c.qualname), PY_STRING_MAX);
	pycode_done(&c);
	fake_code(&m, l);
	put64(&m, TABLE + l->bytes_size, PY_LINETABLE_MAX + 1);
	assert_int_equal(pycode_read(l, fake_read, &m, CODE, TYPE, &c), -EINVAL);
	put64(&m, TABLE + l->bytes_size, 8000); /* past the fake memory */
	assert_int_equal(pycode_read(l, fake_read, &m, CODE, TYPE, &c), -EFAULT);
	fake_code(&m, l);
	put32(&m, CODE + l->code_firstlineno, UINT32_MAX);
	assert_int_equal(pycode_read(l, fake_read, &m, CODE, TYPE, &c), -EINVAL);
	/* Freed before it is read (NULL or a free-list link for a reference count), or while. */
	fake_code(&m, l);
	put64(&m, CODE, 0);
	assert_int_equal(pycode_read(l, fake_read, &m, CODE, TYPE, &c), -ESTALE);
	put64(&m, CODE, 0x7f0012345000ull);
	assert_int_equal(pycode_read(l, fake_read, &m, CODE, TYPE, &c), -ESTALE);
	fake_code(&m, l);
	assert_int_equal(pycode_read(l, freeing_read, &m, CODE, TYPE, &c), -ESTALE);
}

static void test_line_edges(void **state)
{
	const PyLayout *l38 = pylayout_for_version(3, 8), *l310 = pylayout_for_version(3, 10),
		       *l312 = pylayout_for_version(3, 12);
	/* A long entry (code 14) whose varint runs off the table; a first byte without bit 7. */
	const uint8_t cut[] = { 0xf0, 0x41 }, nobit[] = { 0x00, 0x80 };
	/* 3.10: zero-width entries skipped; -128 is no line. */
	const uint8_t t310[] = { 0, 5, 4, 1, 2, 0x80, 2, 3 };

	(void)state;
	assert_int_equal(pycode_line(l312, cut, sizeof(cut), 10, 0), 0);
	assert_int_equal(pycode_line(l312, nobit, sizeof(nobit), 10, 0), 0);
	assert_int_equal(pycode_line(l312, NULL, 0, 10, 0), 0);
	assert_int_equal(pycode_line(l312, NULL, 0, 10, (uint32_t)-2), 10);
	assert_int_equal(pycode_line(l310, t310, sizeof(t310), 10, 0), 16);
	assert_int_equal(pycode_line(l310, t310, sizeof(t310), 10, 4), 0);
	assert_int_equal(pycode_line(l310, t310, sizeof(t310), 10, 6), 19);
	assert_int_equal(pycode_line(l310, t310, sizeof(t310), 10, 8), 0);
	assert_int_equal(pycode_line(l38, NULL, 0, 10, 1000), 10);
	assert_int_equal(pycode_line(l38, t310, 1, 10, 1000), 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lines),
		cmocka_unit_test(test_process),
		cmocka_unit_test(test_hostile),
		cmocka_unit_test(test_line_edges),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
