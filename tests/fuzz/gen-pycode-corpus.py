# SPDX-License-Identifier: MIT
"""Writes fuzz-pycode seeds: real code objects of the interpreter running this script, copied
with their names and line table into a fake memory laid out as fuzz-pycode.c reads it.

    for v in 3.8.18 3.9.18 3.10.13 3.11.7 3.12.1 3.13.0; do
        ~/.pyenv/versions/$v/bin/python3 tests/fuzz/gen-pycode-corpus.py tests/fuzz/corpus/pycode
    done

The pointers of the code object to its names and table are found by value (no layout needed)
and moved to the copies; ob_type becomes FUZZ_CODE_TYPE. For 3.13 the first bytes of the memory
are those of _PyRuntime (its _Py_DebugOffsets).
"""
import ctypes
import os
import struct
import sys

MEM_BASE = 0x10000
CODE_AT = 1024
CODE_TYPE = 0x1000
DEBUG_OFFSETS = 584
MEM_SIZE = 8192

SOURCE = '''
def loop(n):
    total = 0
    for i in range(n):
        while total > 100:
            total -= (i +
                      7)
    return total

def f\u00e9(): return [x
                       for x in ()]

def f\u4e2d():
    try:
        pass
    except Exception:
        pass

def f\U00010000(): yield 1
'''


def codes(co):
    yield co
    for c in co.co_consts:
        if hasattr(c, 'co_code'):
            yield from codes(c)


def table(co):
    return co.co_lnotab if sys.version_info < (3, 10) else co.co_linetable


def image(co):
    mem = bytearray(MEM_SIZE)
    minor = sys.version_info[1]
    if minor >= 13:
        runtime = ctypes.c_char.in_dll(ctypes.pythonapi, '_PyRuntime')
        mem[0:DEBUG_OFFSETS] = ctypes.string_at(ctypes.addressof(runtime), DEBUG_OFFSETS)
    size = type(co).__basicsize__
    code = bytearray(ctypes.string_at(id(co), size))
    struct.pack_into('<Q', code, 8, CODE_TYPE)
    at = CODE_AT + ((size + 15) & ~15)
    objs = [co.co_name, co.co_filename, table(co)]
    if minor >= 11:
        objs.append(co.co_qualname)
    moved = {}
    for obj in objs:
        if id(obj) in moved:
            continue
        n = sys.getsizeof(obj)
        mem[at:at + n] = ctypes.string_at(id(obj), n)
        moved[id(obj)] = MEM_BASE + at
        at += (n + 15) & ~15
    for pos in range(0, size - 7, 8):
        word = struct.unpack_from('<Q', code, pos)[0]
        if word in moved:
            struct.pack_into('<Q', code, pos, moved[word])
    mem[CODE_AT:CODE_AT + size] = code
    return bytes(mem[:at])


def main():
    out = sys.argv[1]
    minor = sys.version_info[1]
    selector = min(minor - 8, 5)
    module = compile(SOURCE, '/src/pr\u00f6g.py', 'exec')
    for i, co in enumerate(codes(module)):
        offset = min(len(co.co_code) // 2, 40) & ~1
        data = struct.pack('<B3xI', selector, offset) + image(co)
        name = 'py3%d-%d-%s' % (minor, i, co.co_name.encode('ascii', 'replace').decode())
        with open(os.path.join(out, name.replace('?', 'u').replace('<', '').replace('>', '')),
                  'wb') as f:
            f.write(data)


main()
