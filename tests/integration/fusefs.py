# SPDX-License-Identifier: MIT
"""A FUSE file system in a thread, speaking the kernel's protocol on /dev/fuse itself (no
libfuse): one directory of files held in memory, read-only. It answers every request except
those of the processes `hold` names, which it leaves unanswered (as a user's FUSE daemon may),
until close() (closing /dev/fuse ends every request still waiting). Needs root (mount(2)).

The serving thread waits on /dev/fuse and on a pipe of its own, and close() closes neither
until the thread has returned: a descriptor closed under a thread still reading it is a number
the next pipe or file reuses, and the thread would read (steal) what is written there."""

import ctypes
import errno
import os
import select
import stat
import struct
import threading

# Opcodes (linux/fuse.h).
LOOKUP, FORGET, GETATTR, OPEN, READ, STATFS, RELEASE, GETXATTR, LISTXATTR, FLUSH, INIT, \
    OPENDIR, READDIR, RELEASEDIR, ACCESS, INTERRUPT, DESTROY, BATCH_FORGET, READDIRPLUS = \
    1, 2, 3, 14, 15, 17, 18, 22, 23, 25, 26, 27, 28, 29, 34, 36, 38, 42, 44
IN_HEADER = struct.Struct("<IIQQIIII")  # len opcode unique nodeid uid gid pid padding
OUT_HEADER = struct.Struct("<IiQ")  # len error unique
ROOT = 1


def attr(ino, mode, size):
    """struct fuse_attr (88 bytes)."""
    return struct.pack("<QQQQQQIIIIIIIIII", ino, size, (size + 511) // 512, 0, 0, 0, 0, 0, 0,
                       mode, 1, 0, 0, 0, 4096, 0)


class FuseFS:
    def __init__(self, mountpoint, files):
        """files: {name: bytes}, each an executable file of the root directory."""
        self.mountpoint = mountpoint
        self.names = sorted(files)
        self.data = [files[n] for n in self.names]
        self.hold = set()  # pids whose requests (and their children's) are left unanswered
        self.hold_children = True  # False: the children of those in hold are answered
        self.held = 0  # requests left unanswered
        self.fd = os.open("/dev/fuse", os.O_RDWR)
        libc = ctypes.CDLL(None, use_errno=True)
        opts = f"fd={self.fd},rootmode=40000,user_id=0,group_id=0,allow_other".encode()
        if libc.mount(b"profq-test", mountpoint.encode(), b"fuse.profqtest", 0, opts) != 0:
            e = ctypes.get_errno()
            os.close(self.fd)
            raise OSError(e, f"mount fuse on {mountpoint}: {os.strerror(e)}")
        os.set_blocking(self.fd, False)  # a request gone between select() and read(): EAGAIN
        self.wake_r, self.wake_w = os.pipe()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def node_attr(self, node):
        if node == ROOT:
            return attr(ROOT, stat.S_IFDIR | 0o755, 0)
        return attr(node, stat.S_IFREG | 0o755, len(self.data[node - 2]))

    def reply(self, unique, error=0, payload=b""):
        try:
            os.write(self.fd, OUT_HEADER.pack(OUT_HEADER.size + len(payload), -error, unique) +
                     payload)
        except OSError:
            pass  # the request was interrupted, or the connection is gone

    def holds(self, pid):
        if pid in self.hold:
            return True
        try:
            with open(f"/proc/{pid}/status") as f:
                ppid = next(int(line.split()[1]) for line in f if line.startswith("PPid:"))
        except (OSError, StopIteration, ValueError):
            return False
        return self.hold_children and ppid in self.hold

    def serve(self):
        while True:
            ready, _, _ = select.select([self.fd, self.wake_r], [], [])
            if self.wake_r in ready:
                return  # close()
            try:
                req = os.read(self.fd, 1 << 20)
            except OSError as e:
                if e.errno in (errno.EINTR, errno.ENOENT, errno.EAGAIN):
                    continue
                return  # closed, or unmounted (ENODEV)
            if len(req) < IN_HEADER.size:
                continue
            _, op, unique, node, _, _, pid, _ = IN_HEADER.unpack_from(req)
            body = req[IN_HEADER.size:]
            if self.holds(pid) and op not in (FORGET, BATCH_FORGET, INTERRUPT):
                self.held += 1
                continue
            self.handle(op, unique, node, body)

    def handle(self, op, unique, node, body):
        if op == INIT:
            major, minor, readahead, _ = struct.unpack_from("<IIII", body)
            # fuse_init_out: major, minor, max_readahead, flags, max_background,
            # congestion_threshold, max_write, time_gran, max_pages, map_alignment, flags2,
            # unused[7]
            self.reply(unique, 0, struct.pack("<IIIIHHIIHHI7I", 7, min(minor, 31), readahead, 0,
                                              16, 12, 1 << 17, 1, 32, 0, 0, *([0] * 7)))
        elif op == LOOKUP:
            name = body.split(b"\0", 1)[0].decode(errors="replace")
            if node != ROOT or name not in self.names:
                return self.reply(unique, errno.ENOENT)
            ino = self.names.index(name) + 2
            self.reply(unique, 0, struct.pack("<QQQQII", ino, 0, 60, 60, 0, 0) +
                       self.node_attr(ino))
        elif op == GETATTR:
            self.reply(unique, 0, struct.pack("<QII", 60, 0, 0) + self.node_attr(node))
        elif op in (OPEN, OPENDIR):
            self.reply(unique, 0, struct.pack("<QII", 0, 0, 0))
        elif op == READ:
            _, offset, size = struct.unpack_from("<QQI", body)
            data = self.data[node - 2] if node >= 2 else b""
            self.reply(unique, 0, data[offset:offset + size])
        elif op == READDIR:
            self.reply(unique, 0, b"")
        elif op in (RELEASE, RELEASEDIR, FLUSH, ACCESS):
            self.reply(unique)
        elif op in (FORGET, BATCH_FORGET, INTERRUPT):
            pass  # no reply
        elif op == STATFS:
            self.reply(unique, 0, struct.pack("<QQQQQIIII6I", 0, 0, 0, 0, 0, 4096, 255, 4096, 0,
                                              *([0] * 6)))
        else:
            self.reply(unique, errno.ENOSYS)

    def close(self):
        """Unmounts, and ends every request left waiting (closing /dev/fuse aborts them)."""
        libc = ctypes.CDLL(None, use_errno=True)
        libc.umount2(self.mountpoint.encode(), 2)  # MNT_DETACH
        os.write(self.wake_w, b"x")
        self.thread.join(timeout=10)
        if self.thread.is_alive():
            raise RuntimeError("the FUSE thread did not return; its descriptors are left open")
        os.close(self.fd)
        os.close(self.wake_r)
        os.close(self.wake_w)
