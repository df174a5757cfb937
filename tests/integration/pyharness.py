# SPDX-License-Identifier: MIT
"""What the tests of profq's Python frames share (test_python.py, test_python_shapes.py,
test_python_versions.py): the interpreters to run, the workload (python/workload.py) and what it
measured of itself, queries that report a failed check instead of stopping the test (a query
the daemon or the CLI does not know yet is one failure among the others), and the rows of an
answer that are Python frames ("python": true).

Shares are compared as percentages of the process's samples; the tolerance is the larger of a
fixed number of points and Z standard errors of the sample count the answer has (tolerance()
says which)."""

import json
import os
import re
import shutil
import subprocess

from harness import Z, check, fail, popen, share_tolerance

HERE = os.path.dirname(os.path.abspath(__file__))
WORKLOAD = os.path.realpath(os.path.join(HERE, "python", "workload.py"))
DEBIAN_PYTHON = "/usr/bin/python3"


def marked_line(marker):
    """(number, text) of the workload's line holding marker."""
    with open(WORKLOAD) as f:
        for i, line in enumerate(f.read().splitlines(), 1):
            if marker in line:
                return i, line
    fail(f"no {marker!r} line in {WORKLOAD}")


def exec_line(marker):
    """(number, text) of the line holding marker in the workload's EXEC_SOURCE, numbered as the
    exec'd code numbers it (its line 1 is the rest of the line the string opens on)."""
    start, _ = marked_line('EXEC_SOURCE = """')
    number, text = marked_line(marker)
    return number - start + 1, text


def pyenv():
    """The pyenv executable, or None."""
    found = shutil.which("pyenv")
    if found:
        return found
    for root in (os.environ.get("PYENV_ROOT"), os.path.expanduser("~/.pyenv"), "/root/.pyenv"):
        if root and os.access(os.path.join(root, "bin", "pyenv"), os.X_OK):
            return os.path.join(root, "bin", "pyenv")
    return None


def pyenv_python(minor):
    """(path, None) of pyenv's newest python3.MINOR, or (None, why not)."""
    tool = pyenv()
    if not tool:
        return None, "pyenv is not installed"
    p = subprocess.run([tool, "versions", "--bare"], capture_output=True, text=True)
    versions = [v.strip() for v in p.stdout.splitlines()
                if re.fullmatch(rf"3\.{minor}\.\d+", v.strip())]
    if not versions:
        return None, f"pyenv has no 3.{minor} (pyenv versions --bare: {p.stdout.split()})"
    newest = max(versions, key=lambda v: tuple(int(x) for x in v.split(".")))
    p = subprocess.run([tool, "prefix", newest], capture_output=True, text=True)
    path = os.path.join(p.stdout.strip(), "bin", f"python3.{minor}")
    if p.returncode != 0 or not os.access(path, os.X_OK):
        return None, f"pyenv prefix {newest} gives no python3.{minor} ({p.stderr.strip()})"
    return path, None


def debian_python():
    if not os.access(DEBIAN_PYTHON, os.X_OK):
        fail(f"{DEBIAN_PYTHON} is missing (Debian's python3 package)")
    return DEBIAN_PYTHON


def start(python, mode, seconds, wait=False, flags=()):
    """Starts the workload, with no interpreter flags but those given (an unmodified CPython
    process); returns (Popen, pid)."""
    cmd = [python, *flags, WORKLOAD, mode, "--seconds", str(seconds)]
    if wait:
        cmd.append("--wait")
    p = popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
              text=True)
    line = p.stdout.readline()
    if not line.strip().isdigit():
        fail(f"{' '.join(cmd)} did not print its pid: {line!r} {p.stderr.read()}")
    return p, int(line)


def go(p):
    p.stdin.write("go\n")
    p.stdin.flush()


def finish(p, timeout=120):
    """Waits for the workload; returns what it measured (its last line, a JSON object)."""
    out, err = p.communicate(timeout=timeout)
    if p.returncode != 0:
        fail(f"the workload {p.args} exited {p.returncode}: {err}")
    try:
        return json.loads(out.splitlines()[-1])
    except (ValueError, IndexError):
        fail(f"the workload {p.args} printed no result: {out!r} {err}")


def run(python, mode, seconds):
    """Runs the workload to its end; returns (pid, what it measured)."""
    p, pid = start(python, mode, seconds)
    return pid, finish(p)


def of_process(result, name):
    """The share (percent) of the process's CPU time a function took: what the share of the
    process's samples with the function on the stack estimates."""
    return 100 * result["seconds"][name] / result["cpu"] if result["cpu"] > 0 else 0.0


def version_of(result):
    return tuple(result["version"])


def oneline(text):
    return " / ".join(line.strip() for line in text.strip().splitlines())


def query(d, *args):
    """profq ARGS --json through the daemon d: the answer, or None after reporting a failed
    check with what profq said (an option or answer the CLI does not have is a failure, not the
    end of the test)."""
    rc, out, err = d.profq(*args, "--json", check_rc=False)
    if not check(rc == 0, f"profq {' '.join(args)} --json exits 0 (got {rc}: {oneline(err)})"):
        return None
    try:
        return json.loads(out)
    except ValueError:
        check(False, f"profq {' '.join(args)} --json prints JSON ({out[:200]!r})")
        return None


def text_query(d, *args):
    """profq ARGS (plain output), or None after reporting a failed check."""
    rc, out, err = d.profq(*args, check_rc=False)
    if not check(rc == 0, f"profq {' '.join(args)} exits 0 (got {rc}: {oneline(err)})"):
        return None
    return out


def is_python(r):
    """A row of top or lines that is a Python frame: "python": true."""
    return r.get("python") is True


def is_python_node(node):
    """A node of a tree answer that is a Python frame: "python": true, as the rows of top have;
    or, should tree nodes not carry that field, a node in a .py file or in code compiled from a
    string ("<exec-code>", "<frozen importlib._bootstrap>"), which no native frame is."""
    f = node.get("file") or ""
    return is_python(node) or f.endswith(".py") or (f.startswith("<") and f.endswith(">"))


def py_rows(answer, name=None):
    """The rows of a top answer that are Python frames, those named name if given."""
    return [r for r in answer["rows"] if is_python(r) and (name is None or r["function"] == name)]


def py_row(answer, name):
    rows = py_rows(answer, name)
    return rows[0] if rows else None


def describe(answer, n=8):
    """The first rows of a top answer: what came, printed beside the checks of an answer."""
    if not answer:
        return "no answer"
    rows = answer.get("rows") or []
    if not rows:
        return f"no rows ({answer.get('samples')} samples)"
    return "; ".join(f"{r['function']} [{r.get('module')}] total {r.get('total_pct')}% "
                     f"self {r.get('self_pct')}%{' python' if is_python(r) else ''}"
                     for r in rows[:n]) + f" ({answer.get('samples')} samples)"


def tolerance(pct, n, points, n_ref=None):
    """(tolerance in points, which): `points`, or Z standard errors of a share of pct percent
    estimated from n samples (and from n_ref, for a share the reference itself sampled), if
    that is larger."""
    se = share_tolerance(pct / 100, n, n_ref)
    if se > points:
        return se, f"±{se:.1f}: Z={Z:g} standard errors of {n}{f'+{n_ref}' if n_ref else ''} " \
                   f"samples, more than {points:g} points"
    return points, f"±{points:g} points (Z={Z:g} standard errors of {n} samples: {se:.1f})"


def check_share(answer, name, want, points, what="TOTAL%"):
    """A Python row named name whose TOTAL% is want (percent) within tolerance()."""
    r = py_row(answer, name)
    n = answer["samples"] if answer else 0
    tol, which = tolerance(want, n, points)
    got = r["total_pct"] if r else None
    return check(r is not None and abs(got - want) <= tol,
                 f"{name}: profq {what} {got}% vs measured {want:.1f}% ({which})"
                 + ("" if r else f"; no Python row {name!r} ({python_names(answer)})"))


def python_names(answer):
    """The names of an answer's Python rows, for a failure's message."""
    names = [r["function"] for r in py_rows(answer)] if answer else []
    return f"Python rows: {names[:10]}" if names else "no Python rows at all"


def walk(nodes, path=()):
    """(node, its ancestors) of every node of a tree answer, depth first."""
    for node in nodes:
        yield node, path
        yield from walk(node.get("children") or [], path + (node,))


def frame_is(frame, name):
    """Whether a frame of an export (a folded frame, a flame box, a pprof function) is the
    function name: the name itself, with an annotation (_[k], _[i], _[j], ... in folded) or a
    place after it in parentheses (py-spy's "name (file.py:12)") allowed."""
    base = re.sub(r"_\[[a-z]+\]$", "", frame)
    return base == name or base.startswith(name + " (")
