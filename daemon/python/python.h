/* SPDX-License-Identifier: MIT */
/*
 * Python: names the Python functions of every CPython process, with no restart and no flag.
 *
 * For a process whose executable mappings hold an interpreter (python3.X or libpython3.X.so
 * exporting _PyRuntime, _PyEval_EvalFrameDefault and PyCode_Type), it picks the structure layout
 * of the version (pylayout.h), opens /proc/PID/mem (which stays bound to that address space,
 * whatever reuses the pid), and puts the process and its thread states, read from the
 * interpreter's thread lists, into the BPF maps through PyMapOps: the BPF program then walks each
 * thread's frame chain at sample time. python_frame() turns one recorded (code object, offset)
 * into a frame, reading the code object from the process while it lives and caching it per
 * (process incarnation, address) with the identity hash the BPF program saw, so that an address
 * freed and reused is never given the old name. Everything read from a process is hostile:
 * every walk and read is bounded (see python.c). Not thread-safe.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "process/proctable.h"
#include "profq.h"
#include "store/store.h"
#include "symbolize/symbolizer.h"

/* What Python writes into the BPF maps (profqd: the sampler's maps). Each returns 0 or -errno. */
typedef struct PyMapOps {
	int (*set_layout)(void *userdata, uint32_t index, const struct profq_py_layout *l);
	int (*set_proc)(void *userdata, uint32_t tgid, const struct profq_py_proc *v);
	int (*del_proc)(void *userdata, uint32_t tgid);
	int (*set_thread)(void *userdata, const struct profq_py_thread_key *k,
			  const struct profq_py_thread *v);
	int (*del_thread)(void *userdata, const struct profq_py_thread_key *k);
	/* The entry after prev (NULL: the first); -ENOENT after the last. */
	int (*next_thread)(void *userdata, const struct profq_py_thread_key *prev,
			   struct profq_py_thread_key *ret_key, struct profq_py_thread *ret);
	void *userdata;
} PyMapOps;

typedef struct PythonStats {
	uint64_t processes;	      /* interpreters followed now */
	uint64_t threads;	      /* their thread states in the BPF map now */
	uint64_t attached;	      /* interpreters followed since start */
	uint64_t unsupported;	      /* interpreters of a version profq cannot read */
	uint64_t free_threaded;	      /* ... of which free-threaded builds */
	uint64_t attach_errors;	      /* interpreters found but not followed (memory, maps full) */
	uint64_t samples;	      /* samples of followed processes */
	uint64_t samples_with_frames; /* ... carrying at least one Python frame */
	uint64_t frames_read;	      /* Python frames received */
	uint64_t frames_unnamed;      /* ... shown as [python] */
	uint64_t code_reads;	      /* code objects read from processes */
	uint64_t code_read_errors;    /* ... that could not be read or made no sense */
	uint64_t code_changed;	      /* ... that were not the object the sample saw (freed) */
	uint64_t code_cache_entries;  /* code objects cached now */
	uint64_t code_cache_drops;    /* times the cache was emptied for its bound */
	uint64_t thread_scans;	      /* reads of an interpreter's thread list */
	uint64_t thread_unknown;      /* samples of a thread with no known thread state */
	uint64_t thread_mismatch;     /* samples whose thread state was another thread's */
	uint64_t thread_found;	      /* samples whose thread state the BPF program found */
	uint64_t threads_swept;	      /* entries the BPF program added, taken out again */
	uint64_t exec_attached;	      /* interpreters followed from their exec, before a sample */
	uint64_t walk_errors;	      /* walks stopped by a failed read */
	uint64_t walk_truncated;      /* walks cut at the frame limit */
	uint64_t merge_unmatched;     /* Python frames with no evaluation frame to stand in for */
	uint64_t map_errors;	      /* BPF map updates that failed (maps full) */
	uint64_t mem_reads;	      /* reads of process memory (in the reader's child) */
	uint64_t mem_timeouts;	      /* ... that took too long: the process read no more */
	uint64_t mem_readers;	      /* reader children started */
	uint64_t mem_readers_stuck;   /* ... killed, still waiting in the kernel now */
} PythonStats;

typedef struct Python Python;
typedef struct PyProc PyProc;

/* sym: the symbolizer whose binaries the processes' mappings are read through (python_exec()). */
int python_new(Store *store, Symbolizer *sym, const PyMapOps *ops, Python **ret);
/* Frees py without touching the maps (their owner may have gone first). */
Python *python_free(Python *py);

/*
 * For a sample of proc: the interpreter state when profq follows the process (NULL if it is
 * not a CPython process, or not one profq can read). Looks for an interpreter among the
 * process's mappings when they are new since the last look, and reads the thread lists again
 * when the sample says a thread state is unknown or stale (at most every few milliseconds,
 * backing off while nothing new turns up).
 */
PyProc *python_sample(Python *py, Process *proc, const struct profq_sample *s, uint64_t mono_ns);

/* Whether addr (a user address of the process, a return address already less one) is in the
 * interpreter's evaluation function, which the Python frames stand in for. */
bool python_is_eval(const PyProc *pp, uint64_t addr);

/* One Python frame of a sample as a frame (FRAME_PYTHON; a new reference): the code object's
 * qualified name, its file, the line of the offset; "[python]" when it cannot be named. */
int python_frame(Python *py, PyProc *pp, const struct profq_py_frame *f, FrameId *ret);

/*
 * Process pid (start_ns) exec'd at exec_ns (CLOCK_BOOTTIME), told as soon as the exec is read
 * from the kernel, ahead of the samples queued before it: if its executable is a CPython
 * interpreter's, follows it now from /proc/PID/maps, so that the BPF program walks its stacks
 * (and finds its threads) from its first samples on, however far behind profqd's samples are.
 * An interpreter not found yet (libpython not mapped so early) is looked for again by
 * python_poll() a few times. The later exec event (python_forget()) keeps what was found then.
 */
void python_exec(Python *py, uint32_t pid, uint64_t start_ns, uint64_t exec_ns, uint64_t mono_ns);
/* The execs python_exec() is still looking at again (every few milliseconds, a few times). */
void python_poll(Python *py, uint64_t mono_ns);

/*
 * A Python frame a sample of process pid (start_ns) carries, told as soon as the sample is read
 * from the kernel, ahead of the queue: its code object is read now, while the process lives,
 * and cached for the sample's turn (python_frame()), when a short process has exited.
 */
void python_code_seen(Python *py, uint32_t pid, uint64_t start_ns, const struct profq_py_frame *f);

/* The process exec'd (now) or exited (at the next tick, so that its last samples, which come
 * after the exit event, are still named): forget its interpreter and its BPF map entries.
 * time_ns: the event's (CLOCK_BOOTTIME); an interpreter python_exec() found after it stays. */
void python_forget(Python *py, uint32_t pid, bool exited, uint64_t time_ns);

/* Housekeeping (once a second): drops processes that are gone, reads thread lists again, and
 * takes out of py_threads the entries the BPF program added for threads gone or processes no
 * longer followed. */
void python_tick(Python *py, uint64_t mono_ns);
/* Under memory pressure: empties the code cache. Returns the bytes freed. */
size_t python_shrink(Python *py);
size_t python_memory(const Python *py);
void python_stats(const Python *py, PythonStats *ret);

static inline void python_freep(Python **py)
{
	python_free(*py);
}
