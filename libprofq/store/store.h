/* SPDX-License-Identifier: MIT */
/*
 * Store: the profile data model shared by the daemon (which writes it) and the query engine
 * (which reads it, in the daemon or offline in the CLI).
 *
 * - Strings, frames and stacks are interned: each distinct value is held once, named by a dense
 *   32-bit id, and reference-counted. Id 0 always means "none". A frame is one symbolized
 *   location (function, module, source file:line, module-relative address); an inlined call
 *   gives several frames for one address. A stack is a leaf-first array of frame ids: kernel
 *   frames first (when the sample was taken in the kernel), then user frames.
 * - Processes are incarnations (pid + start time): pid reuse makes a new ProcId.
 * - Windows form a ring, oldest first. The last window may be open (still being filled); the
 *   daemon closes it at the window boundary. Entries of a window count samples per
 *   (process, thread, stack), split into user and kernel mode. Each entry holds one reference to
 *   its stack, process and thread name; evicting a window releases them, and whatever no window
 *   or other owner still uses is freed.
 *
 * Ownership: every store_intern_*() and store_proc_add() call gives the caller one reference it
 * must drop with the matching unref (store_window_add() takes its own references). Pointers
 * returned by store_string(), store_frame(), store_stack(), store_proc() and store_window() stay
 * valid until the next call that modifies the store. Not thread-safe.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef uint32_t StrId;
typedef uint32_t FrameId;
typedef uint32_t StackId;
typedef uint32_t ProcId;

typedef struct Store Store;

enum {
	FRAME_KERNEL = 1u << 0,	   /* kernel text (kallsyms) */
	FRAME_INLINED = 1u << 1,   /* inlined into the frame after it (its caller) */
	FRAME_JIT = 1u << 2,	   /* from a perf map (/tmp/perf-PID.map) */
	FRAME_TRUNCATED = 1u << 3, /* marker: the stack was cut off above this point */
	FRAME_PYTHON = 1u << 4,	   /* a Python function (file: the .py file) */
	/* The interpreter's evaluation function where it ran the Python frames before it (leaf
	 * side): hidden unless Python frames are (--no-python shows it, hiding those). */
	FRAME_PYTHON_EVAL = 1u << 5,
	FRAME_FLAGS_ALL = (1u << 6) - 1,
};

typedef struct StoreFrame {
	StrId function;	  /* 0: unresolved, shown as module+0xaddress */
	StrId module;	  /* basename of the binary, "[kernel.kallsyms]", "[module]", "[unknown]" */
	StrId file;	  /* source file, 0 if unknown */
	uint32_t line;	  /* source line, 0 if unknown */
	uint32_t flags;	  /* FRAME_* */
	uint64_t address; /* module-relative (ELF virtual) address, or kernel address */
	StrId symbol;	  /* the raw (mangled) symbol when it differs from function; else 0 */
	StrId decl_file;  /* where the function is declared (DWARF); 0 if unknown */
	uint32_t decl_line; /* its line there; 0 if unknown */
} StoreFrame;

enum {
	PROC_EXITED = 1u << 0,	   /* exit_ns is set */
	PROC_ACCOUNTING = 1u << 1, /* user/sys figures come from the kernel's accounting */
	PROC_KTHREAD = 1u << 2,	   /* kernel thread: no user address space */
	/* Seen at some point in a state its owner could not read /proc/PID/maps of (not
	 * dumpable; setuid/setgid; its uid changed): only privileged viewers see it. Sticky. */
	PROC_PRIVATE = 1u << 3,
	PROC_FLAGS_ALL = (1u << 4) - 1,
};

typedef struct StoreProc {
	uint32_t pid;
	uint32_t ppid;
	uint32_t uid;
	uint32_t flags;	  /* PROC_* */
	int64_t start_ns; /* realtime (ns since the epoch) */
	int64_t exit_ns;  /* realtime, valid with PROC_EXITED */
	StrId comm;
	StrId cmdline;
	/* Kernel CPU accounting (ns), valid with PROC_ACCOUNTING; children = waited-for ones. */
	uint64_t user_ns, sys_ns, child_user_ns, child_sys_ns;
	int32_t exit_code; /* wait status (as wait4), valid with PROC_EXITED */
	/* Identity: pid + start within one boot. boot_id hashes /proc/sys/kernel/random/boot_id. */
	uint64_t boot_id;
	uint64_t start_boot_ns; /* CLOCK_BOOTTIME */
	/* Its cgroup (base/cgroup.h: the v2 path, else systemd's v1 one; 0 unknown) and the
	 * labels the path names (0 for none): set together by store_proc_set_cgroup(). */
	StrId cgroup;
	StrId unit;
	StrId slice;
	StrId container;
} StoreProc;

/* The string fields of a process record, for code that references, maps or copies each. */
#define STORE_PROC_N_STRINGS 6
static inline void store_proc_strings(StoreProc *p, StrId *ret[STORE_PROC_N_STRINGS])
{
	ret[0] = &p->comm;
	ret[1] = &p->cmdline;
	ret[2] = &p->cgroup;
	ret[3] = &p->unit;
	ret[4] = &p->slice;
	ret[5] = &p->container;
}

/*
 * What an entry counts. CPU entries count samples (user, kernel), each standing for the
 * window's period. The others count records and their weight, in the unit of their kind:
 * off-CPU kinds (by the thread's state when it was switched out) weigh nanoseconds,
 * KIND_FAULTS bytes. New kinds go last: segments store the number.
 */
typedef enum EntryKind {
	KIND_CPU,
	KIND_RUNNABLE, /* off-CPU: preempted, waiting for a CPU */
	KIND_SLEEPING, /* off-CPU: an interruptible sleep (sleeps, polls, locks, pipes) */
	KIND_BLOCKED,  /* off-CPU: an uninterruptible sleep (usually disk I/O) */
	KIND_FAULTS,   /* sampled minor page faults: bytes faulted in */
	_KIND_MAX,
} EntryKind;

static inline bool kind_off_cpu(uint32_t kind)
{
	return kind >= KIND_RUNNABLE && kind <= KIND_BLOCKED;
}

typedef struct WindowEntry {
	ProcId proc;
	uint32_t tid;
	StackId stack;
	StrId thread;	  /* thread name (comm of the thread) */
	uint32_t kind;	  /* EntryKind */
	uint32_t records; /* not KIND_CPU: records counted in weight; else 0 */
	union {
		struct {		 /* KIND_CPU */
			uint32_t user;	 /* samples taken in user mode */
			uint32_t kernel; /* samples taken in kernel mode */
		};
		uint64_t weight; /* the other kinds: in the kind's unit */
	};
} WindowEntry;

/* MemPoint.flags */
enum {
	MEM_EXIT = 1u << 0,	/* the process's last point: its exit */
	MEM_OOM_KILL = 1u << 1, /* the OOM killer chose the process (this point: the choice) */
	MEM_PEAK_OLD = 1u << 2, /* the peak was reached before profqd followed the process */
	MEM_FLAGS_ALL = (1u << 3) - 1,
};

/* The resident set of a process at one time (bytes), and its peak up to then. */
typedef struct MemPoint {
	ProcId proc;
	uint32_t flags;	 /* MEM_* */
	int64_t time_ns; /* realtime */
	uint64_t anon, file, shmem;
	uint64_t peak;	 /* the largest resident set (anon + file + shmem) of the process so far */
	int64_t peak_ns; /* realtime when it was reached */
} MemPoint;

typedef struct Window {
	int64_t start_ns; /* realtime; the window covers [start_ns, end_ns) */
	int64_t end_ns;
	uint64_t period_ns; /* sampling period: one sample stands for this much CPU time */
	bool open;
	/* Closed windows: sorted by (proc, tid, stack), unique keys. Open: insertion order. */
	WindowEntry *entries;
	size_t n_entries;
	size_t allocated;
	uint64_t samples; /* samples stored in the entries (KIND_CPU) */
	uint64_t records; /* records of the other kinds stored in the entries */
	uint64_t idle;	  /* idle samples (pid 0), counted but not stored */
	uint64_t lost;	  /* samples lost or dropped while this window was open */
	/* Memory points that arrived while the window was open (their own times may be a little
	 * earlier); closed windows: sorted by (proc, time). Each holds a reference to its proc. */
	MemPoint *mem;
	size_t n_mem;
	size_t allocated_mem;
} Window;

int store_new(Store **ret);
Store *store_free(Store *s);

/*
 * Strings. A string that is not valid UTF-8 or holds control bytes is stored escaped, as
 * text_escape() (base/text.h) writes it: store_string() returns what every answer shows.
 */
int store_intern_string(Store *s, const char *str, StrId *ret);
const char *store_string(const Store *s, StrId id); /* NULL for 0 */
/* One past the highest string id in use: size for arrays indexed by StrId. */
size_t store_string_id_limit(const Store *s);
void store_string_ref(Store *s, StrId id);
void store_string_unref(Store *s, StrId id);

/* Frames: the store takes its own references on the frame's strings. */
int store_intern_frame(Store *s, const StoreFrame *f, FrameId *ret);
const StoreFrame *store_frame(const Store *s, FrameId id);
void store_frame_ref(Store *s, FrameId id);
void store_frame_unref(Store *s, FrameId id);

/* Stacks: leaf first; the store takes its own references on the frames. n >= 1. */
#define STORE_STACK_MAX 1024
int store_intern_stack(Store *s, const FrameId *frames, size_t n, StackId *ret);
const FrameId *store_stack(const Store *s, StackId id, size_t *ret_n);
void store_stack_ref(Store *s, StackId id);
void store_stack_unref(Store *s, StackId id);
/* One past the highest stack id in use: size for arrays indexed by StackId. */
size_t store_stack_id_limit(const Store *s);
size_t store_frame_id_limit(const Store *s);

/*
 * Processes: the store takes references on the record's strings (store_proc_strings()). A
 * process is named by (pid, boot_id, start_boot_ns); adding one that is already there is -EEXIST.
 */
int store_proc_add(Store *s, const StoreProc *p, ProcId *ret);
/* The record of an incarnation: 0 and a new reference in *ret, or -ENOENT. */
int store_proc_find(Store *s, uint32_t pid, uint64_t boot_id, uint64_t start_boot_ns, ProcId *ret);
const StoreProc *store_proc(const Store *s, ProcId id);
/* For the daemon's updates (exit time, accounting, comm after exec); bumps the version. Never
 * change the identity fields through it: use store_proc_set_start(). */
StoreProc *store_proc_mut(Store *s, ProcId id);
/* A counter that changes whenever the record may have (store_proc_mut). */
uint32_t store_proc_version(const Store *s, ProcId id);
/* Corrects the start time (a record first made from /proc knows it to the clock tick). */
int store_proc_set_start(Store *s, ProcId id, uint64_t start_boot_ns, int64_t start_ns);
void store_proc_set_comm(Store *s, ProcId id, StrId comm);
/* Sets the cgroup path (NULL: unknown) and the unit, slice and container it names
 * (cgroup_labels()); bumps the version only when one changes. 0 or -ENOMEM. */
int store_proc_set_cgroup(Store *s, ProcId id, const char *path);
void store_proc_ref(Store *s, ProcId id);
void store_proc_unref(Store *s, ProcId id);
size_t store_proc_id_limit(const Store *s);
/* Live process records (referenced by a window or another owner). */
size_t store_proc_count(const Store *s);

/* Windows. */
int store_window_open(Store *s, int64_t start_ns, int64_t end_ns, uint64_t period_ns);
/* The open window, or NULL. */
Window *store_window_current(Store *s);
/* Adds count samples to the open window; -ENOENT without one. */
int store_window_add(Store *s, ProcId proc, uint32_t tid, StrId thread, StackId stack,
		     bool kernel_mode, uint32_t count);
/* Adds a memory point to the open window; -ENOENT without one. */
int store_window_add_mem(Store *s, const MemPoint *m);
/* Adds weight (in the kind's unit) to the open window, as one record of kind (not KIND_CPU);
 * -ENOENT without an open window, -EINVAL for KIND_CPU or an unknown kind. */
int store_window_add_weight(Store *s, ProcId proc, uint32_t tid, StrId thread, StackId stack,
			    uint32_t kind, uint64_t weight);
/* Closes the open window: sorts its entries and releases the build index. */
int store_window_close(Store *s);
size_t store_window_count(const Store *s);
/* Window i, 0 = oldest; the open window, if any, is last. */
const Window *store_window(const Store *s, size_t i);
/*
 * Adds a closed window (loaded from disk) among the closed ones, in time order (usually after
 * the last): entries and memory points refer to the store's ids; the store copies and sorts
 * them and takes its references. -EINVAL if w overlaps a closed window the store holds.
 */
int store_window_import(Store *s, const Window *w);
/* Drops the oldest closed window: 0, or -ENOENT if there is none. */
int store_window_evict(Store *s);
uint64_t store_windows_evicted(const Store *s);

/* Heap bytes held by the store (all tables, windows and indexes). */
size_t store_memory(const Store *s);
/* What a store holding only what s holds now would take, at the most: store_memory() keeps
 * counting the tables at the largest size they ever had. */
size_t store_live_memory(const Store *s);

static inline void store_freep(Store **s)
{
	store_free(*s);
}
