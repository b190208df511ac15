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
  that can write-protect a PTE (fork, exit, mprotect, madvise, munmap, mremap,
  pin/unpin, truncate, migrate) and the PFN is unchanged (anon and shmem
  pages only: writeback may write-protect a disk-file page at any time),
  and ``None`` otherwise.  A store would answer, but a store is a write
  fault that changes the page; it is available on purpose as
  :meth:`LiveProcess.store_faults`, and every ``read``/``write`` records
  the faults its first access to each page took in ``p.last_faults``.
* ``migrate()`` cannot choose a page: it triggers compaction and reports
  what moved.  Whether a page moves is not deterministic (see
  :meth:`LiveKernel.migrate`).

Known differences from the model
--------------------------------
* Fault-around: a read fault on a file mapping also maps the neighbouring
  pages already in the page cache (do_fault_around(), up to
  fault_around_bytes = 64 KiB); the model maps the faulting page only.
* A store that faults part-way (SIGSEGV/SIGBUS on a later page) has
  already written the earlier pages; the model checks every page first.
* ext4 caches files in large folios; kpagecount is still per page.
* Anonymous private mappings whose length is a multiple of 2 MiB start on
  a 2 MiB boundary (the kernel's own placement: v6.8's efa7df3e3bb5 aligned
  every anonymous mapping of >= 2 MiB, and since v6.12 d4148aeab412 "mm,
  mmap: limit THP alignment of anonymous mappings to PMD-aligned sizes"
  only those), as in the model.  Other mappings go where the kernel puts
  them (top-down, 4 KiB aligned), while the model places mappings
  bottom-up from a 2 MiB boundary: a small mapping the model happens to
  align for an mTHP may not be aligned here (and then gets 4 KiB pages).

Large folios (see :mod:`mmkit.live.thp`)
------------------------------------------
``k.page()`` reports ``order``, ``nr_pages`` and ``head`` from kpageflags
(COMPOUND_HEAD/TAIL, walking to the head), ``pmd_mapped`` from the
PAGEMAP_SCAN ioctl (PAGE_IS_HUGE); ``head`` is False for a small folio
(not compound), as PageHead().  ``exclusive`` is kpageflags bit 34, which
stable_page_flags() reads from the *folio's* (head page's) flags: exact for
a small folio and for the head page of a large one.  For a tail page it is
``None``: the tail's own PG_anon_exclusive cannot be read.  For a tail of
a PTE-mapped folio :meth:`LiveKernel.probe_exclusive` measures it by a
store after an mprotect R/O -> R/W round trip (which changes state, so it
is the last step of a scenario).  A PMD mapping keeps PageAnonExclusive on
the head page only (mm/rmap.c: __folio_add_anon_rmap(), RMAP_LEVEL_PMD),
so the tails' bits are not consulted while PMD-mapped and no store can
tell them (the probe would split the PMD and copy the head's bit into
every PTE, __split_huge_pmd_locked()): they stay ``None``.

``large_mapcount``, ``entire_mapcount`` and ``nr_pages_mapped`` of an
anon large folio are counted in the page tables of this kernel's workers
(the only processes that can map it) and checked against kpagecount, which
is each page's own mapcount plus the entire mapcount
(:func:`mmkit.live.thp.folio_census`); ``None`` for a small folio, a
page-cache folio (other processes may map it) or when the check fails.
Not exported at all, so always ``None``: ``folio_pincount``,
``maybe_mapped_shared`` and ``mm_ids`` (struct folio fields that no /proc
or sysfs file shows; pagemap bit 56 is the per-page mapcount == 1 with
CONFIG_PAGE_MAPCOUNT=y, not folio_maybe_mapped_shared()).
"""

import collections
import contextlib
import dataclasses
import os
import platform
import shutil
import socket
import subprocess
import tempfile
import weakref
from dataclasses import dataclass, field

from ..errors import InvalidArgument, KernelError
from ..mm import check_range
from ..pageinfo import PAGE_SIZE, PageInfo
from ._build import worker_binary
from ._chan import Channel, LiveWorkerError
from .availability import LiveUnavailable, require
from .holders import LiveUnsupported
from .observe import read_raw, vma_at
from .process import LiveFile, LiveProcess, errname
from .thp import ThpControl, folio_census, folio_geometry, khugepaged_collapsed, pmd_mapped, thp_available

__all__ = ["LiveKernel", "LiveMigrateResult", "LivePageInfo", "MIGRATE_REASONS"]

#: The large-folio fields of k.page() and their value where the page is not
#: present.  Where the model's PageInfo lacks one (the model side of large
#: folios may land later), LivePageInfo adds it.
_LARGE_FIELDS = dict(order=None, nr_pages=None, head=None, pmd_mapped=None, large_mapcount=None,
                     entire_mapcount=None, nr_pages_mapped=None, folio_pincount=None,
                     maybe_mapped_shared=None, mm_ids=None)
_have = {f.name for f in dataclasses.fields(PageInfo)}
if all(n in _have for n in _LARGE_FIELDS):
    LivePageInfo = PageInfo
else:
    LivePageInfo = dataclasses.make_dataclass(
        "LivePageInfo", [(n, object, dataclasses.field(default=v)) for n, v in _LARGE_FIELDS.items()
                         if n not in _have],
        bases=(PageInfo,), frozen=True, namespace={"__doc__": PageInfo.__doc__, "__module__": __name__})

#: Kernel.migrate()'s callers the live kernel refuses, and why (None: performed).
MIGRATE_REASONS = {
    "compaction": None,
    "move_pages_all": "move_pages",
    "move_pages": "move_pages",
    "offline": ("memory offlining is global (a whole memory block, echo offline > "
                "/sys/devices/system/memory/memoryN/state), takes every page of that block and fails "
                "with EBUSY on most blocks; the live backend does not offline memory"),
}


def _numa_nodes():
    try:
        return sum(1 for d in os.listdir("/sys/devices/system/node") if d.startswith("node") and d[4:].isdigit())
    except OSError:
        return 1


def _move_pages_refusal():
    n = _numa_nodes()
    if n <= 1:
        return ("move_pages(2) can only target the node a page is already on here (one NUMA node), and "
                "add_folio_for_migration() leaves a page that is on the target node alone, so nothing "
                "would migrate; use reason='compaction'")
    return (f"the live backend does not implement move_pages(2) between this machine's {n} NUMA nodes; "
            "use reason='compaction'")


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
        self.thp = None             # ThpControl: restored first
        self.closed = False

    def shutdown(self):
        """Restore every THP sysfs value changed, kill every worker, stop
        the fork server, close every fd, remove the temp dir.  Idempotent;
        never raises."""
        if self.closed:
            return
        self.closed = True
        if self.thp is not None:
            with contextlib.suppress(Exception):
                self.thp.restore()
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
    thp : dict, optional
        THP policy applied at start, e.g. ``{"64kB": "always"}`` or
        ``{"enabled": "madvise", "2048kB": "inherit"}`` (see :attr:`thp`);
        every value changed is restored when this kernel closes.

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

    def __init__(self, era=None, cpu=None, timeout=10.0, tmpdir=None, thp=None):
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
        self._moves = []             # (old_start, old_end, new_start) of every mremap() that moved
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
            if thp is not None:
                self.thp.apply(thp)
        except BaseException:
            self.close()
            raise

    # -- THP policy ----------------------------------------------------------------
    @property
    def thp(self):
        """The THP policy (:class:`~mmkit.live.thp.ThpControl`): ``enabled``,
        ``sizes``, ``get(size)``, ``set(size, value)``; every change is
        restored on :meth:`close`, at interpreter exit, on SIGTERM and, if
        Python is killed outright, by the fork server.

        Raises
        ------
        LiveUnsupported
            The kernel has no THP sysfs (no CONFIG_TRANSPARENT_HUGEPAGE).
        """
        st = self._state
        if st.thp is None:
            ok, why = thp_available()
            if not ok:
                raise LiveUnsupported(why)
            self._live()
            st.thp = ThpControl(restore_file=os.path.join(st.tmpdir, "thp-restore"))
        return st.thp

    def shrink_deferred_split(self):
        """Run the deferred-split shrinker as the model's
        :meth:`mmkit.Kernel.shrink_deferred_split` does: ``echo 2 >
        /proc/sys/vm/drop_caches`` (drop_slab() runs every shrinker until
        they free little, deferred_split_scan() among them; live-kernel.md
        saw it split partially unmapped THPs).  This is global: it also
        drops the machine's dentry and inode caches.

        Returns
        -------
        (int, int)
            THPs split (the sum over sizes of ``hugepages-<size>/stats/split``
            before and after) and anon THPs still partially mapped on the
            deferred split queue (``stats/nr_anon_partially_mapped``).  Both
            are machine-wide counters: another process's THPs count too.

        Raises
        ------
        LiveUnsupported
            Without THP, or a kernel older than v6.12 (no per-size stats).
        """
        self._live()
        sizes = self.thp.sizes
        stats = os.path.join(self.thp.root, "hugepages-{}", "stats", "{}")

        def total(name):
            try:
                return sum(int(open(stats.format(sz, name)).read()) for sz in sizes)
            except OSError as e:
                raise LiveUnsupported(f"no per-size THP stats ({e.filename}): needs Linux 6.12+") from e
        before = total("split")
        self._bump()
        with self._on_cpu():
            with open("/proc/sys/vm/drop_caches", "w") as f:
                f.write("2")
        return total("split") - before, total("nr_anon_partially_mapped")

    def khugepaged_collapsed(self):
        """khugepaged's global pages_collapsed counter (None without THP):
        read it before and after a step to detect a background collapse."""
        return khugepaged_collapsed()

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
            raise KernelError(errname(rep.err), f"{op}: {os.strerror(rep.err)}")
        return rep

    def _new_worker(self, ch_parent, name, parent_pid=None):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            rep = ch_parent.call("FORK", fds=[theirs.fileno()])
        finally:
            theirs.close()
        if rep.status:
            ours.close()
            raise KernelError(errname(rep.err), f"fork(): {os.strerror(rep.err)}")
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

            Large folios: ``order`` / ``nr_pages`` / ``head`` from
            kpageflags COMPOUND_HEAD/TAIL (``head`` False for a small
            folio), ``pmd_mapped`` from PAGEMAP_SCAN; ``exclusive`` is
            ``None`` on a tail page (bit 34 is the head's; see
            :meth:`probe_exclusive`); ``large_mapcount``,
            ``entire_mapcount`` and ``nr_pages_mapped`` of an anon large
            folio are counted in the workers' page tables (see the module
            docstring); ``folio_pincount``, ``maybe_mapped_shared`` and
            ``mm_ids`` are always ``None`` (struct folio fields no /proc
            file exports).
        """
        self._proc(proc)
        if not isinstance(addr, int) or addr < 0:
            raise InvalidArgument(f"address must be a non-negative int, not {addr!r}")
        base = addr & ~(PAGE_SIZE - 1)
        raw = read_raw(proc.pid, base)
        if not raw.present:
            return LivePageInfo(present=False, writable=False, refcount=None, pincount=None, maybe_pinned=None,
                                **_LARGE_FIELDS)
        anon = raw.has("ANON")
        zero = raw.has("ZERO_PAGE")
        head_pfn, nr = folio_geometry(raw.pfn, raw.flags)
        large = nr is not None and nr > 1
        pmd = pmd_mapped(proc.pid, base) if large else False
        is_head = (large and head_pfn == raw.pfn) if head_pfn is not None else None
        ae = anon and raw.has("ANON_EXCLUSIVE")
        if anon and large and not is_head:
            ae = None               # bit 34 of a tail reads the head's flags (see the module docstring)
        census = None
        if anon and large and not zero:
            census = folio_census([p.pid for p in self.processes], base - (raw.pfn - head_pfn) * PAGE_SIZE,
                                  head_pfn, nr, self._moves)
        large_mapcount, entire, nr_mapped = census or (None, None, None)
        return LivePageInfo(pfn=raw.pfn, present=True, writable=self._writable(proc, base, raw, anon, zero),
                            anon=anon, zero_page=zero, exclusive=ae,
                            mapcount=raw.mapcount, refcount=None, pincount=None, maybe_pinned=None,
                            in_page_cache=not anon and not zero,
                            **dict(_LARGE_FIELDS, order=(nr.bit_length() - 1) if nr else None, nr_pages=nr,
                                   head=is_head, pmd_mapped=pmd, large_mapcount=large_mapcount,
                                   entire_mapcount=entire, nr_pages_mapped=nr_mapped))

    def probe_exclusive(self, proc, addr, npages=1):
        """PageAnonExclusive of each page, measured the one way user space
        can for a subpage of a PTE-mapped large folio: mprotect(PROT_READ)
        then mprotect(PROT_READ|PROT_WRITE) of the range, then one store per
        page.  mprotect() makes a private anon PTE writable again only for
        a PageAnonExclusive page (mm/mprotect.c: change_pte_range() ->
        can_change_pte_writable(); change_huge_pmd() for a PMD), so the
        store takes 0 faults on an exclusive page and 1 on a shared one.

        This CHANGES STATE: the mprotect() of part of a PMD-mapped THP
        splits the PMD, and the store on a non-exclusive page runs the
        write fault (COW or reuse).  Use it as a scenario's last step.

        Returns
        -------
        list of bool or None
            One per page; None where no anon page was mapped, and for a
            tail page of a PMD-mapped THP (whose own bit the kernel does not
            consult; the mprotect would split the PMD and copy the head's
            bit into every PTE).  The whole range is left untouched when
            every page is such a page.
        """
        self._proc(proc)
        check_range(addr, npages)
        pages = [addr + i * PAGE_SIZE for i in range(npages)]
        present = [read_raw(proc.pid, a) for a in pages]
        probe = []
        for a, raw in zip(pages, present):
            ok = raw.present and raw.has("ANON")
            if ok and raw.has("COMPOUND_TAIL") and pmd_mapped(proc.pid, a):
                ok = False
            probe.append(ok)
        if not any(probe):
            return [None] * npages
        proc.mprotect(addr, npages, "r")
        proc.mprotect(addr, npages, "rw")
        return [proc.store_faults(a) == 0 if ok else None for a, ok in zip(pages, probe)]

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
    def migrate(self, proc, addr, npages=1, reason="compaction", attempts=1):
        """Ask the kernel to migrate pages: trigger compaction and report what moved.

        ``reason`` is the caller of :meth:`mmkit.Kernel.migrate`; the live
        kernel performs only ``"compaction"`` (its default, unlike the
        model's ``"move_pages_all"``): ``"move_pages"`` and
        ``"move_pages_all"`` raise :class:`LiveUnsupported` (on a one-node
        machine move_pages() cannot move a page; between nodes it is not
        implemented), ``"offline"`` always does (see :data:`MIGRATE_REASONS`).

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
        if not isinstance(reason, str) or reason not in MIGRATE_REASONS:
            raise InvalidArgument(f"reason must be one of {', '.join(MIGRATE_REASONS)}, not {reason!r}")
        why = MIGRATE_REASONS[reason]
        if why is not None:
            raise LiveUnsupported(f"migrate(reason={reason!r}): "
                                  f"{_move_pages_refusal() if why == 'move_pages' else why}")
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
