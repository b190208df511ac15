"""The request/response channel to one C worker (see ``worker.c``).

Every call is bounded by a deadline.  A worker that does not answer in
time, or whose socket breaks mid-message, is killed through its pidfd (no
pid reuse race) and the call raises :class:`LiveWorkerError`.
"""

import errno as _errno
import os
import select
import signal
import socket
import struct
import time

from ..errors import MMError

__all__ = ["Channel", "LiveWorkerError", "OP", "REQ", "RSP"]

#: struct req / struct rsp of worker.c
REQ = struct.Struct("<II4Q")
RSP = struct.Struct("<iiII4Q")

OP = dict(PING=0, FORK=1, EXIT=2, MMAP=3, MUNMAP=4, MPROTECT=5, MADVISE=6, READ=7, WRITE=8,
          URING_PIN=9, URING_READ=10, URING_WRITE=11, URING_UNPIN=12, DIO_WRITE=13, DIO_READ=14,
          VMSPLICE=15, STORE_FAULTS=16, RING_ADOPT=17, CLOSE_FD=18, MREMAP=19)
_OPNAME = {v: k for k, v in OP.items()}


class LiveWorkerError(MMError):
    """A worker died, broke the protocol or did not answer in time (it was killed)."""


class Reply:
    """A worker's answer: ``status`` (0 ok, 1 errno, 2 signal), ``err``,
    ``r`` (four integers), ``payload`` (bytes) and ``fds`` received."""

    __slots__ = ("status", "err", "r", "payload", "fds")

    def __init__(self, status, err, r, payload, fds):
        self.status, self.err, self.r, self.payload, self.fds = status, err, r, payload, fds


class Channel:
    """One socket to one worker, plus the worker's pid and pidfd.

    Parameters
    ----------
    sock : socket.socket
        Our end (close-on-exec).
    pid : int
        The worker's pid; a pidfd is opened at once so that killing it later
        can never hit a recycled pid.
    timeout : float
        Default seconds per call.
    """

    def __init__(self, sock, pid, timeout):
        self.sock = sock
        self.pid = pid
        self.timeout = timeout
        self.pidfd = os.pidfd_open(pid)
        self.broken = False

    def call(self, op, a=(), payload=b"", fds=(), timeout=None):
        """Send request ``op`` with up to four integer args; return its Reply.

        Raises
        ------
        LiveWorkerError
            The worker died, broke the protocol or timed out (it is killed).
        """
        if self.broken or self.sock is None:
            raise LiveWorkerError(f"worker {self.pid} is gone")
        a = tuple(a) + (0,) * (4 - len(a))
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        head = REQ.pack(OP[op], len(payload), *[x & (2**64 - 1) for x in a])
        ok = False
        try:
            if fds:
                socket.send_fds(self.sock, [head], list(fds))
            else:
                self._sendall(head, deadline)
            if payload:
                self._sendall(payload, deadline)
            rep = self._recv_reply(deadline, op)
            ok = True
            return rep
        except (OSError, socket.timeout) as e:
            raise LiveWorkerError(f"worker {self.pid}: {op} failed: {e}; the worker was killed") from None
        finally:
            # anything but a complete exchange (timeout, EOF, ^C) leaves the
            # stream mid-message: the worker cannot be trusted any more
            if not ok:
                self.kill()

    def _sendall(self, data, deadline):
        view = memoryview(data)
        while view:
            self.sock.settimeout(max(0.001, deadline - time.monotonic()))
            n = self.sock.send(view)
            view = view[n:]

    def _recv_exact(self, n, deadline, op):
        chunks, got = [], 0
        while got < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout(f"no answer to {op} within the timeout")
            self.sock.settimeout(left)
            b = self.sock.recv(min(n - got, 1 << 20))
            if not b:
                raise LiveWorkerError(f"worker {self.pid} closed its socket during {op} (it died)")
            chunks.append(b)
            got += len(b)
        return b"".join(chunks)

    def _recv_reply(self, deadline, op):
        left = deadline - time.monotonic()
        self.sock.settimeout(max(0.001, left))
        try:
            data, anc, _flags, _addr = self.sock.recvmsg(RSP.size, socket.CMSG_SPACE(4 * 4))
        except socket.timeout:
            raise socket.timeout(f"no answer to {op} within the timeout") from None
        if not data:
            raise LiveWorkerError(f"worker {self.pid} closed its socket during {op} (it died)")
        fds = []
        for level, typ, cdata in anc:
            if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                fds += list(struct.unpack(f"{len(cdata) // 4}i", cdata[:len(cdata) - len(cdata) % 4]))
        for fd in fds:
            os.set_inheritable(fd, False)
        if len(data) < RSP.size:
            data += self._recv_exact(RSP.size - len(data), deadline, op)
        status, err, ln, _nfds, *r = RSP.unpack(data)
        payload = self._recv_exact(ln, deadline, op) if ln else b""
        return Reply(status, err, r, payload, fds)

    def alive(self):
        """True while the process has not exited (its pidfd is not readable)."""
        if self.pidfd is None:
            return False
        return not select.select([self.pidfd], [], [], 0)[0]

    def wait_exit(self, timeout):
        """Wait until the process has exited; True if it did in time."""
        if self.pidfd is None:
            return True
        return bool(select.select([self.pidfd], [], [], timeout)[0])

    def kill(self):
        """SIGKILL the worker (through its pidfd) and close our end."""
        self.broken = True
        if self.pidfd is not None:
            try:
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
            except ProcessLookupError:
                pass
            except OSError as e:
                if e.errno != _errno.ESRCH:
                    raise
        self.close_socket()

    def close_socket(self):
        """Close our socket end: the worker sees EOF and exits."""
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def close(self, timeout=2.0):
        """Make sure the worker is gone: EOF, then SIGKILL if it lingers;
        close the pidfd.  Returns True if it was seen to exit."""
        self.close_socket()
        gone = self.wait_exit(timeout)
        if not gone:
            self.kill()
            gone = self.wait_exit(timeout)
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None
        self.broken = True
        return gone


def opname(op):
    """The name of an op number (for messages)."""
    return _OPNAME.get(op, str(op))
