"""LiveProcess and LiveFile: the verbs of :mod:`mmkit.process`, done by a real process.

A :class:`LiveProcess` is a C worker (``worker.c``) driven over its socket:
every ``mmap``, ``read``, ``write``, ``fork``... is one request, answered
within the kernel's timeout.  A SIGSEGV or SIGBUS is caught in the worker
(sigsetjmp) and raised here as :class:`mmkit.errors.SIGSEGV` /
:class:`~mmkit.errors.SIGBUS`; the worker lives on.
"""

import errno as _errno
import os

from ..errors import InvalidArgument, KernelError, SIGBUS, SIGSEGV
from ..mm import check_range
from ..mremap import check_mremap_args
from ..pageinfo import PAGE_SIZE
from ._chan import LiveWorkerError
from .availability import available
from .holders import LivePin, LivePipe, LiveRef, LiveUnsupported
from .observe import read_raw

__all__ = ["LiveProcess", "LiveFile", "PROT", "MADV"]

PROT = {"none": 0, "r": 1, "rw": 3}
MAP_SHARED, MAP_PRIVATE, MAP_ANONYMOUS = 0x01, 0x02, 0x20
MADV = {"dontneed": 4, "dontfork": 10, "dofork": 11, "hugepage": 14, "nohugepage": 15, "wipeonfork": 18,
        "keeponfork": 19, "collapse": 25}
_SIGNALS = {7: SIGBUS, 11: SIGSEGV}
_DISK_FS = ("ext4", "ext3", "ext2", "xfs", "btrfs", "f2fs")


def errname(e):
    """The errno name of number ``e`` (``"EFAULT"``)."""
    return _errno.errorcode.get(e, f"E{e}")


class LiveFile:
    """An open file of the live kernel: ``read(off, n)``, ``write(off, data)``,
    ``truncate(npages)``, done by pread/pwrite/ftruncate on the workers' CPU."""

    def __init__(self, kernel, name, fd, shmem):
        self.kernel = kernel
        self.name = name
        self.shmem = shmem
        self._fd = fd

    def __repr__(self):
        return f"<LiveFile {self.name!r} {self.npages} pages{' shmem' if self.shmem else ''}>"

    def _fdck(self):
        self.kernel._live()
        return self._fd

    @property
    def size(self):
        """i_size in bytes."""
        return os.fstat(self._fdck()).st_size

    @property
    def npages(self):
        return -(-self.size // PAGE_SIZE)

    def read(self, off, n):
        """pread(2): up to ``n`` bytes at byte offset ``off`` (short at EOF)."""
        for v in (off, n):
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise InvalidArgument(f"offset and count must be non-negative ints, not {v!r}")
        fd = self._fdck()
        with self.kernel._on_cpu():
            return os.pread(fd, n, off)

    def write(self, off, data):
        """pwrite(2): ``data`` at byte offset ``off`` (extends the file)."""
        if not isinstance(off, int) or isinstance(off, bool) or off < 0:
            raise InvalidArgument(f"offset must be a non-negative int, not {off!r}")
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise InvalidArgument(f"data must be bytes, not {type(data).__name__}")
        fd = self._fdck()
        with self.kernel._on_cpu():
            os.pwrite(fd, bytes(data), off)

    def truncate(self, npages):
        """ftruncate(2) to ``npages`` pages: the kernel's truncate_setsize()."""
        if not isinstance(npages, int) or isinstance(npages, bool) or npages < 0:
            raise InvalidArgument(f"npages must be a non-negative int, not {npages!r}")
        fd = self._fdck()
        self.kernel._bump()
        with self.kernel._on_cpu():
            os.ftruncate(fd, npages * PAGE_SIZE)


class LiveProcess:
    """A modelled process that is a real process (a C worker).

    Attributes
    ----------
    pid : int
        The real pid.
    name : str
    last_faults : list of int
        Minor faults the first access to each page took in the last
        ``read``/``write`` (getrusage(RUSAGE_THREAD) around that access):
        0 means the PTE allowed the access, 1 means a fault ran (not
        present, or write-protected for a store).
    """

    def __init__(self, kernel, ch, name, parent_pid):
        self.kernel = kernel
        self._ch = ch
        self.pid = ch.pid
        self.name = name
        self.parent_pid = parent_pid
        self.last_faults = []
        self._stored = {}            # page -> (epoch, pfn) after our last store there
        self._exited = False

    def __repr__(self):
        return f"<LiveProcess {self.pid} {self.name}{'' if self.alive else ' (gone)'}>"

    @property
    def alive(self):
        """The process has not exited (and its worker is still running)."""
        return not self._exited and not self._ch.broken and self._ch.alive()

    # -- plumbing --------------------------------------------------------------
    def _call(self, op, a=(), payload=b"", fds=(), what=None):
        k = self.kernel
        k._proc(self)
        for x in a:
            if not 0 <= x < 1 << 64:    # the channel would pass it modulo 2**64: another address or length
                raise InvalidArgument(f"{what or op.lower()}: {x:#x} does not fit in a 64-bit system call argument")
        rep = self._ch.call(op, a, payload, fds)
        if rep.status == 1:
            raise KernelError(errname(rep.err), f"{what or op.lower()}: {os.strerror(rep.err)}")
        if rep.status == 2:
            cls = _SIGNALS.get(rep.err)
            msg = f"{what or op.lower()} faulted at {rep.r[0]:#x} (caught in worker {self.pid}, which lives on)"
            if cls is None:
                raise KernelError("EFAULT", msg + f"; signal {rep.err}")
            raise cls(msg, rep.r[0])
        return rep

    # -- address space -----------------------------------------------------------
    def mmap(self, npages, prot="rw", shared=False, file=None, offset=0):
        """mmap(2) ``npages`` pages; returns the real start address.

        Parameters
        ----------
        npages : int
        prot : {"rw", "r", "none"}
        shared : bool
            MAP_SHARED (anonymous shared memory is shmem) or MAP_PRIVATE.
        file : LiveFile, optional
        offset : int
            File offset in pages.
        """
        if not isinstance(npages, int) or isinstance(npages, bool) or npages <= 0:
            raise InvalidArgument(f"npages must be a positive int, not {npages!r}")
        if prot not in PROT:
            raise InvalidArgument(f"prot must be one of {', '.join(map(repr, PROT))}, not {prot!r}")
        if file is not None and (not isinstance(file, LiveFile) or file.kernel is not self.kernel):
            raise InvalidArgument(f"file must be a LiveFile from this kernel's open(), not {file!r}")
        if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
            raise InvalidArgument(f"offset must be a non-negative number of pages, not {offset!r}")
        flags = (MAP_SHARED if shared else MAP_PRIVATE) | (0 if file else MAP_ANONYMOUS)
        fds = [file._fdck()] if file else []
        length = npages * PAGE_SIZE
        rep = self._call("MMAP", (length, PROT[prot], flags, offset * PAGE_SIZE if file else 0),
                         fds=fds, what="mmap")
        return rep.r[0]

    def munmap(self, addr, npages):
        """munmap(2) ``[addr, addr+npages)``."""
        check_range(addr, npages)
        self.kernel._bump()
        self._call("MUNMAP", (addr, npages * PAGE_SIZE), what="munmap")

    def mprotect(self, addr, npages, prot):
        """mprotect(2); ENOMEM on holes, as the kernel says."""
        check_range(addr, npages)
        if prot not in PROT:
            raise InvalidArgument(f"prot must be one of {', '.join(map(repr, PROT))}, not {prot!r}")
        self.kernel._bump()
        self._call("MPROTECT", (addr, npages * PAGE_SIZE, PROT[prot]), what="mprotect")

    def mremap(self, addr, old_npages, new_npages, maymove=False, fixed=None, dontunmap=False):
        """mremap(2): shrink, grow or move ``[addr, addr+old_npages)``; returns
        the real address of the mapping now.  The arguments are those of
        :meth:`mmkit.process.Process.mremap`; a wrong type or a negative
        value raises InvalidArgument here, every other refusal is the real
        kernel's errno."""
        try:
            flags = check_mremap_args(addr, old_npages, new_npages, maymove, fixed, dontunmap)
        except KernelError:             # well-typed: let the kernel say it
            flags = (1 if maymove else 0) | (2 if fixed is not None else 0) | (4 if dontunmap else 0)
        self.kernel._bump()
        rep = self._call("MREMAP", (addr, old_npages * PAGE_SIZE, new_npages * PAGE_SIZE, fixed or 0),
                         payload=flags.to_bytes(8, "little"), what="mremap")
        if rep.r[0] != addr:
            self.kernel._moves.append((addr, addr + old_npages * PAGE_SIZE, rep.r[0]))
        return rep.r[0]

    def madvise(self, addr, npages, advice):
        """madvise(2): ``"dontneed"``, ``"dontfork"``, ``"dofork"``,
        ``"wipeonfork"``, ``"keeponfork"``, ``"hugepage"``, ``"nohugepage"``
        (MADV_HUGEPAGE / MADV_NOHUGEPAGE: VM_HUGEPAGE / VM_NOHUGEPAGE on the
        VMA, which policy ``madvise`` and khugepaged obey) and ``"collapse"``
        (MADV_COLLAPSE, v6.1+: collapse now, synchronously)."""
        check_range(addr, npages)
        if advice not in MADV:
            raise InvalidArgument(f"unknown advice {advice!r}; expected one of {', '.join(MADV)}")
        self.kernel._bump()
        self._call("MADVISE", (addr, npages * PAGE_SIZE, MADV[advice]), what=f"madvise({advice})")

    # -- access ------------------------------------------------------------------
    def read(self, addr, n):
        """Load ``n`` bytes at ``addr`` in the worker; returns bytes.

        Raises SIGSEGV / SIGBUS (caught in the worker, which survives).
        """
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise InvalidArgument(f"byte count must be a non-negative int, not {n!r}")
        if not isinstance(addr, int) or addr < 0:
            raise InvalidArgument(f"address must be a non-negative int, not {addr!r}")
        self.last_faults = []
        rep = self._call("READ", (addr, n), what="read")
        np = rep.r[0]
        self.last_faults = list(memoryview(rep.payload[n:]).cast("I"))[:np]
        self._log("read", addr, self.last_faults)
        return rep.payload[:n]

    def write(self, addr, data):
        """Store ``data`` at ``addr`` in the worker, one page at a time.

        Unlike the model, a store that faults part-way (SIGSEGV/SIGBUS) has
        already written the pages before the faulting one.
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise InvalidArgument(f"data must be bytes, not {type(data).__name__}")
        if not isinstance(addr, int) or addr < 0:
            raise InvalidArgument(f"address must be a non-negative int, not {addr!r}")
        data = bytes(data)
        self.last_faults = []
        rep = self._call("WRITE", (addr,), payload=data, what="write")
        self.last_faults = list(memoryview(rep.payload).cast("I"))
        self._log("write", addr, self.last_faults)
        self._note_stores(addr, len(data))

    def _log(self, kind, addr, faults):
        k = self.kernel
        first = addr & ~(PAGE_SIZE - 1)
        for i, f in enumerate(faults):
            k.access_log.append((k._epoch, self.pid, kind, first + i * PAGE_SIZE, f))

    def _note_stores(self, addr, n):
        if not n:
            return
        first = addr & ~(PAGE_SIZE - 1)
        for page in range(first, addr + n, PAGE_SIZE):
            raw = read_raw(self.pid, page)
            self._stored[page] = (self.kernel._epoch, raw.pfn)

    def store_faults(self, addr):
        """Probe writability the only way user space can: load the byte at
        ``addr``, store the same byte back, and return the minor faults the
        store took (0: the PTE was writable; 1: it was not, and the write
        fault ran -- COW, reuse or unshare-reuse, exactly as for any store).

        This changes the page as any store does (and the load first maps a
        page where none was).  The data stays the same.
        """
        if not isinstance(addr, int) or addr < 0:
            raise InvalidArgument(f"address must be a non-negative int, not {addr!r}")
        rep = self._call("STORE_FAULTS", (addr,), what="store")
        self._log("store", addr, [rep.r[0]])
        self._note_stores(addr, 1)
        return rep.r[0]

    # -- process life ---------------------------------------------------------------
    def fork(self, name=None):
        """fork(2) of this worker; the child is a new worker on its own socket.

        Returns
        -------
        LiveProcess
        """
        k = self.kernel
        k._proc(self)
        if name is not None and not isinstance(name, str):
            raise InvalidArgument(f"name must be a str, not {type(name).__name__}")
        k._bump()
        c = k._new_worker(self._ch, name, self.pid)
        if name is None:
            c.name = f"{self.name}-child{c.pid}"
        return c

    def exit(self):
        """exit(2): the worker exits (its mm is torn down before this returns:
        exit_mm() runs before the socket closes, and we wait for the pidfd).
        Pins taken through io_uring survive: the fork server holds the ring.
        """
        k = self.kernel
        k._proc(self)
        k._bump()
        try:
            self._ch.call("EXIT")
            if not self._ch.wait_exit(k.timeout):
                raise LiveWorkerError(f"worker {self.pid} did not exit within {k.timeout} s")
        finally:
            self._exited = True
            self._ch.close()
            k._state.workers.pop(self.pid, None)

    # -- GUP -------------------------------------------------------------------------
    def _pfns(self, addr, npages):
        return [read_raw(self.pid, addr + i * PAGE_SIZE).pfn for i in range(npages)]

    def pin(self, addr, npages=1, write=False, longterm=True, fast=False):
        """pin_user_pages() the way user space can (see :mod:`mmkit.live.holders`).

        * ``write=True, longterm=True``: io_uring IORING_REGISTER_BUFFERS.
        * ``write=False, longterm=False``: an O_DIRECT write(2) from the
          pages (a transient R/O pin; FAULT_FLAG_UNSHARE as for any R/O pin).
        * ``write=True, longterm=False``: an O_DIRECT read(2) into the pages
          of what they already hold (the worker loads them first, so a
          missing page is read-faulted before GUP's write fault).
        * ``write=False, longterm=True``: raises :class:`LiveUnsupported`.

        Returns
        -------
        LivePin
        """
        k = self.kernel
        k._proc(self)
        check_range(addr, npages)
        if not write and longterm:
            raise LiveUnsupported("no user-space interface takes a long-term read-only pin on this kernel "
                                  "(CONFIG_GUP_TEST=n, io_uring always pins R/W); use longterm=False "
                                  "(O_DIRECT write) or write=True (io_uring)")
        if write and longterm:
            ok, why = available("io_uring")
            if not ok:
                raise LiveUnsupported(f"a long-term writable pin needs io_uring fixed buffers: {why}")
        k._bump()
        if write and longterm:
            rep = self._call("URING_PIN", (addr, npages), what="io_uring register buffers")
            fd = rep.r[0]
            try:
                adopt = k._state.server.call("RING_ADOPT", (self.pid, fd, addr, npages * PAGE_SIZE),
                                             payload=rep.payload)
            finally:
                self._call("CLOSE_FD", (fd,))
            if adopt.status:
                raise KernelError(errname(adopt.err),
                                  f"fork server could not take over the io_uring ring: {os.strerror(adopt.err)}")
            return LivePin(k, self, addr, npages, self._pfns(addr, npages), "io_uring", True, True, fast,
                           ring=adopt.r[0])
        if k.fs_type not in _DISK_FS:
            raise LiveUnsupported(f"O_DIRECT pins need a disk file system; the temp dir is on {k.fs_type}")
        if not write:
            rep = self._call("DIO_WRITE", (addr, npages), what="O_DIRECT write")
            return LivePin(k, self, addr, npages, self._pfns(addr, npages), "O_DIRECT write", False, False, fast,
                           seen=rep.payload)
        rep = self._call("DIO_READ", (addr, npages), what="O_DIRECT read")
        return LivePin(k, self, addr, npages, self._pfns(addr, npages), "O_DIRECT read", True, False, fast,
                       seen=rep.payload)

    def get_user_pages(self, addr, npages=1, write=False):
        """FOLL_GET references: vmsplice(2) the whole pages into a pipe that is
        never read (``ref.read`` peeks with tee(2), ``ref.put`` closes it).

        Raises
        ------
        LiveUnsupported
            For ``write=True``: no user-space call holds FOLL_GET|FOLL_WRITE
            references beyond one system call.
        """
        k = self.kernel
        k._proc(self)
        check_range(addr, npages)
        if write:
            raise LiveUnsupported("no user-space interface keeps FOLL_GET|FOLL_WRITE references "
                                  "(vmsplice takes read-only FOLL_GET references)")
        rep = self._vmsplice(addr, npages * PAGE_SIZE)
        return LiveRef(k, self, addr, npages, self._pfns(addr, npages), rep.fds[0], npages * PAGE_SIZE)

    def _vmsplice(self, addr, n):
        """VMSPLICE into a pipe the worker grows to hold all ``n`` bytes
        (F_SETPIPE_SZ).  A pipe larger than /proc/sys/fs/pipe-max-size needs
        CAP_SYS_RESOURCE (fs/pipe.c: pipe_set_size() -> EPERM); without it
        the limit is raised for the lifetime of the LiveKernel and restored
        like the THP knobs (:class:`~mmkit.live.thp.ThpControl`)."""
        try:
            return self._call("VMSPLICE", (addr, n), what="vmsplice")
        except KernelError as e:
            if e.errno != "EPERM":
                raise
            path = "/proc/sys/fs/pipe-max-size"
            need = 1 << 16
            while need < n + PAGE_SIZE:         # the worker's pipe size (do_vmsplice())
                need <<= 1
            try:
                limit = int(open(path).read())
            except (OSError, ValueError):
                limit = None
            why = (f"vmsplice of {n} bytes needs a pipe of {need} bytes; {path} is {limit} and this process "
                   "lacks CAP_SYS_RESOURCE to exceed it (pipe_set_size(): EPERM)")
            if limit is None or need <= limit:
                raise LiveUnsupported(why) from e
            try:
                self.kernel.thp.write(path, str(need))
            except (LiveUnsupported, InvalidArgument, OSError) as e2:
                raise LiveUnsupported(f"{why}; raising it failed: {e2}") from e
            return self._call("VMSPLICE", (addr, n), what="vmsplice")

    def vmsplice(self, addr, n):
        """vmsplice(2) ``n`` bytes at ``addr`` into a new pipe (FOLL_GET
        references in its buffers).  The pipe's read end is held by this
        Python process, so it outlives the worker.

        Returns
        -------
        LivePipe
        """
        k = self.kernel
        k._proc(self)
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise InvalidArgument(f"byte count must be a non-negative int, not {n!r}")
        if not isinstance(addr, int) or addr < 0:
            raise InvalidArgument(f"address must be a non-negative int, not {addr!r}")
        if n == 0:
            raise InvalidArgument("vmsplice of 0 bytes")
        rep = self._vmsplice(addr, n)
        first = addr & ~(PAGE_SIZE - 1)
        npages = (addr + n - first + PAGE_SIZE - 1) // PAGE_SIZE
        return LivePipe(k, self, addr, npages, self._pfns(first, npages), rep.fds[0], n)
