#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Pushing to a backend (docs/profqd.8, PUSHING TO A BACKEND): a local HTTP server implements
Pyroscope's ingest endpoint (POST /ingest?name=APP{labels}&from=&until=&format=pprof, the
profile in the multipart field "profile") and decodes every upload's pprof. Against it: the
backend down at start then back (every window of a workload arrives once, its samples adding
up to what `profq top` counts), HTTP 500s, connections reset mid-upload, 400s (counted, logged
once, never sent again), a server that accepts and never answers (queries still answered at
once), a second target whose spool is over its limit (the oldest uploads
dropped and counted, the newest delivered), and kill -9 while uploads are queued (sent by the
next run). Credentials come from --push-token-file (a bearer token, then user:password); an
HTTPS endpoint with a self-signed certificate is refused (the system's CA store). One
upload is also read by `go tool pprof`, which must see the same samples."""

import atexit
import base64
import email
import email.policy
import gzip
import json
import os
import re
import shutil
import socket
import ssl
import struct
import subprocess
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harness import (Daemon, Env, check, fail, popen, require_bpf, start_workload, tempdir)
from harness import wait_until as harness_wait_until

require_bpf()
env = Env()
tmp = tempdir("profq-push-")
T0 = time.monotonic()


# ---- pprof, decoded by hand: the fields the checks need ----

def varint(buf, i):
    v = shift = 0
    while True:
        b = buf[i]
        i += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return v, i


def fields(buf):
    """(field number, wire type, value) of a protobuf message."""
    i = 0
    while i < len(buf):
        key, i = varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = varint(buf, i)
        elif wt == 2:
            n, i = varint(buf, i)
            v, i = buf[i:i + n], i + n
        elif wt == 1:
            v, i = buf[i:i + 8], i + 8
        elif wt == 5:
            v, i = buf[i:i + 4], i + 4
        else:
            raise ValueError(f"wire type {wt}")
        yield num, wt, v


def packed(wt, v):
    if wt == 0:
        return [v]
    out, i = [], 0
    while i < len(v):
        x, i = varint(v, i)
        out.append(x)
    return out


def decode_pprof(gz):
    """{'samples': sum of the first value, 'strings': [...], 'period': ns}."""
    buf = gzip.decompress(gz)
    samples, strings, period = 0, [], 0
    for num, wt, v in fields(buf):
        if num == 2:  # Sample
            for n2, wt2, v2 in fields(v):
                if n2 == 2:
                    vals = packed(wt2, v2)
                    samples += vals[0]
                    break
        elif num == 6:
            strings.append(v.decode())
        elif num == 12:
            period = v
    return {"samples": samples, "strings": strings, "period": period}


# ---- the backend ----

class Backend:
    """An ingest endpoint on 127.0.0.1:port. mode: "ok" (200), "500", "400", "hang" (accepts, reads
    the request, never answers until the mode changes), "reset" (resets the connection
    mid-upload); stop() closes the port (refused)."""

    def __init__(self, name, tls=None):
        self.name = name
        self.tls = tls  # (certificate, key) files: HTTPS
        self.mode = "ok"
        self.uploads = []  # dicts: name, labels, from, until, samples, strings, body, t
        self.statuses = {"ok": 0, "500": 0, "400": 0, "hang": 0, "reset": 0}
        self.lock = threading.Lock()
        self.release = threading.Event()
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        self.server = None
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"

    def start(self):
        backend = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                mode = backend.mode
                with backend.lock:
                    backend.statuses[mode] += 1
                if mode == "reset":
                    # Part of the body read, then the connection reset (RST, not FIN).
                    self.rfile.read(min(n, 100))
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                               struct.pack("ii", 1, 0))
                    self.connection.close()
                    self.close_connection = True
                    return
                body = self.rfile.read(n)
                if len(body) < n:
                    # The client went away mid-body (profqd stopping aborts its upload): no
                    # upload, and nobody to answer.
                    self.close_connection = True
                    return
                if mode == "hang":
                    backend.release.wait(60)
                    self.close_connection = True
                    return
                if mode in ("500", "400"):
                    self.send_response(int(mode))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                try:
                    up = backend.parse(self.path, self.headers.get("Content-Type", ""), body)
                except Exception as e:  # a malformed upload is the test's failure
                    fail(f"{backend.name}: malformed upload {self.path}: {e!r}")
                up["authorization"] = self.headers.get("Authorization")
                with backend.lock:
                    backend.uploads.append(up)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.release.clear()
        for attempt in range(50):
            try:
                self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
                break
            except OSError:
                time.sleep(0.1)
        else:
            fail(f"{self.name}: cannot listen on port {self.port} again")
        self.server.daemon_threads = True
        if self.tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*self.tls)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def set_mode(self, mode):
        self.mode = mode
        if mode != "hang":
            self.release.set()
        else:
            self.release.clear()

    def parse(self, path, ctype, body):
        u = urllib.parse.urlsplit(path)
        if u.path != "/ingest":
            raise ValueError(f"path {u.path}")
        q = urllib.parse.parse_qs(u.query, strict_parsing=True)
        for k in ("name", "from", "until", "format", "sampleRate", "spyName"):
            if k not in q or len(q[k]) != 1:
                raise ValueError(f"query parameter {k}")
        if q["format"][0] != "pprof":
            raise ValueError("format")
        m = re.fullmatch(r"([A-Za-z0-9._-]+)\{(.*)\}", q["name"][0])
        if not m:
            raise ValueError(f"name {q['name'][0]}")
        labels = dict(kv.split("=", 1) for kv in m.group(2).split(",")) if m.group(2) else {}
        if not ctype.startswith("multipart/form-data"):
            raise ValueError(f"content type {ctype}")
        msg = email.message_from_bytes(
            b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + body, policy=email.policy.HTTP)
        profile = None
        for part in msg.iter_parts():
            if part.get_param("name", header="content-disposition") == "profile":
                profile = part.get_payload(decode=True)
        if profile is None:
            raise ValueError("no multipart field 'profile'")
        d = decode_pprof(profile)
        return {"app": m.group(1), "labels": labels, "from": int(q["from"][0]),
                "until": int(q["until"][0]), "rate": int(q["sampleRate"][0]),
                "samples": d["samples"], "strings": d["strings"], "body": profile,
                "t": time.time()}

    def of_pid(self, pid):
        with self.lock:
            return [u for u in self.uploads if u["labels"].get("pid") == str(pid)]


def wait_until(what, cond, timeout):
    return harness_wait_until(what, cond, timeout, step=0.1)


def target(d, url):
    for t in d.json("status")["push"]["targets"]:
        if t["url"] == url:
            return t
    fail(f"no push target {url} in status")


def cgroup2_mount():
    """Where the host mounts cgroup v2, if it is writable, or None."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            if right.split()[0] == "cgroup2" and os.access(left.split()[4], os.W_OK):
                return left.split()[4]
    return None


CGROUPS_MADE = []


@atexit.register
def remove_cgroups():
    for cgroup in CGROUPS_MADE:
        for _ in range(100):  # the cgroup empties a moment after the process is reaped
            try:
                os.rmdir(cgroup)
                break
            except OSError:
                time.sleep(0.05)


def run_split(seconds, unit=None):
    """The split workload for `seconds` (in a cgroup named like the systemd unit `unit`, made
    for it and removed when the test ends: a unit's cgroup outlives a process's last samples,
    and profqd, seconds behind on a loaded machine, names a process gone by its cgroup's id);
    returns its pid once it has exited."""
    if not unit:
        p, pid = start_workload(env, "split", "--seconds", seconds)
        p.wait(timeout=60)
        return pid
    cgroup = os.path.join(CGROUP2, unit)
    os.mkdir(cgroup)
    CGROUPS_MADE.append(cgroup)
    p = subprocess.Popen(["sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', cgroup,
                          env.workload("split"), "--seconds", str(seconds)],
                         stdout=subprocess.PIPE, text=True)
    pid = int(p.stdout.readline())
    p.communicate(timeout=60)
    return pid


def check_pid(d, backend, pid, what, unit=None):
    """Every window of pid arrived once, and its samples add up to what profq top counts; each
    upload labelled with its unit when it has one."""
    top = d.json("top", "--pid", str(pid))
    want = top["samples"]
    got = wait_until(f"{what}: pid {pid}'s {want} samples at {backend.name}",
                     lambda: (lambda ups: ups if sum(u["samples"] for u in ups) >= want else None)(
                         backend.of_pid(pid)), 20)
    time.sleep(0.3)
    got = backend.of_pid(pid)
    total = sum(u["samples"] for u in got)
    windows = [u["from"] for u in got]
    check(total == want and want > 0,
          f"{what}: pid {pid}: {total} samples pushed in {len(got)} uploads, profq top "
          f"counts {want}")
    check(len(windows) == len(set(windows)),
          f"{what}: each window of pid {pid} arrived once ({sorted(windows)})")
    check(all(u["labels"].get("comm") == "split" and u["labels"].get("host") == socket.gethostname()
              and u["app"] == "profq" and u["rate"] == 199 for u in got),
          f"{what}: labels host, comm, pid and the app name "
          f"({got[0]['app']}{got[0]['labels'] if got else ''})")
    check(all("work_a" in u["strings"] for u in got if u["samples"] >= 20),
          f"{what}: work_a is named in the profiles")
    check(all(u["labels"].get("unit") == unit for u in got),
          f"{what}: the unit label is the process's unit ({unit}; got "
          f"{sorted({u['labels'].get('unit') or '' for u in got})})")
    return got


def pprof_total(body):
    """The samples of a profile as go tool pprof reads it."""
    go = shutil.which("go")
    if not go:
        fail("go tool pprof is needed (scripts/install-deps installs golang-go)")
    pb = os.path.join(tmp, "upload.pb.gz")
    with open(pb, "wb") as f:
        f.write(body)
    genv = dict(os.environ, HOME=tmp, PPROF_TMPDIR=tmp, GOCACHE=os.path.join(tmp, "gocache"))
    p = subprocess.run([go, "tool", "pprof", "-symbolize=none", "-top", "-sample_index=samples",
                        pb], capture_output=True, text=True, timeout=120, env=genv)
    if p.returncode != 0:
        fail(f"go tool pprof failed: {p.stderr}")
    m = re.search(r"of (\d+) total", p.stdout)
    return int(m.group(1)) if m else None, p.stdout


main = Backend("backend")
state = os.path.join(tmp, "state")
# Credentials from a file: a bearer token here, user:password for the second daemon.
TOKEN = "t0ken-" + os.urandom(6).hex()
token_file = os.path.join(tmp, "token")
with open(token_file, "w") as f:
    f.write(TOKEN + "\n")
os.chmod(token_file, 0o600)
# An HTTPS endpoint whose certificate no CA in the system's store signed: refused.
cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
p = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1"], capture_output=True)
if p.returncode != 0:
    fail(f"openssl could not make a certificate: {p.stderr}")
untrusted = Backend("self-signed backend", tls=(cert, key))
untrusted.start()
push_args = ["--push", main.url, "--push-timeout", "3s", "--push-retry-max", "2s",
             "--push-token-file", token_file]

# ---- the backend down at start, then back ----
d = Daemon(env, *push_args, "--push", untrusted.url, frequency=199, window="1s",
           state_dir=state)
CGROUP2 = cgroup2_mount()
UNIT = f"profq-push-{os.getpid()}.service" if CGROUP2 else None
if not UNIT:
    print("no writable cgroup v2 mount: the unit label is not checked")
pid = run_split(2, UNIT)
t = wait_until("a failed attempt in status", lambda: (lambda t: t if t["failures"] > 0 and
                                                       t["queued"] > 0 else None)(
    target(d, main.url)), 10)
check(t["sent"] == 0 and t["last_error"] and "last_success_s" not in t,
      f"backend down: status counts failures ({t['failures']}), queued {t['queued']}, "
      f"last error '{t['last_error']}'")
main.start()
ups = check_pid(d, main, pid, "down, then back", UNIT)
big = max(ups, key=lambda u: u["samples"])
n, out = pprof_total(big["body"])
check(n == big["samples"], f"go tool pprof reads {n} samples in an upload, as decoded "
      f"({big['samples']})")
t = target(d, main.url)
check(t["sent"] > 0 and t["last_success_s"] > 0, f"status: {t['sent']} sent, a last success")
auth = {u["authorization"] for u in main.uploads}
check(auth == {f"Bearer {TOKEN}"}, f"every upload carries the bearer token of the file ({auth})")
t = target(d, untrusted.url)
check(t["sent"] == 0 and not untrusted.uploads and "certificate" in (t["last_error"] or ""),
      f"HTTPS with a certificate no system CA signed: refused ({t['last_error']})")
_, out, _ = d.profq("status")
line = next((l for l in out.splitlines() if l.startswith("Push:")), "")
check(main.url in line and re.search(r"\d+ sent, \d+ queued", line) and "last success" in out,
      f"profq status shows the target: {line!r}")

# ---- HTTP 500s ----
main.set_mode("500")
pid = run_split(2)
wait_until("500s answered", lambda: main.statuses["500"] >= 2, 10)
main.set_mode("ok")
check_pid(d, main, pid, "after HTTP 500s")
t = target(d, main.url)
check("500" in (t["last_error"] or ""), f"status: last error '{t['last_error']}'")

# ---- connections reset mid-upload ----
main.set_mode("reset")
pid = run_split(1)
wait_until("connections reset", lambda: main.statuses["reset"] >= 2, 10)
main.set_mode("ok")
check_pid(d, main, pid, "after connection resets")

# ---- 400: refused for good, counted, not retried ----
main.set_mode("400")
wait_until("uploads refused", lambda: main.statuses["400"] >= 5, 10)
main.set_mode("ok")
time.sleep(0.5)
t = target(d, main.url)
check(t["rejected"] == main.statuses["400"],
      f"status counts {t['rejected']} uploads refused, the backend refused "
      f"{main.statuses['400']}: none was sent again")
check(d.read_log().count("refused an upload") == 1, "a refusal is logged once")

# ---- a server that accepts and never answers ----
main.set_mode("hang")
p, pid = start_workload(env, "split", "--seconds", 2)
wait_until("a request left hanging", lambda: main.statuses["hang"] >= 1, 10)
t0 = time.monotonic()
d.json("status")
top = d.json("top", "-n", "1")
dt = time.monotonic() - t0
check(dt < 1.5, f"status and top answered in {dt:.2f} s while an upload hangs")
p.wait(timeout=60)
wait_until("the hanging upload timed out", lambda: "timed out" in (target(d, main.url)["last_error"]
                                                                or "") or None, 10)
main.set_mode("ok")
check_pid(d, main, pid, "after a hanging server")

# ---- kill -9 with uploads queued ----
main.set_mode("500")
pid = run_split(2)
time.sleep(1.5)  # the workload's last window closes
t = wait_until("uploads queued", lambda: (lambda t: t if t["queued"] >= 3 else None)(
    target(d, main.url)), 10)
check(not main.of_pid(pid), "nothing of the last workload arrived yet")
d.kill()
main.set_mode("ok")
d = Daemon(env, *push_args, frequency=199, window="1s", state_dir=state)
check_pid(d, main, pid, "spooled before kill -9, sent after the restart")
d.stop()
main.stop()
froms = [u["from"] for u in main.uploads]
check(froms == sorted(froms), f"uploads arrived in the order of their windows "
      f"({len(froms)} uploads)")

# ---- a spool over its limit ----
# A window's uploads go in one spool file (30-60K a window here, status says below): 256K
# holds a few windows, and the oldest go first.
small = Backend("small-spool backend")
with open(token_file, "w") as f:
    f.write("pusher:s3cret:with:colons\n")
d = Daemon(env, "--push", small.url, "--push-max-spool", "256K", "--push-retry-max", "2s",
           "--push-token-file", token_file, frequency=199, window="1s")


def stored_top():
    """top's answer once a sample is stored, else None: a daemon just started may have none yet
    (those of binaries whose DWARF its worker has not answered for are held a moment)."""
    rc, out, _ = d.profq("top", "-n", "1", "--json", check_rc=False)
    return json.loads(out) if rc == 0 else None


first = wait_until("a first sample", stored_top, 30)["range"]["since_s"]
# A window's uploads are as large as the machine is busy: short processes, each an upload of
# its own, fill the spool within seconds however quiet the machine is otherwise.
churn = popen(["sh", "-c", f"while :; do {env.workload('split')} --seconds 0.05 >/dev/null; "
               "done"])
t = wait_until("uploads dropped from the full spool", lambda: (
    lambda t: t if t["dropped"] > 0 else None)(target(d, small.url)), 60)
churn.kill()
churn.wait()
st = d.json("status")
check(t["queued_bytes"] <= 256 * 1024, f"spool within 256K ({t['queued_bytes']} bytes, "
      f"{t['queued']} uploads, {t['dropped']} dropped of {st['push']['uploads']}, "
      f"{st['push']['upload_bytes']} bytes in {st['windows']} windows)")
small.start()
st = wait_until("the spool emptied", lambda: (lambda s: s if s["push"]["targets"][0]["queued"] == 0
                                              else None)(d.json("status")), 20)
t = st["push"]["targets"][0]
check(t["sent"] + t["dropped"] + t["rejected"] == st["push"]["uploads"],
      f"every upload sent or counted: {t['sent']} sent + {t['dropped']} dropped + "
      f"{t['rejected']} rejected = {st['push']['uploads']} made")
with small.lock:
    froms = [u["from"] for u in small.uploads]
auth = {u["authorization"] for u in small.uploads}
basic = "Basic " + base64.b64encode(b"pusher:s3cret:with:colons").decode()
check(auth == {basic}, f"user:password in the file: basic authentication ({auth})")
check(froms and min(froms) > int(first),
      f"the oldest window was dropped (the daemon's first window is from {int(first)}, the "
      f"oldest that arrived from {min(froms) if froms else None})")
check(froms == sorted(froms), "the spooled uploads arrived in order")
d.stop()
small.stop()

# ---- --push-unit: only the processes of the units that match ----
if CGROUP2:
    picky = Backend("unit-filtered backend")
    picky.start()
    d = Daemon(env, "--push", picky.url, "--push-unit", "profq-push-*.service",
               frequency=199, window="1s")
    inside = run_split(1, f"profq-push-{os.getpid()}-b.service")
    outside = run_split(1)
    ups = wait_until("the unit's uploads", lambda: picky.of_pid(inside) or None, 15)
    time.sleep(2.5)  # the outside process's windows have closed by now, and were not pushed
    with picky.lock:
        units = {u["labels"].get("unit") for u in picky.uploads}
    check(ups and not picky.of_pid(outside) and units == {f"profq-push-{os.getpid()}-b.service"},
          f"--push-unit: only the unit's processes are pushed (units {units}; pid {outside} "
          f"outside any unit: {len(picky.of_pid(outside))} uploads)")
    d.stop()
    picky.stop()
print(f"test_push: {time.monotonic() - T0:.1f} s")
