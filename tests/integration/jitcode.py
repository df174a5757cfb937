# SPDX-License-Identifier: MIT
"""Machine code no binary holds, for the tests of JIT code (test_jit, test_fuse)."""

# Writes a counting loop (mov eax, N; 1: dec eax; jnz 1b; ret) into a private anonymous RWX page
# (a shared one would be a file, /dev/zero) and calls it for as many seconds as each line of
# stdin says, printing "done" after each.
JIT = r"""
import ctypes, mmap, os, sys, time
code = b"\xb8" + (20_000_000).to_bytes(4, "little") + b"\xff\xc8\x75\xfc\xc3"
page = mmap.mmap(-1, mmap.PAGESIZE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS,
                 prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
page.write(code)
addr = ctypes.addressof(ctypes.c_char.from_buffer(page))
spin = ctypes.CFUNCTYPE(None)(addr)
print(os.getpid(), addr, len(code), flush=True)
for line in sys.stdin:
    t = time.monotonic()
    while time.monotonic() - t < float(line):
        spin()
    print("done", flush=True)
"""
