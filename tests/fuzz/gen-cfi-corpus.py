#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Seeds for fuzz-cfi from real ELF files: their .eh_frame and .eh_frame_hdr in the fuzzer's input
format (see fuzz-cfi.c), one seed with the index and one without; and small ELF files whole.

    tests/fuzz/gen-cfi-corpus.py tests/fuzz/corpus/cfi FILE...
"""
import os
import struct
import sys

MAX_LEN = 65536  # scripts/test fuzzes with -max_len=65536


def sections(data):
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return {}
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3a)
    shdrs = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    stroff = shdrs[shstrndx][4]
    out = {}
    for name, typ, _flags, addr, off, size, *_ in shdrs:
        end = data.index(b"\0", stroff + name)
        if typ != 8:  # SHT_NOBITS
            out[data[stroff + name:end].decode()] = (addr, data[off:off + size])
    return out


def main():
    outdir, files = sys.argv[1], sys.argv[2:]
    for path in files:
        data = open(path, "rb").read()
        secs = sections(data)
        base = os.path.basename(path)
        if ".eh_frame" not in secs:
            continue
        eh_vaddr, eh = secs[".eh_frame"]
        hdr_vaddr, hdr = secs.get(".eh_frame_hdr", (0, b""))
        seeds = {"indexed": struct.pack("<QQI", eh_vaddr, hdr_vaddr, len(hdr)) + hdr + eh,
                 "eager": struct.pack("<QQI", eh_vaddr, 0, 0) + eh}
        if len(data) <= MAX_LEN:
            seeds["elf"] = data
        for kind, seed in seeds.items():
            if len(seed) > MAX_LEN:
                print(f"{base} {kind}: {len(seed)} bytes, over {MAX_LEN}: skipped")
                continue
            with open(os.path.join(outdir, f"{base}-{kind}"), "wb") as f:
                f.write(seed)
            print(f"{base} {kind}: {len(seed)} bytes")


main()
