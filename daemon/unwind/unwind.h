/* SPDX-License-Identifier: MIT */
/*
 * Unwind: recovers a user stack from the registers and a copy of the top of the stack that the
 * BPF program took at the sample, with each binary's compiled CFI (cfi.h): complete stacks for
 * code built without frame pointers (profqd(8), --stack-copy). Where a binary has no CFI for an
 * address (JIT code), it follows the frame pointer. Signal frames are crossed through the ucontext
 * the kernel put on the stack. The copy bounds the walk: a stack deeper than the copy ends as
 * truncated. Pure over its inputs (mappings come from a callback); thread-safe if the callback is.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "unwind/cfi.h"

typedef struct UnwindInput {
	uint64_t ip, sp, bp;
	const uint8_t *stack; /* the bytes at [sp, sp + stack_len) at the sample */
	size_t stack_len;
} UnwindInput;

typedef enum UnwindEnd {
	UNWIND_COMPLETE,  /* reached the outermost frame (undefined return address, or 0) */
	UNWIND_TRUNCATED, /* the next frame lies beyond the copied stack, or the depth limit */
	UNWIND_STUCK,	  /* no rule for an address and no usable frame pointer */
	_UNWIND_END_MAX,
} UnwindEnd;

typedef struct UnwindResult {
	size_t n; /* addresses written: the first is the sampled ip, then return addresses */
	UnwindEnd end;
	size_t fp_frames;  /* frames taken by the frame pointer, for lack of CFI */
	size_t stack_used; /* bytes of the copy the walk read, from its start: the same walk over
			    * the copy cut there reads the same */
} UnwindResult;

/*
 * The CFI that covers a user address: the compiled table of the binary mapped there and the
 * address as the table knows it (ELF virtual address). NULL when none does.
 */
typedef Cfi *(*unwind_cfi_fn)(void *userdata, uint64_t addr, uint64_t *ret_vaddr);

void unwind_user(const UnwindInput *in, unwind_cfi_fn cfi_of, void *userdata, uint64_t *out,
		 size_t max, UnwindResult *ret);
