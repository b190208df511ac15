"""Pins, references and pipes on the live kernel.

============================  ==========================================  ===========================
model call                    how the live kernel takes it                lifetime
============================  ==========================================  ===========================
``pin(write=True,             io_uring ``IORING_REGISTER_BUFFERS``        until ``unpin()``; survives
longterm=True)``              (FOLL_PIN|FOLL_WRITE|FOLL_LONGTERM)         the process (the fork
                                                                          server holds the ring)
``pin(write=False,            ``write(2)`` from the pages to an           transient: released when
longterm=False)``             ``O_DIRECT`` ext4 file (FOLL_PIN, R/O)      the system call returns
``pin(write=True,             ``read(2)`` into the pages from an          transient
longterm=False)``             ``O_DIRECT`` ext4 file (FOLL_PIN|FOLL_WRITE)
``pin(write=False,            not possible from user space here (no       raises ENOSYS
longterm=True)``              GUP_TEST, io_uring always pins R/W)
``get_user_pages()``          ``vmsplice(2)`` into a pipe we keep         until ``put()``
                              (FOLL_GET references in pipe buffers)
``vmsplice()``                ``vmsplice(2)``; ``read`` consumes          until read or ``close()``
============================  ==========================================  ===========================

A transient pin has done its I/O by the time ``pin()`` returns: ``read``
returns what the device read then, and ``unpin`` only marks it released.
"""

import ctypes
import fcntl
import os
import struct
import termios

from ..errors import InvalidArgument, KernelError

__all__ = ["LivePin", "LiveRef", "LivePipe", "LiveUnsupported"]

_libc = ctypes.CDLL(None, use_errno=True)
_libc.tee.restype = ctypes.c_ssize_t
_libc.tee.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_size_t, ctypes.c_uint]
SPLICE_F_NONBLOCK = 2
F_SETPIPE_SZ = 1031


class LiveUnsupported(KernelError):
    """The live kernel offers no user-space way to do this (errno ``ENOSYS``)."""

    def __init__(self, message):
        super().__init__("ENOSYS", message)


def _nbytes(n, what="byte count"):
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise InvalidArgument(f"{what} must be a non-negative int, not {n!r}")
    return n


def _data(data):
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InvalidArgument(f"data must be bytes, not {type(data).__name__}")
    return bytes(data)


class _LiveHeld:
    """Common part of LivePin, LiveRef and LivePipe."""

    kind = ""

    def __init__(self, kernel, owner, addr, npages, pfns):
        self.kernel = kernel
        self.owner = owner
        self.addr = addr
        self.npages = npages
        self._pfns = pfns
        self._released = False

    @property
    def active(self):
        """Still held (not unpinned / put / closed)."""
        return not self._released

    @property
    def pfns(self):
        """PFNs mapped at the held addresses right after the pages were taken
        (the pages the holder got; from /proc/PID/pagemap)."""
        self._check()
        return list(self._pfns)

    def _check(self):
        if self._released:
            raise InvalidArgument(f"{self.kind} at {self.addr:#x} was already released")

    def _range(self, offset, n):
        if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0 \
                or offset + n > self.npages * self.kernel.PAGE_SIZE:
            raise InvalidArgument(f"offset {offset!r} + {n} bytes is outside the {self.npages} page(s) held")


class LivePin(_LiveHeld):
    """A FOLL_PIN pin on the live kernel (see the module table).

    Attributes
    ----------
    how : str
        ``"io_uring"``, ``"O_DIRECT write"`` or ``"O_DIRECT read"``.
    write, longterm, fast : bool
        As requested (``fast`` cannot be chosen from user space: io_uring and
        O_DIRECT both go through pin_user_pages_fast() or its iov_iter form).
    transient : bool
        The pin already ended inside the system call that took it.
    """

    kind = "pin"

    def __init__(self, kernel, owner, addr, npages, pfns, how, write, longterm, fast,
                 ring=None, seen=b""):
        super().__init__(kernel, owner, addr, npages, pfns)
        self.how = how
        self.write_pin = write
        self.longterm = longterm
        self.fast = fast
        self.transient = ring is None
        self._ring = ring
        self._seen = seen

    def read(self, n, offset=0):
        """What the device reads through the pin.

        io_uring: an ``IORING_OP_WRITE_FIXED`` from the pinned pages to a
        memfd, now (the pages themselves, whatever maps them or not).
        Transient pins: the bytes the device read during the system call.
        """
        self._check()
        self._range(offset, _nbytes(n))
        if self._ring is None:
            return self._seen[offset:offset + n]
        rep = self.kernel._server_call("URING_READ", (self._ring, offset, n))
        return rep.payload

    def write(self, data, offset=0):
        """A device write (DMA) into the pinned pages: ``IORING_OP_READ_FIXED``
        from a memfd holding ``data``.

        Raises
        ------
        InvalidArgument
            For a read-only pin (no FOLL_WRITE), as in the model.
        LiveUnsupported
            For a transient pin: it ended with the system call that took it.
        """
        self._check()
        data = _data(data)
        if not self.write_pin:
            raise InvalidArgument("this pin is read-only (no FOLL_WRITE): the device may not write")
        self._range(offset, len(data))
        if self._ring is None:
            raise LiveUnsupported(f"the short-term pin ended with the {self.how} that took it; "
                                  "use pin(write=True, longterm=True) (io_uring) for device writes")
        self.kernel._server_call("URING_WRITE", (self._ring, offset), payload=data)

    def unpin(self):
        """Release the pin: ``IORING_UNREGISTER_BUFFERS`` (synchronous), or
        only mark a transient pin released."""
        self._check()
        if self._ring is not None:
            self.kernel._bump()
            self.kernel._server_call("URING_UNPIN", (self._ring,))
        self._released = True           # a transient pin: nothing left to release

    def __repr__(self):
        return f"<LivePin {self.how} {self.npages} page(s) at {self.addr:#x}{'' if self.active else ' (unpinned)'}>"


class _PipeBacked(_LiveHeld):
    """A pipe read end holding vmsplice()d pages (FOLL_GET references)."""

    def __init__(self, kernel, owner, addr, npages, pfns, fd, nbytes):
        super().__init__(kernel, owner, addr, npages, pfns)
        self._fd = fd
        self._nbytes = nbytes
        kernel._state.fds.add(fd)

    def _drop(self):
        if self._fd is not None:
            self.kernel._state.fds.discard(self._fd)
            os.close(self._fd)
            self._fd = None
        self._released = True

    def _pending(self):
        if self._fd is None:
            return 0
        b = fcntl.ioctl(self._fd, termios.FIONREAD, b"\0\0\0\0")
        return struct.unpack("i", b)[0]

    def _peek(self, n):
        """The first ``n`` bytes in the pipe, without consuming them (tee(2))."""
        if n == 0:
            return b""
        r, w = os.pipe2(os.O_CLOEXEC)
        try:
            size = 1 << 16
            while size < n + 4096:
                size <<= 1
            fcntl.fcntl(w, F_SETPIPE_SZ, size)
            got = _libc.tee(self._fd, w, n, SPLICE_F_NONBLOCK)
            if got < 0:
                e = ctypes.get_errno()
                raise KernelError("E" + os.strerror(e).upper().replace(" ", "_"), f"tee(): {os.strerror(e)}")
            os.close(w)
            w = None
            out = bytearray()
            while len(out) < got:
                b = os.read(r, got - len(out))
                if not b:
                    break
                out += b
            return bytes(out[:n])
        finally:
            os.close(r)
            if w is not None:
                os.close(w)


class LiveRef(_PipeBacked):
    """FOLL_GET references, realised as a vmsplice()d pipe that is never read:
    ``read`` peeks with tee(2), ``put`` closes the pipe."""

    kind = "ref"

    def read(self, n, offset=0):
        """Read the referenced pages (the pages the references hold, now)."""
        self._check()
        self._range(offset, _nbytes(n))
        return self._peek(offset + n)[offset:]

    def put(self):
        """put_page() on every page: close the pipe."""
        self._check()
        self._drop()

    def __repr__(self):
        return f"<LiveRef {self.npages} page(s) at {self.addr:#x}{'' if self.active else ' (put)'}>"


class LivePipe(_PipeBacked):
    """A pipe filled by vmsplice(2): ``read(n)`` consumes like a real read,
    ``close()`` drops what is left, ``pending`` is FIONREAD."""

    kind = "pipe"

    def read(self, n):
        """Read and consume up to ``n`` bytes from the pipe (never blocks:
        the write end is closed, so an empty pipe reads as EOF)."""
        self._check()
        n = _nbytes(n)
        out = bytearray()
        while len(out) < n:
            b = os.read(self._fd, n - len(out))
            if not b:
                break
            out += b
        if self._pending() == 0:
            self._drop()
        return bytes(out)

    def close(self):
        """Close the pipe, dropping the references still held."""
        if self.active:
            self._drop()

    @property
    def pending(self):
        """Bytes still in the pipe."""
        return 0 if self._released else self._pending()

    def __repr__(self):
        return f"<LivePipe {self.pending} byte(s) pending{'' if self.active else ' (closed)'}>"
