/* SPDX-License-Identifier: MIT */
/* pprof export: the fixture profile written, gunzipped and decoded again with protobuf-c, and
 * checked against what profile.proto means (the same checks go tool pprof relies on). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <zlib.h>

#include "export/pprof.h"
#include "profile-fixture.h"
#include "profile.pb-c.h"

typedef Perftools__Profiles__Profile PbProfile;

/* The gunzipped contents of fd (rewound first). */
static uint8_t *gunzip_fd(int fd, size_t *ret_n)
{
	size_t a = 1 << 16, n = 0;
	uint8_t in[4096], *out = malloc(a);
	z_stream z = { 0 };
	ssize_t k;
	int r = Z_OK;

	assert_non_null(out);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK); /* gzip only, not raw zlib */
	while (r != Z_STREAM_END && (k = read(fd, in, sizeof(in))) > 0) {
		z.next_in = in;
		z.avail_in = (uInt)k;
		while (z.avail_in > 0 && r != Z_STREAM_END) {
			if (n == a)
				assert_non_null(out = realloc(out, a *= 2));
			z.next_out = out + n;
			z.avail_out = (uInt)(a - n);
			r = inflate(&z, Z_NO_FLUSH);
			assert_true(r == Z_OK || r == Z_STREAM_END);
			n = a - z.avail_out;
		}
	}
	assert_int_equal(r, Z_STREAM_END);
	inflateEnd(&z);
	*ret_n = n;
	return out;
}

static PbProfile *write_and_decode(const Profile *p)
{
	_cleanup_close_ int fd = memfd_create("pprof", MFD_CLOEXEC);
	_cleanup_free_ uint8_t *raw = NULL;
	PbProfile *pb;
	size_t n;

	assert_true(fd >= 0);
	assert_int_equal(pprof_write(p, fd), 0);
	raw = gunzip_fd(fd, &n);
	pb = perftools__profiles__profile__unpack(NULL, n, raw);
	assert_non_null(pb);
	return pb;
}

static const char *str(const PbProfile *pb, int64_t i)
{
	assert_true(i >= 0 && (size_t)i < pb->n_string_table);
	return pb->string_table[i];
}

static const Perftools__Profiles__Location *location(const PbProfile *pb, uint64_t id)
{
	/* ids are dense from 1, which pprof does not require but we promise */
	assert_true(id >= 1 && id <= pb->n_location);
	assert_int_equal(pb->location[id - 1]->id, id);
	return pb->location[id - 1];
}

static const Perftools__Profiles__Function *function(const PbProfile *pb, uint64_t id)
{
	assert_true(id >= 1 && id <= pb->n_function);
	assert_int_equal(pb->function[id - 1]->id, id);
	return pb->function[id - 1];
}

static const char *function_name(const PbProfile *pb, const Perftools__Profiles__Line *l)
{
	return str(pb, function(pb, l->function_id)->name);
}

static void test_structure(void **state)
{
	_cleanup_(profile_freep) Profile *p = fixture_profile_of(fixture_answer);
	PbProfile *pb = write_and_decode(p);
	const Perftools__Profiles__Location *l;
	const Perftools__Profiles__Sample *s;
	int64_t sum = 0, cpu = 0;
	size_t mains = 0;

	(void)state;
	assert_true(pb->n_string_table > 0);
	assert_string_equal(pb->string_table[0], "");
	assert_int_equal(pb->n_sample_type, 2);
	assert_string_equal(str(pb, pb->sample_type[0]->type), "samples");
	assert_string_equal(str(pb, pb->sample_type[0]->unit), "count");
	assert_string_equal(str(pb, pb->sample_type[1]->type), "cpu");
	assert_string_equal(str(pb, pb->sample_type[1]->unit), "nanoseconds");
	assert_non_null(pb->period_type);
	assert_string_equal(str(pb, pb->period_type->type), "cpu");
	assert_int_equal(pb->period, FIXTURE_PERIOD_NS);
	assert_int_equal(pb->time_nanos, FIXTURE_START_NS);
	assert_int_equal(pb->duration_nanos, 10 * NSEC_PER_SEC);
	assert_int_equal(pb->n_comment, 1);
	assert_string_equal(str(pb, pb->comment[0]), "profq pid 100 (prog)");

	/* three stacks and the truncated remainder; values are samples and samples × period */
	assert_int_equal(pb->n_sample, 4);
	for (size_t i = 0; i < pb->n_sample; i++) {
		assert_int_equal(pb->sample[i]->n_value, 2);
		sum += pb->sample[i]->value[0];
		cpu += pb->sample[i]->value[1];
		assert_int_equal(pb->sample[i]->value[1],
				 pb->sample[i]->value[0] * FIXTURE_PERIOD_NS);
	}
	assert_int_equal(sum, 105);
	assert_int_equal(cpu, 105LL * FIXTURE_PERIOD_NS);

	/* hot inlined into work: one location with two lines, innermost first */
	s = pb->sample[0];
	assert_int_equal(s->value[0], 60);
	assert_int_equal(s->n_location_id, 2);
	l = location(pb, s->location_id[0]);
	assert_int_equal(l->n_line, 2);
	assert_string_equal(function_name(pb, l->line[0]), "hot");
	assert_int_equal(l->line[0]->line, 5);
	assert_string_equal(str(pb, function(pb, l->line[0]->function_id)->filename), "prog.h");
	assert_string_equal(function_name(pb, l->line[1]), "work");
	assert_int_equal(l->line[1]->line, 20);
	assert_true(l->mapping_id >= 1 && l->mapping_id <= pb->n_mapping);
	assert_string_equal(str(pb, pb->mapping[l->mapping_id - 1]->filename), "prog");
	assert_true(pb->mapping[l->mapping_id - 1]->has_functions);
	assert_true(pb->mapping[l->mapping_id - 1]->has_inline_frames);
	l = location(pb, s->location_id[1]);
	assert_int_equal(l->n_line, 1);
	assert_string_equal(function_name(pb, l->line[0]), "main");
	assert_int_equal(l->line[0]->line, 10);

	/* the kernel frame has a mapping of its own and no file */
	s = pb->sample[1];
	l = location(pb, s->location_id[0]);
	assert_string_equal(function_name(pb, l->line[0]), "kfunc");
	assert_string_equal(str(pb, function(pb, l->line[0]->function_id)->filename), "");
	assert_string_equal(str(pb, pb->mapping[l->mapping_id - 1]->filename), "[kernel.kallsyms]");
	assert_int_equal(pb->n_mapping, 2);

	/* main at three lines: three locations, one function */
	for (size_t i = 0; i < pb->n_function; i++)
		mains += streq(str(pb, pb->function[i]->name), "main");
	assert_int_equal(mains, 1);
	assert_int_not_equal(location(pb, pb->sample[1]->location_id[1])->id,
			     location(pb, pb->sample[0]->location_id[1])->id);

	/* the remainder is its own sample with a [truncated] frame */
	s = pb->sample[3];
	assert_int_equal(s->value[0], 5);
	assert_int_equal(s->n_location_id, 1);
	l = location(pb, s->location_id[0]);
	assert_string_equal(function_name(pb, l->line[0]), "[truncated]");
	assert_int_equal(l->mapping_id, 0);

	perftools__profiles__profile__free_unpacked(pb, NULL);
}

static const char *mapping_name(const PbProfile *pb, const Perftools__Profiles__Location *l)
{
	assert_true(l->mapping_id >= 1 && l->mapping_id <= pb->n_mapping);
	return str(pb, pb->mapping[l->mapping_id - 1]->filename);
}

/* Python functions: a Function with the .py file and the first line, a Line with the line
 * executing, the "[python]" Mapping (not the interpreter's); same-named functions of other
 * files (main in run.py, the interpreter's main) apart. */
static void test_python(void **state)
{
	_cleanup_(profile_freep) Profile *p = fixture_profile_of(fixture_python_answer);
	PbProfile *pb = write_and_decode(p);
	const Perftools__Profiles__Function *fn;
	const Perftools__Profiles__Location *l;
	const Perftools__Profiles__Sample *s;
	size_t parses = 0, mains = 0;

	(void)state;
	assert_true(p->frames[2].python && p->frames[2].start_line == 10);
	assert_false(p->frames[0].python || p->frames[1].python);
	assert_int_equal(pb->n_sample, 3);

	s = pb->sample[0];
	assert_int_equal(s->value[0], 40);
	assert_int_equal(s->n_location_id, 7);
	l = location(pb, s->location_id[1]);
	assert_string_equal(function_name(pb, l->line[0]), "list_contains");
	assert_string_equal(mapping_name(pb, l), "python3.11");
	l = location(pb, s->location_id[2]);
	assert_int_equal(l->n_line, 1);
	fn = function(pb, l->line[0]->function_id);
	assert_string_equal(str(pb, fn->name), "Worker.parse");
	assert_string_equal(str(pb, fn->system_name), "Worker.parse");
	assert_string_equal(str(pb, fn->filename), "/srv/app/worker.py");
	assert_int_equal(fn->start_line, 10);
	assert_int_equal(l->line[0]->line, 12);
	assert_string_equal(mapping_name(pb, l), "[python]");
	assert_false(pb->mapping[l->mapping_id - 1]->has_inline_frames &&
		     streq(mapping_name(pb, l), "python3.11"));
	l = location(pb, s->location_id[3]);
	fn = function(pb, l->line[0]->function_id);
	assert_string_equal(str(pb, fn->name), "main");
	assert_string_equal(str(pb, fn->filename), "/srv/app/run.py");
	assert_int_equal(fn->start_line, 3);
	assert_string_equal(mapping_name(pb, l), "[python]");
	l = location(pb, s->location_id[5]);
	fn = function(pb, l->line[0]->function_id);
	assert_string_equal(str(pb, fn->name), "main");
	assert_string_equal(str(pb, fn->filename), "Programs/python.c");
	assert_int_equal(fn->start_line, 0);
	assert_string_equal(mapping_name(pb, l), "python3.11");

	/* Worker.parse at line 14: another location, the same function */
	l = location(pb, pb->sample[1]->location_id[0]);
	assert_int_equal(l->line[0]->line, 14);
	assert_int_equal(l->line[0]->function_id,
			 location(pb, pb->sample[0]->location_id[2])->line[0]->function_id);
	for (size_t i = 0; i < pb->n_function; i++) {
		parses += streq(str(pb, pb->function[i]->name), "Worker.parse");
		mains += streq(str(pb, pb->function[i]->name), "main");
	}
	assert_int_equal(parses, 1);
	assert_int_equal(mains, 2);

	/* A Python frame that could not be named: no file, no line, still Python's */
	l = location(pb, pb->sample[2]->location_id[0]);
	fn = function(pb, l->line[0]->function_id);
	assert_string_equal(str(pb, fn->name), "[python]");
	assert_string_equal(str(pb, fn->filename), "");
	assert_int_equal(fn->start_line, 0);
	assert_int_equal(l->line[0]->line, 0);
	assert_string_equal(mapping_name(pb, l), "[python]");
	/* python3.11, [python], libc.so.6 */
	assert_int_equal(pb->n_mapping, 3);
	perftools__profiles__profile__free_unpacked(pb, NULL);
}

/* Locations are shared by the stacks that pass through them. */
static void test_locations_shared(void **state)
{
	_cleanup_(profile_freep) Profile *p = fixture_profile_of(
		"{\"pid\": 7, \"samples\": 3, \"period_ns\": 1000000,"
		" \"frames\": [{\"function\": \"a\"}, {\"function\": \"b\"}, {\"function\": "
		"\"root\"}],"
		" \"stacks\": [{\"frames\": [0, 2], \"samples\": 2}, {\"frames\": [1, 2], "
		"\"samples\": 1}]}");
	PbProfile *pb = write_and_decode(p);

	(void)state;
	assert_int_equal(pb->n_sample, 2);
	assert_int_equal(pb->n_location, 3);
	assert_int_equal(pb->sample[0]->location_id[1], pb->sample[1]->location_id[1]);
	assert_int_equal(pb->n_mapping, 0); /* no module known */
	assert_string_equal(str(pb, pb->comment[0]), "profq pid 7 ()");
	perftools__profiles__profile__free_unpacked(pb, NULL);
}

/* A profile with no stacks is still a valid, empty profile. */
static void test_empty(void **state)
{
	_cleanup_(profile_freep)
		Profile *p = fixture_profile_of("{\"pid\": 7, \"samples\": 0, \"period_ns\": "
						"1000000, \"frames\": [], \"stacks\": []}");
	PbProfile *pb = write_and_decode(p);

	(void)state;
	assert_int_equal(pb->n_sample, 0);
	assert_int_equal(pb->n_location, 0);
	assert_int_equal(pb->n_sample_type, 2);
	perftools__profiles__profile__free_unpacked(pb, NULL);
}

/* A faults profile: one sample type, faults/bytes, the period type space/bytes; the values are
 * the bytes of each stack. */
static void test_faults(void **state)
{
	_cleanup_(profile_freep) Profile *p = fixture_profile_of(
		"{\"pid\": 7, \"samples\": 3145728, \"period_ns\": 1,"
		" \"event\": \"faults\", \"unit\": \"bytes\","
		" \"frames\": [{\"function\": \"grow\","
		" \"module\": \"prog\"}],"
		" \"stacks\": [{\"frames\": [0],"
		" \"samples\": 3145728}]}");
	PbProfile *pb = write_and_decode(p);

	(void)state;
	assert_int_equal(pb->n_sample_type, 1);
	assert_string_equal(str(pb, pb->sample_type[0]->type), "faults");
	assert_string_equal(str(pb, pb->sample_type[0]->unit), "bytes");
	assert_string_equal(str(pb, pb->period_type->type), "space");
	assert_string_equal(str(pb, pb->period_type->unit), "bytes");
	assert_int_equal(pb->n_sample, 1);
	assert_int_equal(pb->sample[0]->n_value, 1);
	assert_int_equal(pb->sample[0]->value[0], 3145728);
	perftools__profiles__profile__free_unpacked(pb, NULL);
}

/* Write failures come back as errors, not as a short file called success. */
static void test_write_errors(void **state)
{
	_cleanup_(profile_freep) Profile *p = fixture_profile_of(fixture_answer);
	_cleanup_close_ int full = open("/dev/full", O_WRONLY | O_CLOEXEC);

	(void)state;
	assert_true(full >= 0);
	assert_int_equal(pprof_write(p, full), -ENOSPC);
	assert_int_equal(pprof_write(p, 1000000), -EBADF);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_structure),	 cmocka_unit_test(test_python),
		cmocka_unit_test(test_locations_shared), cmocka_unit_test(test_empty),
		cmocka_unit_test(test_write_errors),	 cmocka_unit_test(test_faults),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
