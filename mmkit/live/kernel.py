"""LiveKernel: the scenario API of :class:`mmkit.Kernel`, on the running kernel.

Every modelled process is a real process: a small C worker (``worker.c``)
forked from a fork server and driven over a socket.  ``fork()`` is a real
fork of that worker, ``exit()`` ends it, and every observation is read from
/proc without touching the page (see :mod:`mmkit.live.observe`).

What the live kernel cannot show
--------------------------------
* ``refcount``, ``pincount`` and ``maybe_pinned`` are not exported to user
  space: :meth:`LiveKernel.page` reports them as ``None``.
* A PTE's write bit is not exported either.  ``writable`` is ``False`` when
  that is certain without a store (nothing mapped, the zero page, a KSM
  page, a page-cache page in a private mapping, a VMA without PROT_WRITE),
  ``True`` when this process stored to the page after the last operation
  that can write-protect a PTE (fork, exit, mprotect, madvise, munmap,
  pin/unpin, truncate, migrate) and the PFN is unchanged (anon and shmem
  pages only: writeback may write-protect a disk-file page at any time),
  and ``None`` otherwise.  A store would answer, but a store is a write
  fault that changes the page; it is available on purpose as
  :meth:`LiveProcess.store_faults`, and every ``read``/``write`` records
  the faults its first access to each page took in ``p.last_faults``.
* ``migrate()`` cannot choose a page: it triggers compaction and reports
  what moved.  Whether a page moves is not deterministic (see
  :meth:`LiveKernel.migrate`).
"""

import collections
import contextlib
import errno as _errno
import os
import platform
import shutil
import socket
import subprocess
import tempfile
import weakref
from dataclasses import dataclass, field

from ..errors import InvalidArgument, KernelError, SIGBUS, SIGSEGV
from ..mm import check_range
from ..pageinfo import PAGE_SIZE, PageInfo
from ._build import worker_binary
from ._chan import Channel, LiveWorkerError
from .availability import LiveUnavailable, require
from .holders import LivePin, LivePipe, LiveRef, LiveUnsupported
from .observe import read_raw, vma_at

__all__ = ["LiveKernel", "LiveProcess", "LiveFile", "LiveMigrateResult"]

PROT = {"none": 0, "r": 1, "rw": 3}
MAP_SHARED, MAP_PRIVATE, MAP_ANONYMOUS = 0x01, 0x02, 0x20
MADV = {"dontneed": 4, "dontfork": 10, "dofork": 11, "wipeonfork": 18, "keeponfork": 19}
_SIGNALS = {7: SIGBUS, 11: SIGSEGV}
_DISK_FS = ("ext4", "ext3", "ext2", "xfs", "btrfs", "f2fs")


def _errname(e):
    return _errno.errorcode.get(e, f"E{e}")


@dataclass
class LiveMigrateResult:
    """What compaction did to the pages asked about.

    Attributes
    ----------
    migrated, failed : int
        Pages whose PFN changed / did not change (or were not mapped).
    reasons : dict
        address -> ``"migrated: pfn X -> Y (compaction)"``, ``"not moved:
        ..."`` or ``"ENOENT: no page mapped"``.
    rmap_steps : None
        Not observable on the live kernel.
    deterministic : bool
        Always False: compaction chooses what it moves.
    """

    migrated: int = 0
    failed: int = 0
    reasons: dict = field(default_factory=dict)
    rmap_steps: object = None
    deterministic: bool = False


class _State:
    """Everything that must be released, kept apart from the LiveKernel so
    that the finaliser can run without it."""

    def __init__(self):
        self.server = None          # Channel to the fork server
        self.popen = None
        self.workers = {}           # pid -> Channel
        self.fds = set()            # files and pipe ends we hold
        self.tmpdir = None
        self.closed = False

    def shutdown(self):
        """Kill every worker, stop the fork server, close every fd, remove
        the temp dir.  Idempotent; never raises."""
        if self.closed:
            return
        self.closed = True
        for ch in list(self.workers.values()):
            with contextlib.suppress(Exception):
                ch.kill()
        for ch in list(self.workers.values()):
            with contextlib.suppress(Exception):
                ch.close(timeout=2.0)
        self.workers.clear()
        if self.server is not None:
            with contextlib.suppress(Exception):
                self.server.close(timeout=2.0)
        if self.popen is not None:
            with contextlib.suppress(Exception):
                self.popen.wait(timeout=2.0)
            if self.popen.poll() is None:
                with contextlib.suppress(Exception):
                    self.popen.kill()
                    self.popen.wait(timeout=2.0)
        for fd in list(self.fds):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.fds.clear()
        if self.tmpdir:
            shutil.rmtree(self.tmpdir, ignore_errors=True)


def _fs_type(path):
    """File system type of the mount holding ``path`` (from mountinfo)."""
    path = os.path.realpath(path)
    best, fstype = "", None
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, right = line.split(" - ", 1)
            mnt = left.split()[4]
            if (path == mnt or path.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best):
                best, fstype = mnt, right.split()[0]
    return fstype


class LiveKernel:
    """The running kernel, behind the API of :class:`mmkit.Kernel`.

    Parameters
    ----------
    era : str, optional
        Ignored apart from being recorded: the era is the running kernel
        (``self.era`` is its release string).
    cpu : int, optional
        The CPU every worker is pinned to (sched_setaffinity), default the
        last CPU this process may run on.  One CPU makes reuse-versus-copy
        deterministic: per-CPU LRU batches hold page references otherwise.
    timeout : float
        Seconds any single worker request may take (default 10).
    tmpdir : str, optional
        Where the temp dir for files and the O_DIRECT target go; must be on
        a disk file system (ext4...) for O_DIRECT pins.  Default ``/tmp``.

    Raises
    ------
    LiveUnavailable
        Not Linux, not root, /proc/kpageflags unreadable, io_uring disabled
        or no compiler; the message says how to fix it.

    Examples
    --------
    >>> with LiveKernel() as k:                      # doctest: +SKIP
    ...     p = k.spawn("parent"); a = p.mmap(1); p.write(a, b"hi")
    ...     c = p.fork("child")
    ...     k.page(p, a).mapcount, k.page(p, a).exclusive
    (2, False)

    Notes
    -----
    Nothing outlives the object: :meth:`close` (also the context manager and
    a finaliser run on garbage collection or interpreter exit) kills every
    worker, stops the fork server, closes every file and pipe, and removes
    the temp dir.  Files are O_TMPFILE/memfd, so they never have a name.
    """

    PAGE_SIZE = PAGE_SIZE

    def __init__(self, era=None, cpu=None, timeout=10.0, tmpdir=None):
        require()
        self.requested_era = era
        self.era = platform.release()
        self.timeout = float(timeout)
        allowed = sorted(os.sched_getaffinity(0))
        self.cpu = allowed[-1] if cpu is None else int(cpu)
        if self.cpu not in allowed:
            raise InvalidArgument(f"cpu {cpu} is not one this process may run on ({allowed})")
        base = tmpdir or "/tmp"
        self.fs_type = _fs_type(base)
        self._state = st = _State()
        self._finalizer = weakref.finalize(self, st.shutdown)
        self._epoch = 0
        #: (epoch, pid, kind, page, faults) for the first access to each page
        #: of every read / write / store_faults, in order (see conformance)
        self.access_log = collections.deque(maxlen=100000)
        self._files = {}
        self._procs = []
        try:
            st.tmpdir = tempfile.mkdtemp(prefix="mmkit-live-", dir=base)
            binary = worker_binary()
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                # a session of its own: a terminal's ^C goes to Python, which
                # then cleans up, not straight to the workers
                st.popen = subprocess.Popen(
                    [binary, "serve", str(theirs.fileno()), st.tmpdir, str(self.cpu)],
                    pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL, start_new_session=True)
            finally:
                theirs.close()
            st.server = Channel(ours, st.popen.pid, self.timeout)
            if st.server.call("PING").r[0] != st.popen.pid:
                raise LiveUnavailable("the fork server answered with the wrong pid")
        except BaseException:
            self.close()
            raise

    # -- life -------------------------------------------------------------------
    def close(self):
        """Kill every worker and release everything (idempotent)."""
        self._finalizer()

    @property
    def closed(self):
        return self._state.closed

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __repr__(self):
        n = sum(p.alive for p in self._procs)
        return f"<LiveKernel {self.era} cpu {self.cpu}: {n} process(es){' (closed)' if self.closed else ''}>"

    @property
    def worker_pids(self):
        """Pids of the fork server and every worker still running (for tests)."""
        st = self._state
        pids = [ch.pid for ch in st.workers.values() if ch.alive()]
        if st.server is not None and st.server.alive():
            pids.insert(0, st.server.pid)
        return pids

    # -- internals --------------------------------------------------------------
    def _live(self):
        if self._state.closed:
            raise InvalidArgument("this LiveKernel is closed")

    def _bump(self):
        """An operation that may write-protect PTEs: forget known-writable pages."""
        self._epoch += 1

    def _server_call(self, op, a=(), payload=b"", fds=()):
        self._live()
        rep = self._state.server.call(op, a, payload, fds)
        if rep.status == 1:
            raise KernelError(_errname(rep.err), f"{op}: {os.strerror(rep.err)}")
        return rep

    def _new_worker(self, ch_parent, name, parent_pid=None):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            rep = ch_parent.call("FORK", fds=[theirs.fileno()])
        finally:
            theirs.close()
        if rep.status:
            ours.close()
            raise KernelError(_errname(rep.err), f"fork(): {os.strerror(rep.err)}")
        pid = rep.r[0]
        ch = Channel(ours, pid, self.timeout)
        self._state.workers[pid] = ch
        if ch.call("PING").r[0] != pid:
            ch.kill()
            raise LiveWorkerError(f"forked worker {pid} answered with the wrong pid")
        p = LiveProcess(self, ch, name, parent_pid)
        self._procs.append(p)
        return p

    @contextlib.contextmanager
    def _on_cpu(self):
        """Run a file operation of this (Python) thread on the workers' CPU,
        so that its page-cache pages sit in the same per-CPU batches."""
        old = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {self.cpu})
        try:
            yield
        finally:
            os.sched_setaffinity(0, old)

    def _proc(self, proc, alive=True):
        if not isinstance(proc, LiveProcess) or proc.kernel is not self:
            raise InvalidArgument(f"expected a process of this kernel, not {proc!r}")
        self._live()
        if alive and not proc.alive:
            raise InvalidArgument(f"process {proc.name!r} has exited")
        return proc

    # -- processes and files ------------------------------------------------------
    def spawn(self, name=None):
        """A new process with an empty address space: the fork server forks a
        fresh worker (which maps nothing of the model's yet).

        Returns
        -------
        LiveProcess
        """
        self._live()
        if name is not None and not isinstance(name, str):
            raise InvalidArgument(f"name must be a str, not {type(name).__name__}")
        p = self._new_worker(self._state.server, name, None)
        if name is None:
            p.name = f"P{p.pid}"
        return p

    def open(self, name, npages=1, shmem=False):
        """Open (creating if needed) the file ``name`` of ``npages`` pages.

        ``shmem=False``: an O_TMPFILE on the temp dir's disk file system
        (ext4 here); ``shmem=True``: a memfd.  Neither has a name on disk.
        Opening an existing name returns the same file and ignores ``npages``.
        """
        self._live()
        if not isinstance(name, str) or not name:
            raise InvalidArgument("file name must be a non-empty str")
        if not isinstance(npages, int) or isinstance(npages, bool) or npages < 0:
            raise InvalidArgument(f"npages must be a non-negative int, not {npages!r}")
        if name in self._files:
            return self._files[name]
        if shmem:
            fd = os.memfd_create(name, os.MFD_CLOEXEC)
        else:
            fd = os.open(self._state.tmpdir, os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, 0o600)
        self._state.fds.add(fd)
        f = LiveFile(self, name, fd, bool(shmem))
        with self._on_cpu():
            os.ftruncate(fd, npages * PAGE_SIZE)
        self._files[name] = f
        return f

    @property
    def processes(self):
        """The live processes, in creation order."""
        return [p for p in self._procs if p.alive]

    # -- observation ---------------------------------------------------------------
    def raw(self, proc, addr):
        """The raw /proc view of one page (:class:`~mmkit.live.observe.RawPage`):
        pagemap bits, kpagecount, kpageflags and their names."""
        self._proc(proc)
        return read_raw(proc.pid, addr & ~(PAGE_SIZE - 1))

    def page(self, proc, addr):
        """What the page table of ``proc`` says about the page at ``addr``,
        read from /proc without touching the page.

        Returns
        -------
        PageInfo
            ``refcount``, ``pincount`` and ``maybe_pinned`` are always
            ``None`` (not exported to user space); ``writable`` may be
            ``None`` (see the module docstring); ``mapcount`` is
            /proc/kpagecount, ``exclusive`` is kpageflags bit 34 on an anon
            page, ``in_page_cache`` a present page that is neither anon nor
            the zero page.
        """
        self._proc(proc)
        if not isinstance(addr, int) or addr < 0:
            raise InvalidArgument(f"address must be a non-negative int, not {addr!r}")
        base = addr & ~(PAGE_SIZE - 1)
        raw = read_raw(proc.pid, base)
        if not raw.present:
            return PageInfo(present=False, writable=False, refcount=None, pincount=None, maybe_pinned=None)
        anon = raw.has("ANON")
        zero = raw.has("ZERO_PAGE")
        return PageInfo(pfn=raw.pfn, present=True, writable=self._writable(proc, base, raw, anon, zero),
                        anon=anon, zero_page=zero, exclusive=anon and raw.has("ANON_EXCLUSIVE"),
                        mapcount=raw.mapcount, refcount=None, pincount=None, maybe_pinned=None,
                        in_page_cache=not anon and not zero)

    def _writable(self, proc, base, raw, anon, zero):
        if zero or raw.has("KSM"):
            return False
        vma = vma_at(proc.pid, base)
        if vma is None or vma[2][1] != "w":
            return False
        if vma[2][3] == "p" and not anon:
            return False                    # a page-cache page in a COW mapping
        if proc._stored.get(base) == (self._epoch, raw.pfn) and raw.has("SWAPBACKED"):
            return True
        return None

    # -- migration -------------------------------------------------------------------
    def migrate(self, proc, addr, npages=1, attempts=1):
        """Ask the kernel to migrate pages: trigger compaction and report what moved.

        Linux offers no deterministic way to migrate one chosen page from
        user space on a one-node machine (move_pages() to the same node is a
        no-op; MADV_SOFT_OFFLINE needs CONFIG_MEMORY_FAILURE).  This writes
        ``/proc/sys/vm/compact_memory`` (global, harmless) up to ``attempts``
        times and compares PFNs before and after.

        Returns
        -------
        LiveMigrateResult
            ``deterministic`` is False: an unpinned page may or may not move.
            What *is* deterministic: a pinned page never moves, and a page
            that moves keeps its contents, mapcount and exclusivity, with
            fork-shared pages landing on the same new PFN in both processes.
        """
        self._proc(proc)
        check_range(addr, npages)
        self._bump()
        addrs = [addr + i * PAGE_SIZE for i in range(npages)]
        before = {a: read_raw(proc.pid, a) for a in addrs}
        res = LiveMigrateResult()
        todo = [a for a in addrs if before[a].present]
        for a in addrs:
            if not before[a].present:
                res.failed += 1
                res.reasons[a] = "ENOENT: no page mapped"
        after = {}
        for _ in range(max(1, attempts)):
            with open("/proc/sys/vm/compact_memory", "w") as f:
                f.write("1")
            after = {a: read_raw(proc.pid, a) for a in todo}
            if all(after[a].pfn != before[a].pfn for a in todo):
                break
        for a in todo:
            if after[a].pfn != before[a].pfn:
                res.migrated += 1
                res.reasons[a] = f"migrated: pfn {before[a].pfn} -> {after[a].pfn} (compaction)"
            else:
                res.failed += 1
                res.reasons[a] = ("not moved: compaction chose not to (pinned pages never move; "
                                  "unpinned ones only sometimes)")
        return res


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
        rep = self._ch.call(op, a, payload, fds)
        if rep.status == 1:
            raise KernelError(_errname(rep.err), f"{what or op.lower()}: {os.strerror(rep.err)}")
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
        rep = self._call("MMAP", (npages * PAGE_SIZE, PROT[prot], flags, offset * PAGE_SIZE if file else 0),
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

    def madvise(self, addr, npages, advice):
        """madvise(2): ``"dontneed"``, ``"dontfork"``, ``"dofork"``,
        ``"wipeonfork"``, ``"keeponfork"``."""
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
        """Probe writability the only way user space can: store the byte that
        is already at ``addr`` and return the minor faults the store took
        (0: the PTE was writable; 1: it was not, and the write fault ran --
        COW, reuse or first touch, exactly as for any store).
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
                raise KernelError(_errname(adopt.err),
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
        rep = self._call("VMSPLICE", (addr, npages * PAGE_SIZE), what="vmsplice")
        return LiveRef(k, self, addr, npages, self._pfns(addr, npages), rep.fds[0], npages * PAGE_SIZE)

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
        rep = self._call("VMSPLICE", (addr, n), what="vmsplice")
        first = addr & ~(PAGE_SIZE - 1)
        npages = (addr + n - first + PAGE_SIZE - 1) // PAGE_SIZE
        return LivePipe(k, self, addr, npages, self._pfns(first, npages), rep.fds[0], n)
