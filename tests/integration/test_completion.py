#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Shell completion (completion/profq.bash, completion/_profq): in bash and in zsh, the
commands of `profq --help`, every option of each command's usage (--[no-]x as --x and --no-x),
the values an option's usage spells (--sort self|total), the command line of `run`, files for
-o and pids for --pid. The expectations come from running profq, not from this file, except
the few named values. Needs no root and no BPF; zsh is skipped where it is not installed."""

import os
import re
import shutil
import subprocess

from harness import Env, check

env = Env()
SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "completion")
BIN = os.path.dirname(env.profq)


def help_of(*args):
    return subprocess.run([env.profq, *args, "--help"], capture_output=True, text=True,
                          timeout=30).stdout


commands = re.findall(r"^  ([a-z]+) ", re.split(r"^Commands.*:$", help_of(), flags=re.M)[1].split("\n\n")[0], re.M)
check(len(commands) >= 10 and "top" in commands and "run" in commands,
      f"profq --help lists the commands ({commands})")


def usage_options(cmd):
    usage = help_of(cmd).split("\n\n")[0]
    found = set()
    for opt in re.findall(r"--\[no-\][a-z-]+|--?[a-zA-Z][a-zA-Z-]*", usage):
        m = re.fullmatch(r"--\[no-\]([a-z-]+)", opt)
        found |= {"--" + m.group(1), "--no-" + m.group(1)} if m else {opt}
    return found


# Each case: the words typed (the last one being completed), and what must be offered.
cases = [(["profq", ""], set(commands), True),
         (["profq", "--socket", "/x", "t"], {c for c in commands if c.startswith("t")}, False),
         (["profq", "--st"], {"--state-dir"}, False),
         (["profq", "top", "--sort", ""], {"self", "total"}, True),
         (["profq", "ps", "--sort", ""],
          {"time", "cpu", "user", "sys", "samples", "start", "off-cpu"}, True),
         (["profq", "top", "--range", ""], {"life"}, True),
         (["profq", "top", "--no-p"], {"--no-python"}, False),
         (["profq", "top", "--by", ""], {"function", "process", "module"}, True),
         (["profq", "tree", "--color", ""], {"auto", "always", "never"}, True),
         (["profq", "--color", ""], {"auto", "always", "never"}, True),
         (["profq", "--color", "never", "t"], {c for c in commands if c.startswith("t")}, False),
         (["profq", "--co"], {"--color"}, True)]
for cmd in commands:
    if cmd != "status":
        cases.append((["profq", cmd, "-"], usage_options(cmd) | {"--help"}, True))


def bash_complete(words):
    script = (f"PATH={BIN}:$PATH; source {SRC}/profq.bash; COMP_WORDS=({' '.join(map(quote, words))});"
              " COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _profq; printf '%s\\n' \"${COMPREPLY[@]}\"")
    p = subprocess.run(["bash", "--norc", "-c", script], capture_output=True, text=True,
                       timeout=60, cwd="/", env={**os.environ, "PROFQ_SOCKET": "/nonexistent"})
    return set(p.stdout.split())


def quote(w):
    return "'" + w.replace("'", "'\\''") + "'"


# zsh: the completion system's builtins stand in as functions that print what they were given
# (compadd's own filtering by the prefix is zsh's, so the candidates are filtered here).
ZSH_STUBS = """
compadd() { while [[ $1 != -- ]]; do shift; done; shift; print -rl -- "$@"; }
_call_program() { shift; eval "$@"; }
_files() { print -r -- '<files>'; }
_directories() { print -r -- '<directories>'; }
_users() { print -r -- '<users>'; }
_normal() { print -r -- "<command ${words[1]} at $CURRENT>"; }
"""


def zsh_complete(words):
    script = (f"fpath=({SRC} $fpath); autoload -Uz _profq; path=({BIN} $path);{ZSH_STUBS}"
              f"words=({' '.join(map(quote, words))}); CURRENT=$#words; PREFIX=$words[CURRENT];"
              " _profq")
    p = subprocess.run(["zsh", "-f", "-c", script], capture_output=True, text=True, timeout=60,
                       cwd="/", env={**os.environ, "PROFQ_SOCKET": "/nonexistent"})
    return {w for w in p.stdout.split("\n") if w and w.startswith(words[-1])} | \
        {w for w in p.stdout.split("\n") if w.startswith("<")}


shells = [("bash", bash_complete)]
if shutil.which("zsh"):
    shells.append(("zsh", zsh_complete))
else:
    print("zsh is not installed: its completion is not checked")
for shell, complete in shells:
    for words, want, exact in cases:
        got = complete(words)
        check(got == want if exact else want <= got,
              f"{shell}: {' '.join(words)!r} offers {sorted(want)} (got {sorted(got)})")

# Files after -o, the command line after run's options, pids after --pid (profqd's ps, else
# the live processes: this test's own pid among them).
check("/etc" in bash_complete(["profq", "flame", "-o", "/et"]), "bash: files after -o")
check("echo" in bash_complete(["profq", "run", "--repeat", "3", "ech"]),
      "bash: run completes the command to run")
check("/etc" in bash_complete(["profq", "run", "--", "ls", "/et"]),
      "bash: and then its arguments as files")
check(str(os.getpid()) in bash_complete(["profq", "top", "--pid", str(os.getpid())[:-1]]),
      "bash: --pid offers the processes")
if shutil.which("zsh"):
    check(zsh_complete(["profq", "flame", "-o", ""]) == {"<files>"}, "zsh: files after -o")
    check("<command ech at 1>" in zsh_complete(["profq", "run", "-n", "3", "ech"]),
          "zsh: run completes the command to run as a command line of its own")
    check(str(os.getpid()) in zsh_complete(["profq", "top", "--pid", str(os.getpid())[:-1]]),
          "zsh: --pid offers the processes")
print("ok")
