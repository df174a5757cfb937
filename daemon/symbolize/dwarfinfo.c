/* SPDX-License-Identifier: MIT */
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwelf.h>
#include <elfutils/libdwfl.h>
#include <gelf.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>
#include <xxhash.h>

#include "base/hashindex.h"
#include "base/macro.h"
#include "symbolize/dwarfinfo.h"
#include "symbolize/dwarfworker.h"
#include "symbolize/elfsym.h"

#define MAX_DEPTH 128
#define POOL_BLOCK (64u * 1024)
/* Bounds on what one CU may make us hold or do, whatever its DWARF says: address ranges (of
 * all its DIEs), line rows, and the spans it adds to the CU lookup (each an insertion into a
 * sorted array). Strings from the file are cut at STRING_MAX bytes. */
#define CU_MAX_RANGES (1u << 20)
#define CU_MAX_ROWS (4u << 20)
#define CU_MAX_SPANS 1024u
#define STRING_MAX 4095u

/* A function or inlined call: its attributes, shared by its address ranges. Strings are pool
 * ids (0: none). */
typedef struct DieInfo {
	uint32_t name, linkage, decl_file, call_file;
	uint32_t decl_line, call_line;
	bool inlined;
} DieInfo;

/* One address range of a DieInfo, nested in its parent's. */
typedef struct Range {
	uint64_t low, high;
	int32_t parent; /* index of the enclosing range, -1 at the top */
	uint32_t info;
} Range;

/*
 * One row of a CU's line table: from its address on, code is of this file and line (rows that
 * repeat the one before are dropped). 8 bytes: line numbers from 2^22 on read as 0, and files
 * past the CU's first 1022 as unknown.
 */
typedef struct LineRow {
	uint32_t off;	    /* address - CuIndex.line_base */
	uint32_t line : 22; /* 0: unknown */
	uint32_t file : 10; /* index into CuIndex.files, or one of: */
} LineRow;
#define ROW_FILE_UNKNOWN 1022u
#define ROW_END_OF_SEQUENCE 1023u

typedef struct CuIndex {
	Dwarf_Off offset;
	Range *ranges; /* sorted by (low, -high): a parent before its children */
	size_t n;
	DieInfo *infos;
	size_t n_infos;
	LineRow *rows; /* sorted by address */
	size_t n_rows;
	uint64_t line_base;
	uint32_t *files; /* pool ids of the files the rows name */
	size_t n_files;
	bool sent; /* in the worker: to the owner, and dropped here */
} CuIndex;

/* Where a CU's code is: lookups inside known CUs need no libdw. */
typedef struct CuSpan {
	uint64_t low, high;
	uint32_t cu;
} CuSpan;

/* An address the worker answered for that no span of its CU covers: its CU, or none (-1). */
typedef struct AddrCu {
	uint64_t vaddr;
	int32_t cu;
} AddrCu;
/* How many are remembered per binary; past that, such addresses get no DWARF. */
#define ADDR_CUS_MAX 65536u

/* Interned strings in blocks that never move: a DwarfFrame's strings stay valid. */
typedef struct Pool {
	const char **strs; /* by id; 0 unused */
	size_t n, allocated;
	HashIndex *index;
	char **blocks;
	size_t n_blocks, allocated_blocks;
	size_t block_used, block_size; /* of the last block */
	size_t bytes;
} Pool;

struct DwarfInfo {
	/* libdwfl, open only while lookups need it (NULL otherwise). */
	Dwfl *dwfl;
	Dwfl_Module *mod;
	Dwfl_Callbacks callbacks;
	size_t libdw_bytes;	/* heap libdw and libelf took while open */
	size_t open_bytes;	/* ... of which for opening (e.g. decompressed debug sections) */
	size_t last_open_bytes; /* what the last opening took, kept after closing */
	uint64_t libdw_used;	/* CLOCK_MONOTONIC ns of the last use */
	int open_error;
	unsigned opens;
	uint64_t open_cpu_ns;  /* what the last opening cost */
	uint64_t reopen_after; /* closed for memory: not opened again before (monotonic ns) */
	DwarfCounters *counters;

	unsigned debug_fds_given; /* by find_debuginfo() during one opening */
	int fd;			  /* our own descriptor of the binary, to open libdwfl again */
	char *path;
	char *debug_path;
	Dwarf_Addr elf_bias; /* dwfl address = ELF vaddr + elf_bias */
	int64_t dw_delta;    /* DWARF address = ELF vaddr + dw_delta */
	char *debug_file;    /* the path it was opened by, resolved (/proc/self/fd) */
	struct stat debug_st;
	bool have_debug_st;

	CuIndex **cus;
	size_t n_cus, allocated_cus;
	HashIndex *cu_index;
	CuSpan *spans; /* sorted by low */
	size_t n_spans, allocated_spans;
	Pool pool;
	/* The CU being indexed, freed by libdw_faulted() when a fault jumps out of its walk. */
	struct CuBuilder *building;
	CuIndex *building_cu;
	size_t dies;   /* walked so far, for the work bound */
	size_t memory; /* of the CU indexes */

	/* With a worker (counters->worker), which opens libdwfl and indexes CUs for us. */
	uint64_t remote_id;    /* 0: none, libdw runs here */
	int remote_open;       /* -EINPROGRESS until its first answer */
	bool remote_pending;   /* a request is queued or in flight */
	uint64_t remote_vaddr; /* ... for this address (UINT64_MAX: the opening only) */
	AddrCu *addr_cus;
	size_t n_addr_cus, allocated_addr_cus;
	HashIndex *addr_index;
};

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t now_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

/* Heap in use by the process: libdw's share is the difference around its calls. */
static size_t heap_in_use(void)
{
	struct mallinfo2 mi = mallinfo2();

	return mi.uordblks + mi.hblkhd;
}

/* ---- string pool ---- */

static void pool_done(Pool *p)
{
	for (size_t i = 0; i < p->n_blocks; i++)
		free(p->blocks[i]);
	free(p->blocks);
	free(p->strs);
	hash_index_free(p->index);
}

typedef struct PoolKey {
	const char *s;
	size_t len;
} PoolKey;

static bool pool_eq(uint32_t id, const void *key, void *userdata)
{
	const PoolKey *k = key;
	const char *s = ((const Pool *)userdata)->strs[id];

	return strncmp(s, k->s, k->len) == 0 && s[k->len] == '\0';
}

/* The id of s (0 for NULL), interned on first sight. */
static int pool_intern(Pool *p, const char *s, uint32_t *ret)
{
	PoolKey k;
	uint64_t hash;
	uint32_t id;
	char *copy;
	int r;

	if (!s) {
		*ret = 0;
		return 0;
	}
	/* Strings come from the file: a name of a GiB is cut. */
	k = (PoolKey){ .s = s, .len = strnlen(s, STRING_MAX) };
	hash = XXH3_64bits(s, k.len);
	if (hash_index_find(p->index, hash, pool_eq, &k, p, &id) == 0) {
		*ret = id;
		return 0;
	}
	if (p->n == 0)
		p->n = 1; /* id 0 is "none" */
	if (p->n >= UINT32_MAX - 1)
		return -E2BIG;
	if (GREEDY_REALLOC(p->strs, p->allocated, p->n + 1) < 0)
		return -ENOMEM;
	if (p->n_blocks == 0 || p->block_size - p->block_used < k.len + 1) {
		size_t size = MAX((size_t)POOL_BLOCK, k.len + 1);

		if (GREEDY_REALLOC(p->blocks, p->allocated_blocks, p->n_blocks + 1) < 0)
			return -ENOMEM;
		p->blocks[p->n_blocks] = malloc(size);
		if (!p->blocks[p->n_blocks])
			return -ENOMEM;
		p->n_blocks++;
		p->block_used = 0;
		p->block_size = size;
		p->bytes += size;
	}
	copy = p->blocks[p->n_blocks - 1] + p->block_used;
	memcpy(copy, s, k.len);
	copy[k.len] = '\0';
	r = hash_index_insert(p->index, hash, (uint32_t)p->n);
	if (r < 0)
		return r;
	p->block_used += k.len + 1;
	p->strs[p->n] = copy;
	*ret = (uint32_t)p->n++;
	return 0;
}

static const char *pool_str(const Pool *p, uint32_t id)
{
	return id ? p->strs[id] : NULL;
}

static size_t pool_memory(const Pool *p)
{
	return p->bytes + p->allocated * sizeof(char *) + p->allocated_blocks * sizeof(char *) +
	       hash_index_memory(p->index);
}

/* ---- faults in mapped files ---- */

/*
 * libdw maps the files it reads (ELF_C_READ_MMAP; libdwfl offers no other way), and their
 * owners may truncate them under us: a read past the new end raises SIGBUS. Reading them into
 * memory instead would cost their size in heap (hundreds of MiB of debug sections for a big
 * binary, where mapped pages are only the ones read, and reclaimable). So the calls that read
 * mapped data (libdwfl's opening, and indexing a CU: libdw's walks and our copies of its
 * strings) run under a SIGBUS handler that jumps back out of them. What was under way is
 * abandoned: libdwfl's handles are leaked, never touched again (their state is whatever the
 * fault left), the CU being built is freed (d holds it while it is built), and the binary's
 * DWARF is not opened again; the CUs indexed before stay (our own copies). Costs a sigsetjmp
 * (a sigprocmask) per opening and per CU indexed, not per lookup.
 */
static __thread sigjmp_buf *fault_jmp;
static struct sigaction fault_old_action;

static void fault_handler(int sig, siginfo_t *si, void *uc)
{
	(void)si;
	(void)uc;
	if (fault_jmp)
		siglongjmp(*fault_jmp, 1);
	/* Not in a guarded call: the fault is a bug; let the previous handler (or the default,
	 * a core dump) have it when the instruction faults again. */
	sigaction(sig, &fault_old_action, NULL);
}

/* Before each guarded call: whoever installed a handler since (a test framework) is put
 * behind ours, not lost. */
static void fault_handler_install(void)
{
	struct sigaction sa = { .sa_sigaction = fault_handler, .sa_flags = SA_SIGINFO }, cur;

	if (sigaction(SIGBUS, NULL, &cur) < 0 ||
	    ((cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == fault_handler))
		return;
	sigemptyset(&sa.sa_mask);
	(void)sigaction(SIGBUS, &sa, &fault_old_action);
}

static void cu_building_done(DwarfInfo *d);

/* After a fault: libdwfl's state is not to be trusted, so it is let go, not freed (what we
 * were building from it is ours, and freed). */
static int libdw_faulted(DwarfInfo *d)
{
	cu_building_done(d);
	d->dwfl = NULL;
	d->mod = NULL;
	d->libdw_bytes = 0;
	d->open_bytes = 0;
	d->open_error = -EIO;
	if (d->counters)
		d->counters->faults++;
	return -EIO;
}

/* ---- libdwfl, opened and closed on demand ---- */

static size_t own_memory(const DwarfInfo *d);
static void charge_libdw(DwarfInfo *d, size_t heap0, size_t own0);

static void libdw_close(DwarfInfo *d)
{
	/* The walk's DIEs point into libdw's data. */
	cu_building_done(d);
	if (d->dwfl)
		dwfl_end(d->dwfl);
	d->dwfl = NULL;
	d->mod = NULL;
	d->libdw_bytes = 0;
	d->open_bytes = 0;
}

/*
 * Is the file open at fd (st) the one .gnu_debuglink names by its CRC-32? 0 is a CRC like any
 * other, not "unchecked". Read up to the size fstat gave, never past it, and only for files up
 * to DWARFINFO_CRC_MAX_SIZE: a sparse file of many GiB must not cost seconds.
 */
static bool crc_matches(int fd, const struct stat *st, uint32_t crc)
{
	uint8_t buf[64 * 1024];
	uLong sum = crc32(0, NULL, 0);
	uint64_t off = 0, size = (uint64_t)st->st_size;

	if (size > DWARFINFO_CRC_MAX_SIZE)
		return false;
	while (off < size) {
		ssize_t n = pread(fd, buf, (size_t)MIN((uint64_t)sizeof(buf), size - off),
				  (off_t)off);

		if (n <= 0)
			return false;
		sum = crc32(sum, buf, (uInt)n);
		off += (uint64_t)n;
	}
	return (uint32_t)sum == crc;
}

/* The GNU build id of the ELF file open at fd (its headers checked), 0 if none. */
static size_t file_build_id(int fd, uint8_t *buf, size_t max)
{
	Elf *elf;
	Elf_Scn *scn = NULL;
	size_t len = 0;

	/* Not mapped: a read past a truncated end is an error, not SIGBUS. */
	elf = elf_begin(fd, ELF_C_READ, NULL);
	if (!elf)
		return 0;
	while (len == 0 && (scn = elf_nextscn(elf, scn))) {
		Elf_Data *data;
		GElf_Shdr sh;
		GElf_Nhdr nh;
		size_t off = 0, name_off, desc_off;

		/* A note section is small; a huge one is not read into memory. */
		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_NOTE || sh.sh_size > 65536)
			continue;
		data = elf_getdata(scn, NULL);
		if (!data)
			continue;
		while ((off = gelf_getnote(data, off, &nh, &name_off, &desc_off)) > 0)
			if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
			    memcmp((const char *)data->d_buf + name_off, "GNU", 4) == 0 &&
			    nh.n_descsz > 0 && nh.n_descsz <= max) {
				memcpy(buf, (const char *)data->d_buf + desc_off, nh.n_descsz);
				len = nh.n_descsz;
				break;
			}
	}
	elf_end(elf);
	return len;
}

/* Would libdw inflating the compressed sections of a file with these headers take too much? */
static bool inflates_too_much(const ElfHeaders *h)
{
	return h->inflated > DWARFINFO_MAX_INFLATED ||
	       h->inflated / DWARFINFO_MAX_INFLATE_RATIO > h->file_size;
}

/*
 * Opens dir/name if it is a regular file other than the binary itself (st), of sane size and
 * headers, and the binary's debug file: the same build id when both have one, else the CRC-32
 * the debuglink gives.
 */
static int debuglink_try(DwarfInfo *d, const char *dir, const char *name, const struct stat *st,
			 const uint8_t *build_id, size_t build_id_len, uint32_t crc,
			 char **ret_path)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_close_ int fd = -1;
	uint8_t id[ELFSYM_BUILD_ID_MAX];
	ElfHeaders h;
	struct stat dst;
	size_t id_len;

	if (asprintf(&path, "%s/%s", dir, name) < 0)
		return -ENOMEM;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return -ENOENT;
	if (fstat(fd, &dst) < 0 || !S_ISREG(dst.st_mode) ||
	    (dst.st_dev == st->st_dev && dst.st_ino == st->st_ino) ||
	    (uint64_t)dst.st_size > DWARFINFO_DEBUG_FILE_MAX_SIZE ||
	    elfsym_check_headers(fd, &h) < 0)
		return -ENOENT;
	if (inflates_too_much(&h)) {
		if (d && d->counters)
			d->counters->refused++;
		return -ENOENT;
	}
	id_len = file_build_id(fd, id, sizeof(id));
	if (build_id_len > 0 && id_len > 0) {
		if (id_len != build_id_len || memcmp(id, build_id, id_len) != 0)
			return -ENOENT;
	} else if (!crc_matches(fd, &dst, crc)) {
		return -ENOENT;
	}
	*ret_path = TAKE_PTR(path);
	return TAKE_FD(fd);
}

/*
 * libdwfl's find_debuginfo: dwfl_standard_find_debuginfo() without its last resort, which
 * loads libdebuginfod (and with it libcurl, gnutls, libcrypto...: 6-8 MB resident) on the first
 * binary without debug info, even with DEBUGINFOD_URLS unset; profqd fetches nothing from the
 * network. By build id under each root of the path, then by .gnu_debuglink as GDB looks: the
 * binary's directory, its .debug/ and each absolute root followed by that directory. The
 * debuglink is a file name, never a path: the binary's owner chose it, and profqd must not open
 * what they name elsewhere (a root-only file by absolute path or "../").
 */
static int find_debuginfo_any(Dwfl_Module *mod, void **userdata, const char *modname,
			      Dwarf_Addr base, const char *file_name, const char *debuglink_file,
			      GElf_Word debuglink_crc, char **debuginfo_file_name)
{
	DwarfInfo *d = *userdata;
	_cleanup_free_ char *list = NULL, *dir = NULL;
	const char *path_list = d && d->debug_path ? d->debug_path : ":.debug:/usr/lib/debug";
	const unsigned char *build_id = NULL;
	char *slash, *entry, *save = NULL;
	GElf_Addr id_vaddr;
	struct stat st;
	int fd, id_len;

	fd = dwfl_build_id_find_debuginfo(mod, userdata, modname, base, file_name, debuglink_file,
					  debuglink_crc, debuginfo_file_name);
	if (fd >= 0 && d)
		d->debug_fds_given++;
	if (fd >= 0 || !debuglink_file || !file_name || stat(file_name, &st) < 0)
		return fd;
	if (!debuglink_file[0] || strchr(debuglink_file, '/') || streq(debuglink_file, ".") ||
	    streq(debuglink_file, ".."))
		return -1;
	id_len = dwfl_module_build_id(mod, &build_id, &id_vaddr);
	if (id_len < 0)
		id_len = 0;
	list = strdup(path_list);
	dir = strdup(file_name);
	if (!list || !dir)
		return -1;
	slash = strrchr(dir, '/');
	if (!slash)
		return -1;
	*slash = '\0';
	/* strtok_r() would skip the empty entry (the binary's own directory). */
	for (entry = list; entry; entry = save) {
		_cleanup_free_ char *where = NULL;

		save = strchr(entry, ':');
		if (save)
			*save++ = '\0';
		/* libdwfl's '-' (no CRC check) is not honoured: the CRC or build id must match. */
		if (entry[0] == '+' || entry[0] == '-')
			entry++;
		if (entry[0] == '\0')
			where = strdup(dir);
		else if (streq(entry, ".debug"))
			(void)!asprintf(&where, "%s/.debug", dir);
		else if (entry[0] == '/')
			(void)!asprintf(&where, "%s%s", entry, dir);
		else
			continue; /* other relative entries: not a standard place */
		if (!where)
			return -1;
		fd = debuglink_try(d, where, debuglink_file, &st, build_id, (size_t)id_len,
				   debuglink_crc, debuginfo_file_name);
		if (fd >= 0 && d)
			d->debug_fds_given++;
		if (fd >= 0 || fd == -ENOMEM)
			return fd < 0 ? -1 : fd;
	}
	return -1;
}

/*
 * find_debuginfo_any() for libdwfl, which also notes what the binary's debug file (the first
 * file given in an opening; the next is a dwz file) really is: its path resolved from the
 * descriptor and its identity, for the owner's access check (dwarf_info_debug_stat()). A later
 * opening must find the very same file.
 */
static int find_debuginfo(Dwfl_Module *mod, void **userdata, const char *modname, Dwarf_Addr base,
			  const char *file_name, const char *debuglink_file,
			  GElf_Word debuglink_crc, char **debuginfo_file_name)
{
	DwarfInfo *d = *userdata;
	unsigned given = d ? d->debug_fds_given : 0;
	char link[64], real[PATH_MAX];
	struct stat st;
	ssize_t n;
	int fd;

	if (d && d->debug_path && !d->debug_path[0])
		return -1; /* no separate debug files */
	fd = find_debuginfo_any(mod, userdata, modname, base, file_name, debuglink_file,
				debuglink_crc, debuginfo_file_name);
	if (fd < 0 || !d || given > 0)
		return fd;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, real, sizeof(real) - 1);
	if (fstat(fd, &st) < 0 || n <= 0 ||
	    (d->have_debug_st &&
	     (st.st_dev != d->debug_st.st_dev || st.st_ino != d->debug_st.st_ino))) {
		close(fd);
		d->debug_fds_given = 0;
		return -1;
	}
	real[n] = 0;
	if (!d->debug_file && !(d->debug_file = strdup(real))) {
		close(fd);
		d->debug_fds_given = 0;
		return -1;
	}
	d->debug_st = st;
	d->have_debug_st = true;
	return fd;
}

static int libdw_open_now(DwarfInfo *d)
{
	const char *mainfile = NULL, *debugfile = NULL, *altname;
	size_t heap = heap_in_use(), own = own_memory(d);
	const void *altid;
	bool separate;
	Dwarf *dw;
	Dwarf_Addr elf_bias, dw_bias;
	void **userdata;
	int64_t delta;
	int dfd;

	d->callbacks = (Dwfl_Callbacks){
		.find_debuginfo = find_debuginfo,
		.section_address = dwfl_offline_section_address,
		.debuginfo_path = &d->debug_path,
	};
	d->dwfl = dwfl_begin(&d->callbacks);
	if (!d->dwfl)
		return -ENOMEM;
	/* libdwfl takes the descriptor it is given. */
	dfd = fcntl(d->fd, F_DUPFD_CLOEXEC, 3);
	if (dfd < 0) {
		libdw_close(d);
		return negative_errno();
	}
	d->mod = dwfl_report_offline(d->dwfl, d->path, d->path, dfd);
	if (!d->mod) {
		close(dfd);
		libdw_close(d);
		return d->open_error = -ENOEXEC;
	}
	dwfl_report_end(d->dwfl, NULL, NULL);
	/* find_debuginfo() reads the search path from here. */
	dwfl_module_info(d->mod, &userdata, NULL, NULL, NULL, NULL, NULL, NULL);
	*userdata = d;
	/* Finds and opens the separate debug file if the binary has no DWARF itself. */
	d->debug_fds_given = 0;
	if (!dwfl_module_getelf(d->mod, &elf_bias) ||
	    !(dw = dwfl_module_getdwarf(d->mod, &dw_bias))) {
		libdw_close(d);
		return d->open_error = -ENOENT;
	}
	dwfl_module_info(d->mod, NULL, NULL, NULL, NULL, NULL, &mainfile, &debugfile);
	separate = debugfile && mainfile && !streq(debugfile, mainfile);
	/*
	 * A .gnu_debugaltlink (dwz) names its file by path: libdwfl asked find_debuginfo() for it,
	 * which gives it only by build id under the debug roots. If that gave nothing, libdw would
	 * open the path itself on first use, as we are, whatever it names: mark the alternate file
	 * as looked for and absent (libdw's own "tried once" value; dwarf_end() leaves it alone).
	 */
	if (dwelf_dwarf_gnu_debugaltlink(dw, &altname, &altid) > 0 &&
	    d->debug_fds_given <= (separate ? 1u : 0u))
		dwarf_setalt(dw, (Dwarf *)-1);
	delta = (int64_t)(elf_bias - dw_bias);
	if (d->opens > 0 && (delta != d->dw_delta || elf_bias != d->elf_bias)) {
		/* Not the DWARF the CU indexes were built from. */
		libdw_close(d);
		return d->open_error = -ESTALE;
	}
	d->elf_bias = elf_bias;
	d->dw_delta = delta;
	if (!separate && d->debug_file) {
		/* A file was given, and not used: no debug file to speak of. */
		d->debug_file = mfree(d->debug_file);
		d->have_debug_st = false;
	}
	d->opens++;
	d->libdw_bytes = 0;
	charge_libdw(d, heap, own);
	d->open_bytes = d->libdw_bytes;
	d->last_open_bytes = d->open_bytes;
	return 0;
}

static int libdw_open_guarded(DwarfInfo *d)
{
	sigjmp_buf jb, *outer = fault_jmp;
	int r;

	fault_handler_install();
	if (sigsetjmp(jb, 1)) {
		fault_jmp = outer;
		return libdw_faulted(d);
	}
	fault_jmp = &jb;
	r = libdw_open_now(d);
	fault_jmp = outer;
	return r;
}

/* Opens libdwfl if it is not, and counts what that cost. */
static int libdw_open(DwarfInfo *d)
{
	uint64_t t0;
	int r;

	if (d->dwfl)
		return 0;
	if (d->open_error < 0)
		return d->open_error;
	/* Not again without more memory to spare than it took last time, or not long ago closed for
	 * memory (see dwarf_info_release()). */
	if ((d->counters && d->counters->limited && d->last_open_bytes >= d->counters->headroom) ||
	    (d->reopen_after && now_ns() < d->reopen_after)) {
		if (d->counters)
			d->counters->deferred++;
		return -EAGAIN;
	}
	t0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
	r = libdw_open_guarded(d);
	d->open_cpu_ns = clock_ns(CLOCK_THREAD_CPUTIME_ID) - t0;
	if (d->counters) {
		d->counters->opens++;
		d->counters->open_ns += d->open_cpu_ns;
	}
	return r;
}

DwarfInfo *dwarf_info_free(DwarfInfo *d)
{
	if (!d)
		return NULL;
	libdw_close(d);
	cu_building_done(d);
	for (size_t i = 0; i < d->n_cus; i++) {
		free(d->cus[i]->ranges);
		free(d->cus[i]->infos);
		free(d->cus[i]->rows);
		free(d->cus[i]->files);
		free(d->cus[i]);
	}
	if (d->remote_id && d->counters && d->counters->worker)
		dwarf_worker_unregister(d->counters->worker, d->remote_id);
	free(d->addr_cus);
	hash_index_free(d->addr_index);
	free(d->cus);
	free(d->spans);
	hash_index_free(d->cu_index);
	pool_done(&d->pool);
	if (d->fd >= 0)
		close(d->fd);
	free(d->path);
	free(d->debug_path);
	free(d->debug_file);
	free(d);
	return NULL;
}

/* Opening through the worker: 0 with d waiting for its answer (up to the counters' slice of
 * time, then lookups are -EINPROGRESS until it comes). */
static int remote_open(DwarfInfo *d)
{
	DwarfWorker *w = d->counters->worker;
	int r;

	r = hash_index_new(&d->addr_index);
	if (r < 0)
		return r;
	r = dwarf_worker_register(w, d, &d->remote_id);
	if (r < 0)
		return r;
	d->remote_open = -EINPROGRESS;
	d->remote_vaddr = UINT64_MAX;
	d->remote_pending = true;
	r = dwarf_worker_ask(w, d->remote_id);
	if (r < 0)
		return r;
	dwarf_worker_wait(w, d->remote_id);
	return 0;
}

int dwarf_info_open_expecting(int fd, const char *path, const char *debug_path,
			      const struct stat *expect, DwarfCounters *counters, DwarfInfo **ret)
{
	_cleanup_(dwarf_info_freep) DwarfInfo *d = calloc(1, sizeof(*d));
	struct stat st;
	ElfHeaders h;
	int r;

	if (!d)
		return -ENOMEM;
	d->fd = -1;
	d->counters = counters;
	d->debug_path = strdup(debug_path ?: ":.debug:/usr/lib/debug");
	d->path = strdup(path);
	if (!d->debug_path || !d->path)
		return -ENOMEM;
	d->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (d->fd < 0)
		return negative_errno();
	/* Each fault leaks what libdw held for that file: past a few, files their users own
	 * (where faults come from) are not opened. */
	if (counters && counters->faults >= DWARFINFO_MAX_FAULTS &&
	    (fstat(fd, &st) < 0 || st.st_uid != 0))
		return -EPERM;
	/* Before libdw inflates anything of it. */
	r = elfsym_check_headers(fd, &h);
	if (r < 0)
		return r;
	if (inflates_too_much(&h)) {
		if (counters)
			counters->refused++;
		return -EFBIG;
	}
	r = hash_index_new(&d->cu_index);
	if (r < 0)
		return r;
	r = hash_index_new(&d->pool.index);
	if (r < 0)
		return r;
	if (counters && counters->worker)
		r = remote_open(d);
	else {
		/* Only the debug file a first opening (in another process) found. */
		if (expect) {
			d->debug_st = *expect;
			d->have_debug_st = true;
		}
		r = libdw_open(d);
	}
	if (r < 0)
		return r;
	*ret = TAKE_PTR(d);
	return 0;
}

int dwarf_info_open(int fd, const char *path, const char *debug_path, DwarfCounters *counters,
		    DwarfInfo **ret)
{
	return dwarf_info_open_expecting(fd, path, debug_path, NULL, counters, ret);
}

int dwarf_info_new_detached(DwarfCounters *counters, uint64_t vaddr, DwarfInfo **ret)
{
	_cleanup_(dwarf_info_freep) DwarfInfo *d = calloc(1, sizeof(*d));
	int r;

	if (!d)
		return -ENOMEM;
	d->fd = -1;
	d->counters = counters;
	r = hash_index_new(&d->cu_index);
	if (r >= 0)
		r = hash_index_new(&d->pool.index);
	if (r >= 0)
		r = hash_index_new(&d->addr_index);
	if (r < 0)
		return r;
	d->remote_id = UINT64_MAX;
	d->remote_pending = true;
	d->remote_vaddr = vaddr;
	*ret = TAKE_PTR(d);
	return 0;
}

int dwarf_info_opened(const DwarfInfo *d)
{
	return d->remote_id ? d->remote_open : 0;
}

int64_t dwarf_info_dw_delta(const DwarfInfo *d)
{
	return d->dw_delta;
}

/* ---- CU indexes ---- */

static const char *attr_string(Dwarf_Die *die, unsigned name)
{
	Dwarf_Attribute attr;

	return dwarf_attr_integrate(die, name, &attr) ? dwarf_formstring(&attr) : NULL;
}

static uint32_t attr_udata(Dwarf_Die *die, unsigned name)
{
	Dwarf_Attribute attr;
	Dwarf_Word v;

	if (!dwarf_attr(die, name, &attr) || dwarf_formudata(&attr, &v) != 0 || v > UINT32_MAX)
		return 0;
	return (uint32_t)v;
}

typedef struct CuBuilder {
	Range *ranges;
	size_t n, allocated;
	DieInfo *infos;
	size_t n_infos, allocated_infos;
	LineRow *rows;
	size_t n_rows, allocated_rows;
	uint32_t *row_files; /* pool ids */
	size_t n_row_files, allocated_row_files;
	Dwarf_Files *files; /* the CU's file table */
	size_t n_files;
	uint32_t *file_ids; /* pool ids of files' names, UINT32_MAX until needed */
	int version;	    /* of the CU: file 0 is a file from DWARF 5 on */
	/* Where the walk is (see cu_build_start()). */
	Dwarf_Die cudie;
	Dwarf_Die stack[MAX_DEPTH];
	unsigned depth;
	bool walked;
	/* Where the copy of the line table is. */
	Dwarf_Lines *lines;
	size_t n_lines, next_line;
	uint64_t line_base;
	bool rows_unsorted;
} CuBuilder;

static void cu_builder_done(CuBuilder *b)
{
	free(b->ranges);
	free(b->infos);
	free(b->rows);
	free(b->row_files);
	free(b->file_ids);
}

static void cu_building_done(DwarfInfo *d)
{
	if (d->building)
		cu_builder_done(d->building);
	free(d->building);
	free(d->building_cu);
	d->building = NULL;
	d->building_cu = NULL;
}

/*
 * The pool id of the name of file idx of a file table. libdw joins a file's name with its
 * include directory, and that directory is relative in many builds (distro and pyenv ones run
 * the compiler in the source tree: "Objects" and "listobject.c" make "Objects/listobject.c"). A
 * relative name is joined with the compilation directory, (*dirs)[0], as addr2line and
 * eu-addr2line print it, so that the source file can be found.
 */
static int file_intern(DwarfInfo *d, Dwarf_Files *files, size_t idx, uint32_t *ret)
{
	const char *name = dwarf_filesrc(files, idx, NULL, NULL);
	const char *const *dirs;
	_cleanup_free_ char *path = NULL;
	size_t n_dirs, dir_len;

	if (!name || name[0] == '/' || dwarf_getsrcdirs(files, &dirs, &n_dirs) != 0 ||
	    n_dirs == 0 || !dirs[0] || !dirs[0][0])
		return pool_intern(&d->pool, name, ret);
	dir_len = strnlen(dirs[0], STRING_MAX);
	if (asprintf(&path, "%.*s%s%.*s", (int)dir_len, dirs[0],
		     dirs[0][dir_len - 1] == '/' ? "" : "/", (int)STRING_MAX, name) < 0)
		return -ENOMEM;
	return pool_intern(&d->pool, path, ret);
}

/* The same, once per file of the CU being indexed (file tables of other CUs each time). */
static int builder_file(DwarfInfo *d, CuBuilder *b, Dwarf_Files *files, size_t idx, uint32_t *ret)
{
	uint32_t id;
	int r;

	if (files != b->files || idx >= b->n_files || !b->file_ids)
		return file_intern(d, files, idx, ret);
	if (b->file_ids[idx] == UINT32_MAX) {
		r = file_intern(d, files, idx, &id);
		if (r < 0)
			return r;
		b->file_ids[idx] = id;
	}
	*ret = b->file_ids[idx];
	return 0;
}

/*
 * The file a DIE's DW_AT_decl_file names (pool id, 0 if none). The attribute may come from an
 * abstract origin or specification in another CU (LTO), whose file table it indexes.
 */
static int decl_file(DwarfInfo *d, CuBuilder *b, Dwarf_Die *die, uint32_t *ret)
{
	Dwarf_Attribute attr;
	Dwarf_Files *files;
	Dwarf_Word idx;
	Dwarf_Die cudie;
	Dwarf_Half version;
	size_t n;

	if (!dwarf_attr_integrate(die, DW_AT_decl_file, &attr) ||
	    dwarf_formudata(&attr, &idx) != 0 ||
	    !dwarf_cu_die(attr.cu, &cudie, &version, NULL, NULL, NULL, NULL, NULL) ||
	    (idx == 0 && version < 5) || dwarf_getsrcfiles(&cudie, &files, &n) != 0 || idx >= n) {
		*ret = 0;
		return 0;
	}
	return builder_file(d, b, files, idx, ret);
}

/* Records a function or inlined call DIE with its address ranges. */
static int add_die(DwarfInfo *d, CuBuilder *b, Dwarf_Die *die, bool inlined)
{
	Dwarf_Addr base, low, high;
	ptrdiff_t off = 0;
	DieInfo info = { .inlined = inlined };
	uint32_t idx = (uint32_t)b->n_infos;
	const char *name, *linkage;
	bool any = false;
	int line, r;

	while ((off = dwarf_ranges(die, off, &base, &low, &high)) > 0) {
		if (high <= low)
			continue;
		if (b->n >= CU_MAX_RANGES)
			return -E2BIG;
		if (GREEDY_REALLOC(b->ranges, b->allocated, b->n + 1) < 0)
			return -ENOMEM;
		b->ranges[b->n++] = (Range){ .low = low, .high = high, .parent = -1, .info = idx };
		any = true;
	}
	if (!any)
		return 0; /* a declaration, or code that was optimised away */
	linkage = attr_string(die, DW_AT_linkage_name) ?: attr_string(die, DW_AT_MIPS_linkage_name);
	name = attr_string(die, DW_AT_name) ?: linkage;
	r = pool_intern(&d->pool, linkage, &info.linkage);
	if (r >= 0)
		r = pool_intern(&d->pool, name, &info.name);
	if (r >= 0)
		r = decl_file(d, b, die, &info.decl_file);
	if (r < 0)
		return r;
	if (dwarf_decl_line(die, &line) == 0 && line > 0)
		info.decl_line = (uint32_t)line;
	if (inlined) {
		uint32_t f = attr_udata(die, DW_AT_call_file);

		if (b->files && f < b->n_files && (f > 0 || b->version >= 5)) {
			r = builder_file(d, b, b->files, f, &info.call_file);
			if (r < 0)
				return r;
		}
		info.call_line = attr_udata(die, DW_AT_call_line);
	}
	if (GREEDY_REALLOC(b->infos, b->allocated_infos, b->n_infos + 1) < 0)
		return -ENOMEM;
	b->infos[b->n_infos++] = info;
	return 0;
}

static int row_cmp(const void *a, const void *b)
{
	const LineRow *x = a, *y = b;

	return x->off < y->off ? -1 : x->off > y->off;
}

/* The CU-local index of a file (pool id). */
static int row_file(CuBuilder *b, uint32_t id, uint32_t *ret)
{
	/* Rows come in runs of one file: look at the last few first. */
	for (size_t i = b->n_row_files; i > 0; i--)
		if (b->row_files[i - 1] == id) {
			*ret = (uint32_t)(i - 1);
			return 0;
		}
	if (b->n_row_files >= ROW_FILE_UNKNOWN) {
		*ret = ROW_FILE_UNKNOWN;
		return 0;
	}
	if (GREEDY_REALLOC(b->row_files, b->allocated_row_files, b->n_row_files + 1) < 0)
		return -ENOMEM;
	b->row_files[b->n_row_files] = id;
	*ret = (uint32_t)b->n_row_files++;
	return 0;
}

/*
 * Keeps the rows a lookup can land on: of rows at one address the last that is not a
 * sequence's end (else the end), and of those only the ones that change file or line.
 */
static void rows_compact(CuBuilder *b)
{
	size_t keep = 0;

	for (size_t i = 0; i < b->n_rows;) {
		size_t j = i, pick = SIZE_MAX;

		for (; j < b->n_rows && b->rows[j].off == b->rows[i].off; j++)
			if (b->rows[j].file != ROW_END_OF_SEQUENCE)
				pick = j;
		if (pick == SIZE_MAX)
			pick = j - 1;
		if (keep == 0 || b->rows[keep - 1].file != b->rows[pick].file ||
		    b->rows[keep - 1].line != b->rows[pick].line)
			b->rows[keep++] = b->rows[pick];
		i = j;
	}
	b->n_rows = keep;
}

/*
 * libdw's file and line tables of the CU, and the lowest address of its rows. libdw decodes the
 * whole line program at once (dwarf_getsrcfiles() too, in the elfutils of Debian 12): 40 ms of
 * CPU for the 260,000 rows of a CU of 170,000 DIEs. Our copy of the rows (libdw's take many
 * times the memory and go with libdwfl) is made in steps (cu_build_step()).
 */
static void lines_fetch(CuBuilder *b)
{
	if (dwarf_getsrcfiles(&b->cudie, &b->files, &b->n_files) != 0) {
		b->files = NULL;
		b->n_files = 0;
	}
	if (dwarf_getsrclines(&b->cudie, &b->lines, &b->n_lines) != 0) {
		b->lines = NULL;
		b->n_lines = 0;
	}
	b->line_base = UINT64_MAX;
	for (size_t i = 0; i < b->n_lines; i++) {
		Dwarf_Line *l = dwarf_onesrcline(b->lines, i);
		Dwarf_Addr a;

		if (l && dwarf_lineaddr(l, &a) == 0)
			b->line_base = MIN(b->line_base, a);
	}
}

/* Copies line b->next_line; 1 when the rows are at their bound. */
static int line_add(DwarfInfo *d, CuBuilder *b)
{
	Dwarf_Line *l = dwarf_onesrcline(b->lines, b->next_line++);
	LineRow row = { 0 };
	Dwarf_Files *files;
	Dwarf_Addr a;
	bool end = false;
	uint32_t id, file;
	size_t idx;
	int lineno = 0, r;

	if (!l || dwarf_lineaddr(l, &a) != 0 || a - b->line_base > UINT32_MAX)
		return 0;
	if (b->n_rows >= CU_MAX_ROWS)
		return 1;
	row.off = (uint32_t)(a - b->line_base);
	if (dwarf_lineendsequence(l, &end) == 0 && end) {
		row.file = ROW_END_OF_SEQUENCE;
	} else {
		if (dwarf_line_file(l, &files, &idx) == 0)
			r = builder_file(d, b, files, idx, &id);
		else
			r = pool_intern(&d->pool, NULL, &id);
		if (r >= 0)
			r = row_file(b, id, &file);
		if (r < 0)
			return r;
		row.file = file & 0x3ff;
		if (dwarf_lineno(l, &lineno) == 0 && lineno > 0 && lineno < (1 << 22))
			row.line = (uint32_t)lineno & 0x3fffff;
	}
	if (b->n_rows > 0 && b->rows[b->n_rows - 1].off > row.off)
		b->rows_unsorted = true;
	if (GREEDY_REALLOC(b->rows, b->allocated_rows, b->n_rows + 1) < 0)
		return -ENOMEM;
	b->rows[b->n_rows++] = row;
	return 0;
}

static int range_cmp(const void *a, const void *b)
{
	const Range *x = a, *y = b;

	if (x->low != y->low)
		return x->low < y->low ? -1 : 1;
	if (x->high != y->high)
		return x->high > y->high ? -1 : 1;	   /* the wider (the parent) first */
	return x->info < y->info ? -1 : x->info > y->info; /* DIE order: the parent first */
}

static void *shrink_to_fit(void *p, size_t n, size_t size)
{
	return n ? (realloc(p, n * size) ?: p) : (free(p), NULL);
}

static int cu_version(Dwarf_Die *cudie)
{
	Dwarf_Half version;
	Dwarf_Die die;

	return dwarf_cu_die(cudie->cu, &die, &version, NULL, NULL, NULL, NULL, NULL) ? version : 0;
}

/* Once the file and line tables are in: the first steps of the walk. */
static int builder_ready(CuBuilder *b)
{
	if (b->n_files > 0) {
		b->file_ids = malloc(b->n_files * sizeof(uint32_t));
		if (!b->file_ids)
			return -ENOMEM;
		memset(b->file_ids, 0xff, b->n_files * sizeof(uint32_t));
	}
	b->version = cu_version(&b->cudie);
	if (dwarf_child(&b->cudie, &b->stack[0]) == 0)
		b->depth = 1;
	return 0;
}

/*
 * A CU is indexed in steps: its DIEs walked depth first (bounded), then its line table copied,
 * each step until a deadline, so that a CU of a million DIEs (seconds of work) does not hold
 * the daemon's loop: its lookups are answered without DWARF meanwhile (-EINPROGRESS) and the
 * owner calls dwarf_info_work() until it is done. The walk's state (the path of DIEs from the
 * CU down) stays valid while libdwfl is open; closing it drops the build. One CU at a time.
 */
static int cu_build_start(DwarfInfo *d, Dwarf_Die *cudie)
{
	CuBuilder *b;
	int r;

	/* Owned by d while being built: a fault may jump out of the walk (see fault_handler()). */
	cu_building_done(d);
	d->building_cu = calloc(1, sizeof(CuIndex));
	b = d->building = calloc(1, sizeof(CuBuilder));
	if (!d->building_cu || !b) {
		cu_building_done(d);
		return -ENOMEM;
	}
	b->cudie = *cudie;
	d->building_cu->offset = dwarf_dieoffset(cudie);
	lines_fetch(b);
	r = builder_ready(b);
	if (r < 0)
		cu_building_done(d);
	return r;
}

/* Past the deadline (thread CPU time; 0: none)? Asked every STEP_CHECK units of work. */
#define STEP_CHECK 256u
static bool step_over(uint64_t deadline, size_t done)
{
	return deadline && done % STEP_CHECK == 0 && clock_ns(CLOCK_THREAD_CPUTIME_ID) >= deadline;
}

/* Walks on from where the last step stopped: 1 when the walk is over, 0 at the deadline. */
static int dies_step(DwarfInfo *d, CuBuilder *b, uint64_t deadline)
{
	size_t done = 0;
	int r = 0;

	while (b->depth > 0) {
		Dwarf_Die *die = &b->stack[b->depth - 1];
		int tag;

		if (step_over(deadline, ++done))
			return 0;
		if (++d->dies > DWARFINFO_MAX_DIES)
			return -E2BIG;
		tag = dwarf_tag(die);
		if (tag == DW_TAG_subprogram || tag == DW_TAG_inlined_subroutine)
			r = add_die(d, b, die, tag == DW_TAG_inlined_subroutine);
		if (r < 0)
			return r;
		/* Down into children (inlined calls sit in blocks and other calls), else across to
		 * the next sibling, else back up. */
		if (b->depth < MAX_DEPTH && dwarf_haschildren(die) &&
		    dwarf_child(die, &b->stack[b->depth]) == 0) {
			b->depth++;
			continue;
		}
		while (b->depth > 0 &&
		       dwarf_siblingof(&b->stack[b->depth - 1], &b->stack[b->depth - 1]) != 0)
			b->depth--;
	}
	return 1;
}

/* Copies rows on from where the last step stopped: 1 when all are, 0 at the deadline. */
static int lines_step(DwarfInfo *d, CuBuilder *b, uint64_t deadline)
{
	size_t done = 0;
	int r;

	while (b->next_line < b->n_lines) {
		if (step_over(deadline, ++done))
			return 0;
		r = line_add(d, b);
		if (r < 0)
			return r;
		if (r > 0)
			break;
	}
	/* libdw hands them out sorted; the order of rows at one address matters (qsort is not
	 * stable, so only when they are not). */
	if (b->rows_unsorted)
		qsort(b->rows, b->n_rows, sizeof(LineRow), row_cmp);
	rows_compact(b);
	return 1;
}

/* The index of the CU whose rows and ranges are all in. */
static CuIndex *cu_build_finish(DwarfInfo *d)
{
	CuBuilder *b = d->building;
	CuIndex *cu = d->building_cu;
	int32_t open[MAX_DEPTH];
	unsigned n_open = 0;

	/* Nest the ranges: each one's parent is the innermost earlier range containing it. */
	if (b->n > 1)
		qsort(b->ranges, b->n, sizeof(Range), range_cmp);
	for (size_t i = 0; i < b->n; i++) {
		while (n_open > 0 && b->ranges[open[n_open - 1]].high < b->ranges[i].high)
			n_open--;
		while (n_open > 0 && b->ranges[open[n_open - 1]].high <= b->ranges[i].low)
			n_open--;
		b->ranges[i].parent = n_open > 0 ? open[n_open - 1] : -1;
		if (n_open < MAX_DEPTH)
			open[n_open++] = (int32_t)i;
	}
	cu->line_base = b->line_base;
	cu->ranges = shrink_to_fit(b->ranges, b->n, sizeof(Range));
	cu->n = b->n;
	cu->infos = shrink_to_fit(b->infos, b->n_infos, sizeof(DieInfo));
	cu->n_infos = b->n_infos;
	cu->rows = shrink_to_fit(b->rows, b->n_rows, sizeof(LineRow));
	cu->n_rows = b->n_rows;
	cu->files = shrink_to_fit(b->row_files, b->n_row_files, sizeof(uint32_t));
	free(b->file_ids);
	cu->n_files = b->n_row_files;
	d->memory += sizeof(*cu) + b->n * sizeof(Range) + b->n_infos * sizeof(DieInfo) +
		     b->n_rows * sizeof(LineRow) + b->n_row_files * sizeof(uint32_t);
	free(b);
	d->building = NULL;
	d->building_cu = NULL;
	return cu;
}

/* One step of the CU being built, up to the deadline: 1 when it is done (*ret, the builder
 * gone), 0 when there is more, or an error (the builder gone). A walk that reached the bound on
 * DIEs still copies the line table. */
static int cu_build_step(DwarfInfo *d, uint64_t deadline, CuIndex **ret)
{
	CuBuilder *b = d->building;
	int r = 1;

	if (!b->walked) {
		r = dies_step(d, b, deadline);
		if (r == 0)
			return 0;
		b->walked = true;
		if (r < 0 && r != -E2BIG) {
			cu_building_done(d);
			return r;
		}
	}
	r = lines_step(d, b, deadline);
	if (r < 0) {
		cu_building_done(d);
		return r;
	}
	if (r == 0)
		return 0;
	*ret = cu_build_finish(d);
	return 1;
}

static uint64_t off_hash(Dwarf_Off off)
{
	return (uint64_t)off * 0x9E3779B97F4A7C15ULL;
}

static bool cu_eq(uint32_t idx, const void *key, void *userdata)
{
	return ((const DwarfInfo *)userdata)->cus[idx]->offset == *(const Dwarf_Off *)key;
}

static int span_add(DwarfInfo *d, uint64_t low, uint64_t high, uint32_t cu)
{
	size_t lo = 0, hi = d->n_spans;

	if (high <= low)
		return 0;
	if (GREEDY_REALLOC(d->spans, d->allocated_spans, d->n_spans + 1) < 0)
		return -ENOMEM;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (d->spans[mid].low <= low)
			lo = mid + 1;
		else
			hi = mid;
	}
	memmove(&d->spans[lo + 1], &d->spans[lo], (d->n_spans - lo) * sizeof(CuSpan));
	d->spans[lo] = (CuSpan){ .low = low, .high = high, .cu = cu };
	d->n_spans++;
	return 0;
}

/* Remembers where the CU's code is: its own ranges, else the span of its functions. */
static int spans_of(DwarfInfo *d, Dwarf_Die *cudie, const CuIndex *cu, uint32_t idx)
{
	Dwarf_Addr base, low, high, min = UINT64_MAX, max = 0;
	ptrdiff_t off = 0;
	unsigned n = 0;
	int r;

	while ((off = dwarf_ranges(cudie, off, &base, &low, &high)) > 0 && n < CU_MAX_SPANS) {
		r = span_add(d, low, high, idx);
		if (r < 0)
			return r;
		n++;
	}
	/* Past the cap, the rest is covered by one span over the CU's functions. */
	if (n > 0 && n < CU_MAX_SPANS)
		return 0;
	for (size_t i = 0; i < cu->n; i++) {
		min = MIN(min, cu->ranges[i].low);
		max = MAX(max, cu->ranges[i].high);
	}
	return cu->n ? span_add(d, min, max, idx) : 0;
}

static void cu_index_free(CuIndex *cu)
{
	free(cu->ranges);
	free(cu->infos);
	free(cu->rows);
	free(cu->files);
	free(cu);
}

/* Makes a built CU known to lookups, where its code is: cudie's ranges, or (from the worker,
 * cudie NULL) the n spans given. */
static int cu_install(DwarfInfo *d, Dwarf_Die *cudie, const CuSpan *spans, size_t n, CuIndex *cu)
{
	uint64_t hash = off_hash(cu->offset);
	int r;

	r = GREEDY_REALLOC(d->cus, d->allocated_cus, d->n_cus + 1);
	if (r >= 0)
		r = hash_index_insert(d->cu_index, hash, (uint32_t)d->n_cus);
	if (r >= 0 && cudie)
		r = spans_of(d, cudie, cu, (uint32_t)d->n_cus);
	for (size_t i = 0; r >= 0 && i < n; i++)
		r = span_add(d, spans[i].low, spans[i].high, (uint32_t)d->n_cus);
	if (r < 0) {
		size_t keep = 0;

		(void)hash_index_remove(d->cu_index, hash, (uint32_t)d->n_cus);
		/* Spans added before the failure name a CU that is not there. */
		for (size_t i = 0; i < d->n_spans; i++)
			if (d->spans[i].cu != d->n_cus)
				d->spans[keep++] = d->spans[i];
		d->n_spans = keep;
		cu_index_free(cu);
		return r;
	}
	d->cus[d->n_cus++] = cu;
	return 0;
}

/* A step of the CU being built (its slice of time), installed when done: 0 and *ret then,
 * -EINPROGRESS while there is more. */
static int cu_continue(DwarfInfo *d, CuIndex **ret)
{
	uint64_t slice = d->counters ? d->counters->slice_ns : 0;
	Dwarf_Die cudie = d->building->cudie;
	CuIndex *cu;
	int r;

	r = cu_build_step(d, slice ? clock_ns(CLOCK_THREAD_CPUTIME_ID) + slice : 0, &cu);
	if (r < 0)
		return r;
	if (r == 0) {
		if (d->counters)
			d->counters->slices++;
		return -EINPROGRESS;
	}
	r = cu_install(d, &cudie, NULL, 0, cu);
	if (r < 0)
		return r;
	*ret = cu;
	return 0;
}

/* The index of a CU, built on first sight; -EINPROGRESS while it (or another CU) is being
 * built. */
static int cu_get(DwarfInfo *d, Dwarf_Die *cudie, CuIndex **ret)
{
	Dwarf_Off off = dwarf_dieoffset(cudie);
	uint32_t idx;
	int r;

	if (hash_index_find(d->cu_index, off_hash(off), cu_eq, &off, d, &idx) == 0) {
		*ret = d->cus[idx];
		return 0;
	}
	if (d->building)
		return -EINPROGRESS;
	r = cu_build_start(d, cudie);
	if (r < 0)
		return r;
	return cu_continue(d, ret);
}

/* The indexed CU whose code holds DWARF address a, NULL if none is known to. */
static CuIndex *cu_known(const DwarfInfo *d, uint64_t a)
{
	size_t lo = 0, hi = d->n_spans;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (d->spans[mid].low <= a)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* Spans of different CUs may overlap; look back over the ones starting below a. */
	for (size_t i = lo; i > 0; i--) {
		const CuSpan *s = &d->spans[i - 1];

		if (a < s->high)
			return d->cus[s->cu];
		if (lo - i >= 8)
			break;
	}
	return NULL;
}

/* Everything but libdw's share. */
static size_t own_memory(const DwarfInfo *d)
{
	return sizeof(*d) + d->memory + d->allocated_cus * sizeof(CuIndex *) +
	       hash_index_memory(d->cu_index) + d->allocated_spans * sizeof(CuSpan) +
	       pool_memory(&d->pool);
}

/* Charges libdw with what the heap grew by since heap0, less what our own tables took. */
static void charge_libdw(DwarfInfo *d, size_t heap0, size_t own0)
{
	size_t heap = heap_in_use(), own = own_memory(d);
	size_t grew = heap > heap0 ? heap - heap0 : 0, own_grew = own > own0 ? own - own0 : 0;

	d->libdw_bytes += grew > own_grew ? grew - own_grew : 0;
	d->libdw_used = now_ns();
}

/*
 * Runs step(d, arg) on libdw: under the fault guard (the mapped file, see fault_handler()),
 * charging libdw with what the heap grew by; then, since libdw never gives memory back while
 * open, starts over when what it read since holds too much (once the CU being built is done).
 */
static int libdw_step(DwarfInfo *d, int (*step)(DwarfInfo *d, void *arg), void *arg)
{
	sigjmp_buf jb, *outer = fault_jmp;
	size_t heap = heap_in_use(), own = own_memory(d);
	int r;

	fault_handler_install();
	if (sigsetjmp(jb, 1)) {
		fault_jmp = outer;
		return libdw_faulted(d);
	}
	fault_jmp = &jb;
	r = step(d, arg);
	fault_jmp = outer;
	charge_libdw(d, heap, own);
	if (!d->building && d->libdw_bytes - d->open_bytes > DWARFINFO_LIBDW_BUDGET)
		libdw_close(d);
	return r;
}

typedef struct CuFind {
	uint64_t vaddr;
	CuIndex **ret;
} CuFind;

static int cu_find_step(DwarfInfo *d, void *arg)
{
	CuFind *f = arg;
	Dwarf_Addr bias;
	Dwarf_Die *cudie = dwfl_module_addrdie(d->mod, f->vaddr + d->elf_bias, &bias);

	return cudie ? cu_get(d, cudie, f->ret) : -ENOENT;
}

/* The CU of ELF address vaddr through libdw, indexing it on first sight. */
static int cu_find(DwarfInfo *d, uint64_t vaddr, CuIndex **ret)
{
	CuFind f = { .vaddr = vaddr, .ret = ret };
	int r;

	r = libdw_open(d);
	if (r < 0)
		return r;
	return libdw_step(d, cu_find_step, &f);
}

static int work_step(DwarfInfo *d, void *arg)
{
	return cu_continue(d, arg);
}

int dwarf_info_work(DwarfInfo *d)
{
	CuIndex *cu;
	int r;

	if (!d->building)
		return 0;
	r = libdw_step(d, work_step, &cu);
	if (r == -EINPROGRESS)
		return 1;
	return r < 0 ? r : 0;
}

bool dwarf_info_building(const DwarfInfo *d)
{
	return d->building ||
	       (d->remote_id && (d->remote_pending || d->remote_open == -EINPROGRESS));
}

bool dwarf_info_has_work(const DwarfInfo *d)
{
	return d->building;
}

/* ---- a CU's index between the worker and its owner ---- */

/*
 * A CU body: this header, then its ranges (Range), their functions (WireInfo), its line rows
 * (LineRow), its files (string numbers), its spans (low, high), and the strings, each
 * NUL-terminated. String numbers count from 1 (0: none). One process writes it for another
 * built from the same sources; the reader checks all of it (dwarf_info_take_answer()).
 */
#define BODY_MAGIC 0x75637170u /* "pqcu" */
typedef struct BodyHeader {
	uint32_t magic, known; /* known: the CU was sent before; nothing follows */
	uint64_t offset, line_base;
	uint32_t n_ranges, n_infos, n_rows, n_files, n_spans, n_strings;
	uint64_t strings_bytes;
} BodyHeader;

typedef struct WireInfo {
	uint32_t name, linkage, decl_file, call_file, decl_line, call_line, inlined;
} WireInfo;

typedef struct WireSpan {
	uint64_t low, high;
} WireSpan;

/* Numbers the pool strings a body names, in order of first use; the bytes they take. */
typedef struct StringMap {
	uint32_t *number; /* by pool id, 0: not named */
	uint32_t *ids;	  /* by number - 1 */
	uint32_t n;
	uint64_t bytes;
} StringMap;

static uint32_t string_number(const Pool *p, StringMap *m, uint32_t id)
{
	if (id == 0 || id >= p->n)
		return 0;
	if (m->number[id] == 0) {
		m->ids[m->n] = id;
		m->number[id] = ++m->n;
		m->bytes += strlen(p->strs[id]) + 1;
	}
	return m->number[id];
}

static size_t body_size(const BodyHeader *h)
{
	return sizeof(*h) + h->n_ranges * sizeof(Range) + h->n_infos * sizeof(WireInfo) +
	       h->n_rows * sizeof(LineRow) + h->n_files * sizeof(uint32_t) +
	       h->n_spans * sizeof(WireSpan) + h->strings_bytes;
}

/* The body of cu (index idx), malloc'd. */
static int body_write(const DwarfInfo *d, const CuIndex *cu, uint32_t idx, void **ret_body,
		      size_t *ret_len)
{
	/* At most two strings per function and one per file. */
	size_t most = 4 * cu->n_infos + cu->n_files + 1;
	_cleanup_free_ uint32_t *number = calloc(d->pool.n + 1, sizeof(uint32_t));
	_cleanup_free_ uint32_t *ids = malloc(most * sizeof(uint32_t));
	StringMap m = { .number = number, .ids = ids };
	BodyHeader h = { .magic = BODY_MAGIC,
			 .offset = cu->offset,
			 .line_base = cu->line_base,
			 .n_ranges = (uint32_t)cu->n,
			 .n_infos = (uint32_t)cu->n_infos,
			 .n_rows = (uint32_t)cu->n_rows,
			 .n_files = (uint32_t)cu->n_files };
	uint8_t *body, *p;

	if (!number || !ids)
		return -ENOMEM;
	for (size_t i = 0; i < d->n_spans; i++)
		h.n_spans += d->spans[i].cu == idx;
	for (size_t i = 0; i < cu->n_infos; i++) {
		string_number(&d->pool, &m, cu->infos[i].name);
		string_number(&d->pool, &m, cu->infos[i].linkage);
		string_number(&d->pool, &m, cu->infos[i].decl_file);
		string_number(&d->pool, &m, cu->infos[i].call_file);
	}
	for (size_t i = 0; i < cu->n_files; i++)
		string_number(&d->pool, &m, cu->files[i]);
	h.n_strings = m.n;
	h.strings_bytes = m.bytes;
	p = body = malloc(body_size(&h));
	if (!body)
		return -ENOMEM;
	memcpy(p, &h, sizeof(h));
	p += sizeof(h);
	if (cu->n)
		memcpy(p, cu->ranges, cu->n * sizeof(Range));
	p += cu->n * sizeof(Range);
	for (size_t i = 0; i < cu->n_infos; i++) {
		const DieInfo *f = &cu->infos[i];
		WireInfo w = { .name = m.number[f->name],
			       .linkage = m.number[f->linkage],
			       .decl_file = m.number[f->decl_file],
			       .call_file = m.number[f->call_file],
			       .decl_line = f->decl_line,
			       .call_line = f->call_line,
			       .inlined = f->inlined };

		memcpy(p, &w, sizeof(w));
		p += sizeof(w);
	}
	if (cu->n_rows)
		memcpy(p, cu->rows, cu->n_rows * sizeof(LineRow));
	p += cu->n_rows * sizeof(LineRow);
	for (size_t i = 0; i < cu->n_files; i++) {
		uint32_t n = m.number[cu->files[i]];

		memcpy(p, &n, sizeof(n));
		p += sizeof(n);
	}
	for (size_t i = 0; i < d->n_spans; i++) {
		WireSpan w = { d->spans[i].low, d->spans[i].high };

		if (d->spans[i].cu != idx)
			continue;
		memcpy(p, &w, sizeof(w));
		p += sizeof(w);
	}
	for (uint32_t i = 0; i < m.n; i++) {
		size_t len = strlen(d->pool.strs[m.ids[i]]) + 1;

		memcpy(p, d->pool.strs[m.ids[i]], len);
		p += len;
	}
	*ret_body = body;
	*ret_len = (size_t)(p - body);
	return 0;
}

int dwarf_info_export_cu(DwarfInfo *d, uint64_t vaddr, void **ret_body, size_t *ret_len)
{
	BodyHeader h = { .magic = BODY_MAGIC, .known = 1 };
	CuIndex *cu;
	uint32_t idx;
	int r;

	r = cu_find(d, vaddr, &cu);
	if (r < 0)
		return r;
	h.offset = cu->offset;
	if (hash_index_find(d->cu_index, off_hash(cu->offset), cu_eq, &cu->offset, d, &idx) < 0)
		return -ENOENT;
	if (!cu->sent) {
		r = body_write(d, cu, idx, ret_body, ret_len);
		if (r < 0)
			return r;
		/* Sent: the owner keeps it; here only its identity is. */
		d->memory -= MIN(d->memory, cu->n * sizeof(Range) + cu->n_infos * sizeof(DieInfo) +
						    cu->n_rows * sizeof(LineRow) +
						    cu->n_files * sizeof(uint32_t));
		cu->ranges = mfree(cu->ranges);
		cu->infos = mfree(cu->infos);
		cu->rows = mfree(cu->rows);
		cu->files = mfree(cu->files);
		cu->n = cu->n_infos = cu->n_rows = cu->n_files = 0;
		cu->sent = true;
		return 1;
	}
	/* Known to the owner already (an address of it outside its spans). */
	*ret_body = malloc(sizeof(h));
	if (!*ret_body)
		return -ENOMEM;
	memcpy(*ret_body, &h, sizeof(h));
	*ret_len = sizeof(h);
	return 0;
}

/* A body's strings: n NUL-terminated ones of at most STRING_MAX bytes filling p..end exactly,
 * interned; ids[k] the pool id of string k + 1. */
static int body_strings(DwarfInfo *d, const char *p, const char *end, uint32_t n, uint32_t *ids)
{
	for (uint32_t k = 0; k < n; k++) {
		const char *nul = memchr(p, '\0', (size_t)MIN(end - p, (ptrdiff_t)STRING_MAX + 1));
		int r;

		if (!nul)
			return -EBADMSG;
		r = pool_intern(&d->pool, p, &ids[k + 1]);
		if (r < 0)
			return r;
		p = nul + 1;
	}
	return p == end ? 0 : -EBADMSG;
}

/* A string number of the body as a pool id; false if out of range. */
static bool body_id(const uint32_t *ids, uint32_t n_strings, uint32_t number, uint32_t *ret)
{
	if (number > n_strings)
		return false;
	*ret = ids[number];
	return true;
}

/* Checks a body's tables as cu_build_finish() leaves them, and copies them into cu. */
static int body_tables(const BodyHeader *h, const uint8_t *p, const uint32_t *ids, CuIndex *cu)
{
	const uint8_t *infos = p + h->n_ranges * sizeof(Range);
	const uint8_t *rows = infos + h->n_infos * sizeof(WireInfo);
	const uint8_t *files = rows + h->n_rows * sizeof(LineRow);

	cu->ranges = malloc(MAX(h->n_ranges, 1u) * sizeof(Range));
	cu->infos = malloc(MAX(h->n_infos, 1u) * sizeof(DieInfo));
	cu->rows = malloc(MAX(h->n_rows, 1u) * sizeof(LineRow));
	cu->files = malloc(MAX(h->n_files, 1u) * sizeof(uint32_t));
	if (!cu->ranges || !cu->infos || !cu->rows || !cu->files)
		return -ENOMEM;
	memcpy(cu->ranges, p, h->n_ranges * sizeof(Range));
	for (uint32_t i = 0; i < h->n_ranges; i++) {
		const Range *r = &cu->ranges[i];

		/* Sorted by address, each nested in an earlier one (or none): lookups binary
		 * search them and walk up to the parents. */
		if (r->low >= r->high || r->info >= h->n_infos || r->parent < -1 ||
		    r->parent >= (int32_t)i || (i > 0 && cu->ranges[i - 1].low > r->low))
			return -EBADMSG;
	}
	for (uint32_t i = 0; i < h->n_infos; i++) {
		WireInfo w;
		DieInfo *f = &cu->infos[i];

		memcpy(&w, infos + i * sizeof(w), sizeof(w));
		if (!body_id(ids, h->n_strings, w.name, &f->name) ||
		    !body_id(ids, h->n_strings, w.linkage, &f->linkage) ||
		    !body_id(ids, h->n_strings, w.decl_file, &f->decl_file) ||
		    !body_id(ids, h->n_strings, w.call_file, &f->call_file))
			return -EBADMSG;
		f->decl_line = w.decl_line;
		f->call_line = w.call_line;
		f->inlined = w.inlined != 0;
	}
	memcpy(cu->rows, rows, h->n_rows * sizeof(LineRow));
	for (uint32_t i = 0; i < h->n_rows; i++)
		if ((cu->rows[i].file >= h->n_files && cu->rows[i].file < ROW_FILE_UNKNOWN) ||
		    (i > 0 && cu->rows[i - 1].off > cu->rows[i].off))
			return -EBADMSG;
	for (uint32_t i = 0; i < h->n_files; i++) {
		uint32_t n;

		memcpy(&n, files + i * sizeof(n), sizeof(n));
		if (!body_id(ids, h->n_strings, n, &cu->files[i]))
			return -EBADMSG;
	}
	cu->offset = h->offset;
	cu->line_base = h->line_base;
	cu->n = h->n_ranges;
	cu->n_infos = h->n_infos;
	cu->n_rows = h->n_rows;
	cu->n_files = h->n_files;
	return 0;
}

/* Remembers the CU of an address the worker answered for (-1: none), if it is outside the
 * spans. */
static int addr_cu_note(DwarfInfo *d, uint64_t vaddr, int32_t cu);

/* Takes a CU body from the worker for address vaddr, checked against the bounds a CU built here
 * has. */
static int body_take(DwarfInfo *d, uint64_t vaddr, const uint8_t *body, size_t len)
{
	_cleanup_free_ uint32_t *ids = NULL;
	_cleanup_free_ CuSpan *spans = NULL;
	BodyHeader h;
	CuIndex *cu;
	const uint8_t *p;
	uint32_t idx;
	int r;

	if (len < sizeof(h))
		return -EBADMSG;
	memcpy(&h, body, sizeof(h));
	if (h.magic != BODY_MAGIC)
		return -EBADMSG;
	if (hash_index_find(d->cu_index, off_hash(h.offset), cu_eq, &h.offset, d, &idx) == 0)
		return addr_cu_note(d, vaddr, (int32_t)idx);
	if (h.known || h.n_ranges > CU_MAX_RANGES || h.n_infos > CU_MAX_RANGES ||
	    h.n_rows > CU_MAX_ROWS || h.n_files > ROW_FILE_UNKNOWN || h.n_spans > CU_MAX_SPANS ||
	    h.n_strings > 4 * (uint64_t)h.n_infos + h.n_files ||
	    h.strings_bytes > (uint64_t)h.n_strings * (STRING_MAX + 1) || body_size(&h) != len)
		return -EBADMSG;
	p = body + sizeof(h);
	ids = calloc((size_t)h.n_strings + 1, sizeof(uint32_t));
	spans = malloc(MAX(h.n_spans, 1u) * sizeof(CuSpan));
	cu = calloc(1, sizeof(*cu));
	if (!ids || !spans || !cu) {
		free(cu);
		return -ENOMEM;
	}
	r = body_strings(d, (const char *)body + len - h.strings_bytes, (const char *)body + len,
			 h.n_strings, ids);
	if (r >= 0)
		r = body_tables(&h, p, ids, cu);
	p += h.n_ranges * sizeof(Range) + h.n_infos * sizeof(WireInfo) +
	     h.n_rows * sizeof(LineRow) + h.n_files * sizeof(uint32_t);
	for (uint32_t i = 0; r >= 0 && i < h.n_spans; i++) {
		WireSpan w;

		memcpy(&w, p + i * sizeof(w), sizeof(w));
		if (w.low >= w.high)
			r = -EBADMSG;
		spans[i] = (CuSpan){ .low = w.low, .high = w.high };
	}
	if (r < 0) {
		cu_index_free(cu);
		return r;
	}
	d->memory += sizeof(*cu) + cu->n * sizeof(Range) + cu->n_infos * sizeof(DieInfo) +
		     cu->n_rows * sizeof(LineRow) + cu->n_files * sizeof(uint32_t);
	r = cu_install(d, NULL, spans, h.n_spans, cu);
	if (r < 0)
		return r;
	return addr_cu_note(d, vaddr, (int32_t)(d->n_cus - 1));
}

/* ---- lookups through the worker ---- */

static bool addr_cu_eq(uint32_t idx, const void *key, void *userdata)
{
	return ((const DwarfInfo *)userdata)->addr_cus[idx].vaddr == *(const uint64_t *)key;
}

static int addr_cu_note(DwarfInfo *d, uint64_t vaddr, int32_t cu)
{
	uint64_t addr = vaddr + (uint64_t)d->dw_delta, hash = off_hash(vaddr);
	uint32_t idx;
	int r;

	if (cu >= 0 && cu_known(d, addr))
		return 0;
	if (hash_index_find(d->addr_index, hash, addr_cu_eq, &vaddr, d, &idx) == 0 ||
	    d->n_addr_cus >= ADDR_CUS_MAX)
		return 0;
	if (GREEDY_REALLOC(d->addr_cus, d->allocated_addr_cus, d->n_addr_cus + 1) < 0)
		return -ENOMEM;
	r = hash_index_insert(d->addr_index, hash, (uint32_t)d->n_addr_cus);
	if (r < 0)
		return r;
	d->addr_cus[d->n_addr_cus++] = (AddrCu){ .vaddr = vaddr, .cu = cu };
	return 0;
}

void dwarf_info_request_info(const DwarfInfo *d, DwarfRequestInfo *ret)
{
	*ret = (DwarfRequestInfo){ .fd = d->fd,
				   .path = d->path,
				   .debug_path = d->debug_path,
				   .expect = d->have_debug_st ? &d->debug_st : NULL,
				   .vaddr = d->remote_vaddr,
				   .open_only = d->remote_vaddr == UINT64_MAX };
}

/* Whether the answer's debug file is the one the first answer named (or none, as it). */
static bool same_debug_file(const DwarfInfo *d, const DwarfAnswerInfo *a)
{
	if (!a->debug_file || !a->debug_st)
		return !d->debug_file;
	return d->debug_file && a->debug_st->st_dev == d->debug_st.st_dev &&
	       a->debug_st->st_ino == d->debug_st.st_ino;
}

void dwarf_info_take_failure(DwarfInfo *d, int r)
{
	d->remote_pending = false;
	/* What the worker failed on is not asked again: its DWARF is gone with the worker. */
	d->remote_open = r < 0 ? r : -EIO;
}

int dwarf_info_take_answer(DwarfInfo *d, const DwarfAnswerInfo *a)
{
	int r = 0;

	d->remote_pending = false;
	if (d->remote_open == -EINPROGRESS) {
		if (a->open_result < 0) {
			d->remote_open = a->open_result;
			return 0;
		}
		d->dw_delta = a->dw_delta;
		if (a->debug_file && a->debug_st) {
			d->debug_file = strndup(a->debug_file, PATH_MAX);
			if (!d->debug_file) {
				d->remote_open = -ENOMEM;
				return -ENOMEM;
			}
			d->debug_st = *a->debug_st;
			d->have_debug_st = true;
		}
		d->remote_open = 0;
	} else if (d->remote_open < 0) {
		return 0;
	} else if (a->open_result < 0 || a->dw_delta != d->dw_delta || !same_debug_file(d, a)) {
		/* Opened again (another worker), and not the DWARF the first answer was of. */
		d->remote_open = a->open_result < 0 ? a->open_result : -ESTALE;
		return 0;
	}
	if (d->remote_vaddr == UINT64_MAX)
		return 0;
	if (a->result == -ENOENT)
		r = addr_cu_note(d, d->remote_vaddr, -1);
	else if (a->result >= 0)
		r = body_take(d, d->remote_vaddr, a->body, a->len);
	else
		d->remote_open = a->result; /* libdw gave up on the binary (a fault, a bound) */
	if (r == -EBADMSG)
		d->remote_open = r;
	return r;
}

/* The CU of ELF address vaddr through the worker: asked for on first sight, -EINPROGRESS until
 * its answer is in. */
static int remote_cu(DwarfInfo *d, uint64_t vaddr, CuIndex **ret)
{
	DwarfWorker *w = d->counters->worker;
	uint64_t hash = off_hash(vaddr);
	uint32_t idx;
	int r;

	for (int pass = 0; pass < 2; pass++) {
		if (d->remote_open == -EINPROGRESS)
			return -EINPROGRESS;
		if (d->remote_open < 0)
			return -ENOENT;
		*ret = cu_known(d, vaddr + (uint64_t)d->dw_delta);
		if (*ret)
			return 0;
		if (hash_index_find(d->addr_index, hash, addr_cu_eq, &vaddr, d, &idx) == 0) {
			if (d->addr_cus[idx].cu < 0 || (size_t)d->addr_cus[idx].cu >= d->n_cus)
				return -ENOENT;
			*ret = d->cus[d->addr_cus[idx].cu];
			return 0;
		}
		if (d->remote_pending)
			return -EINPROGRESS;
		if (pass > 0 || d->n_addr_cus >= ADDR_CUS_MAX || !w)
			break;
		d->remote_vaddr = vaddr;
		d->remote_pending = true;
		r = dwarf_worker_ask(w, d->remote_id);
		if (r < 0) {
			d->remote_pending = false;
			return r;
		}
		/* A small CU is answered within the slice: no lookup named without it. */
		dwarf_worker_wait(w, d->remote_id);
	}
	return d->remote_pending ? -EINPROGRESS : -ENOENT;
}

/* The line of DWARF address a in cu: 0 and NULL if none. */
static uint32_t cu_line(const DwarfInfo *d, const CuIndex *cu, uint64_t a, const char **ret_file)
{
	size_t lo = 0, hi = cu->n_rows;
	const LineRow *row;
	uint32_t off;

	*ret_file = NULL;
	if (a < cu->line_base || a - cu->line_base > UINT32_MAX)
		return 0;
	off = (uint32_t)(a - cu->line_base);
	/* The last row at or below a (one per address, see rows_compact()). */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (cu->rows[mid].off <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return 0;
	row = &cu->rows[lo - 1];
	if (row->file == ROW_END_OF_SEQUENCE)
		return 0;
	if (row->file < cu->n_files)
		*ret_file = pool_str(&d->pool, cu->files[row->file]);
	return *ret_file ? row->line : 0;
}

int dwarf_info_lookup(DwarfInfo *d, uint64_t vaddr, DwarfFrame *out, size_t max)
{
	uint64_t addr = vaddr + (uint64_t)d->dw_delta;
	const char *file;
	CuIndex *cu;
	size_t lo = 0, hi, n = 0;
	uint32_t lineno;
	int32_t i;
	int r;

	if (max == 0)
		return -ENOBUFS;
	cu = cu_known(d, addr);
	if (!cu) {
		r = d->remote_id ? remote_cu(d, vaddr, &cu) : cu_find(d, vaddr, &cu);
		if (r == -EINPROGRESS) {
			if (d->counters)
				d->counters->pending++;
			return r;
		}
		if (r == -ENOENT || r == -ESTALE || r == -ENOEXEC || r == -EAGAIN || r == -EIO)
			return 0;
		if (r < 0)
			return r;
		/* Known now if the worker's first answer came meanwhile. */
		addr = vaddr + (uint64_t)d->dw_delta;
	}
	/* The last range starting at or below addr; the innermost containing one is it or an
	 * ancestor (ranges nest, so whatever contains addr contains it too). */
	hi = cu->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (cu->ranges[mid].low <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (i = (int32_t)lo - 1; i >= 0 && cu->ranges[i].high <= addr; i = cu->ranges[i].parent)
		;

	lineno = cu_line(d, cu, addr, &file);
	if (i < 0) {
		/* No function DIE has the address in its ranges, but the line table has it: e.g. a
		 * function GCC's identical code folding emitted as a copy whose DIE has no ranges.
		 * The line still holds; the name comes from the symbol table. */
		if (!file)
			return 0;
		out[0] = (DwarfFrame){ .file = file, .line = lineno };
		return 1;
	}
	/* Innermost first: each frame's line is where it is, which for an outer frame is the
	 * call site of the frame inlined into it. */
	for (; i >= 0 && n < max; i = cu->ranges[i].parent) {
		const DieInfo *info = &cu->infos[cu->ranges[i].info];

		out[n] = (DwarfFrame){ .function = pool_str(&d->pool, info->name),
				       .linkage = pool_str(&d->pool, info->linkage),
				       .file = file,
				       .line = file ? lineno : 0,
				       .decl_file = pool_str(&d->pool, info->decl_file),
				       .decl_line = info->decl_line,
				       .inlined = info->inlined };
		n++;
		/* The next frame out is at this one's call site. */
		file = pool_str(&d->pool, info->call_file);
		lineno = info->call_line;
		if (!info->inlined)
			break;
	}
	return (int)n;
}

bool dwarf_info_release(DwarfInfo *d, uint64_t idle_ns)
{
	uint64_t keep = idle_ns ? MAX(idle_ns, d->open_cpu_ns * DWARFINFO_OPEN_AMORTIZE) : 0;

	/* Not idle in the middle of a CU. For memory, the CU goes with libdw: it is indexed again
	 * once libdw may open again (reopen_after), its lookups named from the symbol table
	 * meanwhile, as in any CU not yet indexed. */
	if (!d->dwfl || now_ns() - d->libdw_used < keep || (idle_ns && d->building))
		return false;
	libdw_close(d);
	if (idle_ns == 0)
		d->reopen_after = now_ns() + d->open_cpu_ns * DWARFINFO_OPEN_AMORTIZE;
	return true;
}

size_t dwarf_info_memory(const DwarfInfo *d)
{
	return own_memory(d) + (d->dwfl ? d->libdw_bytes : 0);
}

int dwarf_info_debug_stat(const DwarfInfo *d, struct stat *ret)
{
	if (!d->debug_file)
		return -ENOENT;
	*ret = d->debug_st;
	return 0;
}

const char *dwarf_info_debug_file(const DwarfInfo *d)
{
	return d->debug_file;
}
