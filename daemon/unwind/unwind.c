/* SPDX-License-Identifier: MIT */
#include "base/macro.h"
#include "unwind/unwind.h"

/*
 * x86-64 signal frame: at the trampoline (__restore_rt) the stack pointer is at the ucontext;
 * uc_mcontext starts 40 bytes in, and its gregs[] hold RBP, RSP and RIP at indices 10, 15, 16.
 */
#define UC_RBP (40 + 8 * 10)
#define UC_RSP (40 + 8 * 15)
#define UC_RIP (40 + 8 * 16)

static bool read_u64(const UnwindInput *in, UnwindResult *res, uint64_t addr, uint64_t *ret)
{
	uint64_t off;

	if (addr < in->sp)
		return false;
	off = addr - in->sp;
	if (off > in->stack_len || in->stack_len - off < 8)
		return false;
	memcpy(ret, in->stack + off, 8);
	res->stack_used = MAX(res->stack_used, (size_t)off + 8);
	return true;
}

void unwind_user(const UnwindInput *in, unwind_cfi_fn cfi_of, void *userdata, uint64_t *out,
		 size_t max, UnwindResult *ret)
{
	UnwindResult res = { .end = UNWIND_TRUNCATED };
	uint64_t ip = in->ip, sp = in->sp, bp = in->bp;
	bool exact = true; /* ip is an instruction (sampled, or interrupted by a signal) */

	if (max == 0) {
		*ret = res;
		return;
	}
	out[res.n++] = ip;
	while (res.n < max) {
		/* A return address points after the call: look up the call itself. */
		uint64_t lookup = exact ? ip : ip - 1, vaddr, cfa, ra, new_bp = bp;
		Cfi *cfi = cfi_of(userdata, lookup, &vaddr);
		CfiRow row;

		if (cfi && cfi_lookup(cfi, vaddr, &row) == 0) {
			switch (row.cfa) {
			case CFI_CFA_END:
				res.end = UNWIND_COMPLETE;
				goto out;
			case CFI_CFA_SIGNAL: {
				uint64_t nsp;

				if (!read_u64(in, &res, sp + UC_RBP, &new_bp) ||
				    !read_u64(in, &res, sp + UC_RSP, &nsp) ||
				    !read_u64(in, &res, sp + UC_RIP, &ra))
					goto out;
				if (nsp <= sp)
					goto stuck; /* stacks unwind towards higher addresses */
				sp = nsp;
				bp = new_bp;
				ip = ra;
				exact = true;
				if (ip == 0) {
					res.end = UNWIND_COMPLETE;
					goto out;
				}
				out[res.n++] = ip;
				continue;
			}
			case CFI_CFA_RSP:
				cfa = sp + (uint64_t)(int64_t)row.cfa_offset;
				break;
			case CFI_CFA_RBP:
				cfa = bp + (uint64_t)(int64_t)row.cfa_offset;
				break;
			case CFI_CFA_PLT:
				cfa = sp + 8 + ((ip & 15) >= (uint64_t)row.cfa_offset ? 8 : 0);
				break;
			default:
				goto stuck;
			}
			if (!read_u64(in, &res, cfa - 8, &ra))
				goto out; /* beyond the copy */
			if (row.rbp == CFI_RBP_OFFSET &&
			    !read_u64(in, &res, cfa + (uint64_t)(int64_t)row.rbp_offset, &new_bp))
				goto out;
			if (cfa <= sp)
				goto stuck;
		} else {
			/* No CFI (JIT code, or an address outside every mapping): the frame
			 * pointer, if it points into the copied stack above us. */
			if (bp < sp || !read_u64(in, &res, bp, &new_bp) ||
			    !read_u64(in, &res, bp + 8, &ra)) {
				if (bp >= sp && bp - sp < (1u << 26))
					goto out; /* plausible, but beyond the copy */
				goto stuck;
			}
			cfa = bp + 16;
			res.fp_frames++;
		}
		sp = cfa;
		bp = new_bp;
		ip = ra;
		exact = false;
		if (ip == 0) {
			res.end = UNWIND_COMPLETE;
			goto out;
		}
		out[res.n++] = ip;
	}
	goto out;
stuck:
	res.end = UNWIND_STUCK;
out:
	*ret = res;
}
