#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Seeds for fuzz-elfsym and fuzz-dwarf: the symbolizer fixtures (tests/unit/fixtures) built
small (-g -O2, segments aligned to 512 bytes rather than a page, no .comment) and cut as the
unit tests cut them: whole, stripped (.dynsym only), --strip-debug with a .gnu_debuglink, the
debug file alone (--only-keep-debug), DWARF 4 and 5, debug sections compressed (zlib, and
GNU's .zdebug), a shared library with its PLT, and an executable without PIE.

    tests/fuzz/gen-elf-corpus.py tests/fuzz/corpus/elfsym tests/fuzz/corpus/dwarf
"""
import os
import shutil
import subprocess
import sys
import tempfile

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "unit", "fixtures")
SMALL = ["-Wl,--build-id", "-Wl,-z,noseparate-code", "-Wl,-z,max-page-size=0x200",
         "-Wl,-z,norelro", "-fno-asynchronous-unwind-tables"]
MAX_SEED = 16384


def run(*cmd):
    subprocess.run(cmd, check=True)


def main():
    elfsym_dir, dwarf_dir = sys.argv[1], sys.argv[2]
    os.makedirs(elfsym_dir, exist_ok=True)
    os.makedirs(dwarf_dir, exist_ok=True)
    cc = os.environ.get("CC", "cc")
    tmp = tempfile.mkdtemp(prefix="gen-elf-corpus-")
    out = {}  # seed name -> (path, for elfsym, for dwarf)
    try:
        def fixture(name):
            return os.path.join(FIXTURES, name)

        def build(name, *args):
            path = os.path.join(tmp, name)
            run(cc, "-O2", *SMALL, *args, "-o", path)
            run("objcopy", "--remove-section=.comment", path)
            return path

        lib = build("libprofq-fixture.so", "-g", "-shared", "-fPIC",
                    fixture("fixture-lib.c"))
        out["lib.so"] = (lib, True, True)
        prog = build("prog", "-g", fixture("fixture-prog.c"), "-L" + tmp, "-lprofq-fixture")
        out["prog"] = (prog, True, True)
        out["prog-nopie"] = (build("prog-nopie", "-g0", "-no-pie", fixture("fixture-prog.c"),
                                   "-L" + tmp, "-lprofq-fixture"), True, False)
        for v in (4, 5):
            out[f"dwarf{v}"] = (build(f"dwarf{v}", f"-gdwarf-{v}", fixture("fixture-dwarf.c")),
                                True, True)
        dwarf = out["dwarf5"][0]

        def cut(name, *args, src=dwarf, elfsym=True, dw=True):
            path = os.path.join(tmp, name)
            run("objcopy", *args, src, path)
            out[name] = (path, elfsym, dw)
            return path

        cut("dwarf5-stripped", "--strip-all", dw=False)
        cut("prog-stripped", "--strip-all", src=prog, dw=False)
        debug = cut("dwarf5.debug", "--only-keep-debug")
        # The debuglink names the debug file, which sits in the fuzzer's directory as
        # nothing: the DWARF is looked for and not found.
        cut("dwarf5-debuglink", "--strip-debug",
            "--add-gnu-debuglink=" + debug)
        cut("dwarf5-zlib", "--compress-debug-sections=zlib")
        cut("dwarf5-zlib-gnu", "--compress-debug-sections=zlib-gnu")
        cut("dwarf4-zlib", "--compress-debug-sections=zlib", src=out["dwarf4"][0])
        relpath = os.path.join(tmp, "relpath")
        subprocess.run([cc, "-O2", *SMALL, "-g", "-c", "fixtures/fixture-relpath.c", "-o",
                        relpath + ".o"], check=True, cwd=os.path.join(FIXTURES, ".."))
        run(cc, *SMALL, relpath + ".o", "-o", relpath)
        run("objcopy", "--remove-section=.comment", relpath)
        out["relpath"] = (relpath, False, True)

        for name, (path, for_elfsym, for_dwarf) in sorted(out.items()):
            size = os.path.getsize(path)
            if size > MAX_SEED:
                print(f"{name}: {size} bytes, over {MAX_SEED}: left out", file=sys.stderr)
                continue
            for wanted, d in ((for_elfsym, elfsym_dir), (for_dwarf, dwarf_dir)):
                if wanted:
                    shutil.copyfile(path, os.path.join(d, name))
            print(f"{name}: {size} bytes")
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
