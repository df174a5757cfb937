#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The man pages say what --help says: every option `profqd --help` prints is documented in
profqd(8), as an option and as a config file key; every command of `profq --help` has its own
section in profq(1), with every option its `profq CMD --help` prints; every global option is
there too; and every option the pages document is one the programs accept. The lists come from
running the programs, never from this file. Needs no root and no BPF."""

import os
import re
import shutil
import subprocess

from harness import Env, check, fail

env = Env()
DOCS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs")
OPTION = re.compile(r"(?<![\w./$-])(--?[A-Za-z][\w-]*|--\[no-\][\w-]+)")


def run(*cmd):
    p = subprocess.run(list(cmd), capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout, p.stderr


def options_of(text):
    """Every -x and --long-option in a help text; --[no-]x stands for --x and --no-x."""
    found = set()
    for opt in OPTION.findall(text):
        m = re.fullmatch(r"--\[no-\]([\w-]+)", opt)
        if m:
            found |= {"--" + m.group(1), "--no-" + m.group(1)}
        else:
            found.add(opt)
    return found


def roff_text(path):
    """A man page's source with the escapes that matter here undone: \\- is -, fonts gone."""
    with open(path) as f:
        src = f.read()
    src = re.sub(r"\\f[BIRP]|\\f\(..|\\&|\\c", "", src)
    return src.replace("\\-", "-").replace("\\(aq", "'")


def sections(src, macro):
    """{title: text} of a page's .SH or .SS sections (title: the first word, unquoted)."""
    out = {}
    parts = re.split(rf"^\.{macro}\s+(.*)$", src, flags=re.M)
    for i in range(1, len(parts), 2):
        title = parts[i].strip().strip('"')
        body = parts[i + 1].split("\n.SH ")[0]
        out[title.split()[0] if macro == "SS" else title] = title + "\n" + body
    return out


def tags(text):
    """The item tags of a section: the line after each .TP, where an option gets its entry."""
    lines = text.splitlines()
    return "\n".join(lines[i + 1] for i, line in enumerate(lines[:-1]) if line == ".TP")


def mentions(text, opt):
    return re.search(rf"(?<![\w-]){re.escape(opt)}(?![\w-])", text) is not None


def accepted(cmd, opt):
    """Whether the program takes the option: with or without a value, it must not be a usage
    error (exit 2). A --help after it ends the run once the option has been parsed."""
    for args in ([opt, "--help"], [opt, "1", "--help"]):
        rc, _, _ = run(*cmd, *args)
        if rc != 2:
            return True
    return False


# profqd(8)
rc, daemon_help, _ = run(env.profqd, "--help")
check(rc == 0, "profqd --help exits 0")
daemon_opts = options_of(daemon_help)
check({"--config", "--socket", "--help"} <= daemon_opts,
      f"options parsed from profqd --help ({len(daemon_opts)})")
page = roff_text(os.path.join(DOCS, "profqd.8"))
sh = sections(page, "SH")
missing = sorted(o for o in daemon_opts if not mentions(tags(sh.get("OPTIONS", "")), o))
check(not missing, f"profqd(8) OPTIONS has an entry for every option of profqd --help "
      f"(missing: {missing})")
keys = sorted(o[2:] for o in daemon_opts
              if o.startswith("--") and o not in ("--config", "--help", "--version"))
missing = [k for k in keys if not mentions(sh.get("CONFIGURATION FILE", ""), k)]
check(not missing, f"profqd(8) lists every option as a config key (missing: {missing})")
extra = sorted(o for o in options_of(sh.get("OPTIONS", "")) - daemon_opts
               if not accepted([env.profqd], o))
check(not extra, f"every option profqd(8) documents is one profqd accepts (not: {extra})")

# profq(1)
rc, cli_help, _ = run(env.profq, "--help")
check(rc == 0, "profq --help exits 0")
block = re.search(r"^Commands[^\n]*:\n(.*?)\n\n", cli_help, flags=re.M | re.S)
if not block:
    fail(f"no 'Commands:' list in profq --help:\n{cli_help}")
commands = [line.split()[0] for line in block.group(1).splitlines() if line.strip()]
check(len(commands) >= 4, f"commands parsed from profq --help: {commands}")
page = roff_text(os.path.join(DOCS, "profq.1"))
sh = sections(page, "SH")
ss = sections(page, "SS")
block = re.search(r"^Global options:\n(.*?)(\n\n|\Z)", cli_help, flags=re.M | re.S)
if not block:
    fail(f"no 'Global options:' list in profq --help:\n{cli_help}")
glob = options_of(block.group(1))
shared = "\n".join(tags(sh.get(name, "")) for name in ("GLOBAL OPTIONS", "TIME RANGES",
                                                           "SELECTING PROCESSES"))
missing = sorted(o for o in glob if not mentions(tags(sh.get("GLOBAL OPTIONS", "")), o))
check(not missing, f"profq(1) GLOBAL OPTIONS has an entry for every global option "
      f"(missing: {missing})")
for cmd in commands:
    rc, out, err = run(env.profq, cmd, "--help")
    if rc != 0:
        fail(f"profq {cmd} --help exited {rc}: {err}")
    opts = options_of(out)
    text = ss.get(cmd)
    if text is None:
        fail(f"profq(1) has no section for the command '{cmd}' (sections: {sorted(ss)})")
    # An entry in the command's section, or a shared one (--json, --since).
    missing = sorted(o for o in opts if not mentions(tags(text) + "\n" + shared, o))
    check(not missing, f"profq(1) '{cmd}' has an entry for every option of profq {cmd} --help "
          f"(missing: {missing})")
    extra = sorted(o for o in options_of(text) - opts - {"-h"}
                   if not accepted([env.profq, cmd], o))
    check(not extra, f"every option profq(1) documents for '{cmd}' is accepted (not: {extra})")
extra = sorted(set(ss) - set(commands))
check(not extra, f"profq(1) documents no command profq lacks (extra: {extra})")

# Both pages carry the version the programs report, and are clean roff.
for prog, name in ((env.profq, "profq.1"), (env.profqd, "profqd.8")):
    _, out, _ = run(prog, "--version")
    version = out.split()[-1]
    with open(os.path.join(DOCS, name)) as f:
        th = next(line for line in f if line.startswith(".TH"))
    check(f'"profq {version}"' in th, f"{name} is for version {version} ({th.strip()})")
groff = shutil.which("groff")
if groff:
    for name in ("profq.1", "profqd.8"):
        rc, _, err = run(groff, "-man", "-ww", "-z", os.path.join(DOCS, name))
        check(rc == 0 and not err.strip(), f"groff -ww finds nothing to warn about in {name}: "
              f"{err.strip()}")
else:
    print("note: groff is not installed; roff warnings not checked")
