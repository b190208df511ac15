"""Kernel: the model's whole world, and the entry point of the API.

A :class:`Kernel` owns the physical pages, the processes, the files, the
pins and pipes, the era and the trace.  Everything mutable lives in a few
attributes that :meth:`Kernel.snapshot` deep-copies at once, so a widget
can step back exactly; the handles users hold (:class:`~mmkit.process.Process`,
:class:`~mmkit.process.Pin`...) are only ids and keep working after a
restore.

Examples
--------
>>> from mmkit import Kernel
>>> k = Kernel()
>>> p = k.spawn("parent")
>>> a = p.mmap(1)
>>> p.write(a, b"hello")
>>> c = p.fork("child")
>>> k.page(p, a).mapcount, k.page(p, a).exclusive
(2, False)
>>> c.write(a, b"child")
>>> k.page(c, a).pfn != k.page(p, a).pfn
True
>>> p.read(a, 5)
b'hello'
"""

import copy

from .era import era as _era
from .errors import InvalidArgument
from .filemap import File
from .folio import Folio, LargeFolio, ZeroFolio, folio_maybe_dma_pinned
from .thp import ThpPolicy
from .invariants import check_folio, check_kernel, check_pte
from .migrate import migrate_pages
from .mm import check_range
from .pageinfo import PAGE_SIZE, PageInfo
from .rmap import AnonVma
from .trace import Trace

__all__ = ["Kernel", "Task", "Holder", "Snapshot", "ZERO_PFN"]

#: The model's pfn for the shared zero page (a constant, as on a real machine).
ZERO_PFN = 1
_MMAP_BASE = 0x7f0000000000
_STATE = ("tasks", "files", "holders", "zero_page", "nr_folios", "walk_steps", "_next_pfn", "_next_id",
          "_next_pid", "_next_holder")


class Task:
    """A process as the kernel sees it (task_struct + its mm)."""

    def __init__(self, pid, name, mm):
        self.pid = pid
        self.name = name
        self.mm = mm
        self.alive = True

    def __repr__(self):
        return f"<Task {self.pid} {self.name}{'' if self.alive else ' (exited)'}>"


class Holder:
    """Someone outside the page tables holding pages: a device's pin
    (FOLL_PIN), a driver's reference (FOLL_GET), or a pipe's buffers
    (vmsplice).  ``buffers`` is a list of ``[folio, offset, length]``."""

    def __init__(self, id, kind, flags, buffers, owner, addr):
        self.id = id
        self.kind = kind
        self.flags = flags
        self.buffers = buffers
        self.owner = owner
        self.addr = addr
        self.released = False

    def folios(self):
        return [b[0] for b in self.buffers]

    def __repr__(self):
        return f"<Holder {self.kind} {self.id} pfns={[f.pfn for f in self.folios()]}>"


class Snapshot:
    """An opaque saved state (see :meth:`Kernel.snapshot`)."""

    def __init__(self, state, era, trace_len, op):
        self.state = state
        self.era = era
        self.trace_len = trace_len
        self.op = op


class Kernel:
    """The model kernel.

    Parameters
    ----------
    era : str or Era, optional
        A preset name (``"5.7"``, ``"5.8"``, ``"5.9"``, ``"5.19"``,
        ``"6.2"``, ``"6.18"``; ``"6.0"`` too, outside the era tables) or an
        :class:`~mmkit.era.Era`; default ``"6.18"``, the kernel this kit is
        checked against.
    trace : {"events", "count", "off"}
        See :class:`~mmkit.trace.Trace`.
    check : bool
        Check invariants on what every operation touched (default True).
    page_mapcount : bool
        CONFIG_PAGE_MAPCOUNT (default True, as on this machine).  False models
        CONFIG_NO_PAGE_MAPCOUNT (v6.15): large folios keep no per-page
        mapcount and no ``_nr_pages_mapped``; kpagecount shows the folio's
        average per-page mapcount.

    Attributes
    ----------
    thp : ThpPolicy
        /sys/kernel/mm/transparent_hugepage (see :mod:`mmkit.thp`).
    deferred_split : list of LargeFolio
        The deferred split queue (partially mapped anon large folios).

    Raises
    ------
    InvalidArgument
        For an unknown era or trace mode, or ``page_mapcount=False`` in an
        era before v6.15.
    """

    PAGE_SIZE = PAGE_SIZE

    def __init__(self, era=None, trace="events", check=True, page_mapcount=True):
        if trace not in ("events", "count", "off"):
            raise InvalidArgument(f"trace must be 'events', 'count' or 'off', not {trace!r}")
        if not isinstance(page_mapcount, bool):
            raise InvalidArgument(f"page_mapcount must be a bool, not {page_mapcount!r}")
        e = _era(era)
        if not page_mapcount and not e.mm_id:
            raise InvalidArgument(f"CONFIG_NO_PAGE_MAPCOUNT exists since v6.15; era {e.name} has per-page "
                                  "mapcounts only")
        self.page_mapcount = page_mapcount
        self.era = e
        self.thp = ThpPolicy(e.mthp)
        self.deferred_split = []
        self.trace = Trace(trace)
        self.check = check
        #: Called as ``observer(event, folio, vma)`` with event "map" or
        #: "unmap" whenever a mapcount changes (the rmap helpers); for labs
        #: that compare ways of tracking mappings.  None: no calls.
        self.rmap_observer = None
        self.tasks = {}
        self.files = {}
        self.holders = {}
        self.zero_page = ZeroFolio(ZERO_PFN)
        self.nr_folios = 0
        self.walk_steps = 0
        self._next_pfn = ZERO_PFN + 1
        self._next_id = 1
        self._next_pid = 1
        self._next_holder = 1

    def __repr__(self):
        alive = sum(t.alive for t in self.tasks.values())
        return f"<Kernel era {self.era.name}: {alive} process(es), {self.nr_folios} page(s) allocated>"

    # -- allocation ---------------------------------------------------------
    def alloc_folio(self, data=b""):
        """Allocate a page (refcount 1); pfns are never reused."""
        pfn = self._next_pfn
        self._next_pfn = pfn + 1
        self.nr_folios += 1
        return Folio(pfn, data)

    def alloc_large_folio(self, order, data=None):
        """Allocate a folio of ``2**order`` pages (refcount 1); its head pfn
        is aligned to its size, as the buddy allocator's blocks are."""
        nr = 1 << order
        pfn = (self._next_pfn + nr - 1) & ~(nr - 1)
        self._next_pfn = pfn + nr
        self.nr_folios += 1
        return LargeFolio(pfn, order, data)

    def alloc_mm_id(self):
        """kernel/fork.c: mm_id_alloc(): the smallest id >= MM_ID_MIN (1)
        that no live mm holds (an IDA; mm_id_free() at __mmdrop())."""
        used = {t.mm.mm_id for t in self.tasks.values() if t.alive and t.mm is not None}
        i = 1
        while i in used:
            i += 1
        return i

    def free_folio(self, folio):
        """The last reference is gone: the page returns to the allocator."""
        if folio.large:
            folio = folio.folio
            if folio.deferred:          # folio_unqueue_deferred_split()
                folio.deferred = False
                self.deferred_split.remove(folio)
        self.nr_folios -= 1
        self.trace.emit("free_folio", "page freed", "last reference dropped", folio.pfn)

    def next_id(self):
        """The next id of a VMA, anon_vma or file (one counter for those)."""
        i = self._next_id
        self._next_id = i + 1
        return i

    def next_pid(self):
        """The next process id: processes count 1, 2, 3... on their own,
        so the parent is pid 1 and its first child pid 2."""
        i = self._next_pid
        self._next_pid = i + 1
        return i

    def next_holder_id(self):
        """The next key of :attr:`holders` (pins, GUP references and pipes
        count on their own counter; :meth:`holder_number` numbers each kind
        from 1)."""
        i = self._next_holder
        self._next_holder = i + 1
        return i

    def holder_number(self, holder):
        """``holder``'s number among the holders of its kind, from 1: the
        first pin is ``pin 1``, the first pipe ``pipe 1``."""
        return sum(1 for h in self.holders.values() if h.kind == holder.kind and h.id <= holder.id)

    def new_anon_vma(self, parent):
        return AnonVma(self.next_id(), parent)

    def new_file(self, name, npages, shmem):
        f = File(self.next_id(), name, npages, shmem)
        self.files[f.id] = f
        return f

    # -- processes and files ---------------------------------------------------
    def spawn(self, name=None):
        """A new process with an empty address space.

        Examples
        --------
        >>> Kernel().spawn("shell").name
        'shell'
        """
        from .mm import Mm
        from .process import Process
        if name is not None and not isinstance(name, str):
            raise InvalidArgument(f"name must be a str, not {type(name).__name__}")
        self.trace.begin(f"spawn({name!r})")
        pid = self.next_pid()
        task = Task(pid, name or f"P{pid}", None)
        task.mm = Mm(task, _MMAP_BASE, self.alloc_mm_id())
        self.tasks[pid] = task
        self.trace.emit("copy_process", f"pid {pid}", f"new process {task.name!r} with an empty mm")
        return Process(self, pid)

    def open(self, name, npages=1, shmem=False):
        """Open (creating if needed) the file ``name`` of ``npages`` pages.

        ``shmem=True`` gives a tmpfs/memfd file.  Opening an existing name
        returns the same file and ignores ``npages``.
        """
        from .process import FileHandle
        if not isinstance(name, str) or not name:
            raise InvalidArgument("file name must be a non-empty str")
        if not isinstance(npages, int) or isinstance(npages, bool) or npages < 0:
            raise InvalidArgument(f"npages must be a non-negative int, not {npages!r}")
        from .process import check_file_size
        check_file_size(npages * PAGE_SIZE)
        for f in self.files.values():
            if f.name == name:
                return FileHandle(self, f.id)
        self.trace.begin(f"open({name!r})")
        f = self.new_file(name, npages, bool(shmem))
        return FileHandle(self, f.id)

    @property
    def processes(self):
        """Handles of the live processes, in creation order."""
        from .process import Process
        return [Process(self, pid) for pid, t in self.tasks.items() if t.alive]

    # -- observation ---------------------------------------------------------
    def page(self, proc, addr):
        """What the page table of ``proc`` says about the page at ``addr``.

        Returns
        -------
        PageInfo
            ``present=False`` (and zeros) when no page is mapped there.
        """
        task = self._task(proc)
        if not isinstance(addr, int) or addr < 0:
            raise InvalidArgument(f"address must be a non-negative int, not {addr!r}")
        e = task.mm.pte(addr & ~(PAGE_SIZE - 1))
        if e is None or not e.present:
            return PageInfo()
        f = e.folio
        if f.large:
            return self._large_page_info(e, f)
        mm_id = self.era.mm_id
        # the huge zero folio (huge_memory.HugeZeroFolio): not counted, like the zero page, but an order-9
        # folio mapped by a PMD (kpageflags ZERO_PAGE + THP + COMPOUND_HEAD/TAIL on the live kernel)
        geo = {"order": 9, "nr_pages": 512, "head": f.i == 0, "pmd_mapped": e.huge} \
            if getattr(f, "huge_zero", False) else {}
        return PageInfo(maybe_mapped_shared=f.mapcount > 1 if mm_id and not f.zero else None,
                        pfn=f.pfn, present=True, writable=e.write, anon=f.anon, zero_page=f.zero,
                        exclusive=f.anon_exclusive, mapcount=f.mapcount, refcount=f.refcount,
                        pincount=f.pincount, maybe_pinned=folio_maybe_dma_pinned(f),
                        in_page_cache=f.in_page_cache, **geo)

    def _large_page_info(self, e, page):
        from .rmap import folio_maybe_mapped_shared
        f = page.folio
        if self.page_mapcount:
            mapcount = page.mapcount
        else:                           # fs/proc/internal.h: folio_average_page_mapcount()
            mc, entire = f.large_mapcount, f.entire_mapcount
            if mc <= 0:
                mapcount = 0
            elif mc <= entire:
                mapcount = entire
            else:
                mapcount = max(((mc - entire + f.nr // 2) >> f.order) + entire, 1)
        mm_id = self.era.mm_id
        return PageInfo(pfn=page.pfn, present=True, writable=e.write, anon=f.anon, exclusive=page.anon_exclusive,
                        mapcount=mapcount, refcount=f.refcount, pincount=f.pincount,
                        maybe_pinned=f.pincount > 0, order=f.order, nr_pages=f.nr, head=page.i == 0,
                        pmd_mapped=e.huge, large_mapcount=f.large_mapcount, entire_mapcount=f.entire_mapcount,
                        nr_pages_mapped=f.nr_pages_mapped if self.page_mapcount else None,
                        folio_pincount=f.pincount,
                        maybe_mapped_shared=folio_maybe_mapped_shared(f) if mm_id else None,
                        mm_ids=tuple(f.mm_id) if mm_id else ())

    def shrink_deferred_split(self):
        """Run the deferred-split shrinker (mm/huge_memory.c:
        deferred_split_scan(); on a live kernel memory pressure or
        ``echo 2 > /proc/sys/vm/drop_caches`` runs it): every queued,
        partially mapped large folio that nothing but its mappings holds is
        split into small folios and its unmapped pages are freed.

        Returns
        -------
        (int, int)
            Folios split, folios left queued (pinned or referenced).
        """
        from .huge_memory import deferred_split_scan
        self.trace.begin("shrink_deferred_split()")
        return deferred_split_scan(self)

    def dump(self):
        """The whole state as a compact text table, one line per PTE, pin,
        pipe and cached page -- to read, print, or compare two states -- in
        the kit's notation (:mod:`mmkit.notation`), with its key last.

        A PTE line reads ``process[pid] address prot flags what: pfn N
        W|RO [D] | rN mN pN [AE] kind data=...``; the zero page is not
        counted, so its PTEs show ``zero page`` and no counters.

        Examples
        --------
        >>> k = Kernel(); p = k.spawn("P"); a = p.mmap(1); p.write(a, b"x")
        >>> print(k.dump())  # doctest: +ELLIPSIS
        P[1] 0x7f0000000000 rw private anon: pfn 2 W D | r1 m1 p0 AE anon data=b'x'
        key: r = refcount (folio_ref_count); m = this page's mapcount ...; p = pins ...; AE = PageAnonExclusive set; W = PTE writable; D = PTE dirty
        """
        from .notation import counters, key_for, pte_bits
        used = set()

        def page(f):
            if f.zero:
                used.add("zero page")
                return f"zero page | not counted data={bytes(f.data[:16])!r}"
            kind = "anon" if f.anon else "cache" if f.mapping is not None else "orphan"
            used.update(("r", "m", "p"))
            if f.anon_exclusive:
                used.add("AE")
            return (f"pfn {f.pfn} | {counters(f.refcount, f.mapcount, f.pincount, f.anon_exclusive)}"
                    f" {kind} data={bytes(f.data[:16])!r}")
        lines = []
        for t in self.tasks.values():
            if not t.alive:
                lines.append(f"{t.name}[{t.pid}] exited")
                continue
            for vma in t.mm.vmas:
                flags = ("shared" if vma.shared else "private") + (" dontfork" if vma.dontcopy else "") + \
                        (" wipeonfork" if vma.wipeonfork else "")
                what = f"file {vma.file.name}" if vma.file is not None else "anon"
                ptes = list(t.mm.ptes(vma.start, vma.end))
                if not ptes:
                    lines.append(f"{t.name}[{t.pid}] {vma.start:#x}-{vma.end:#x} {vma.prot} {flags} {what}: empty")
                for addr, e in ptes:
                    if e.present:
                        state = pte_bits(e.write, e.dirty)
                        used.update(state.split())
                    else:
                        state = f"migration {e.kind}"
                    f = e.folio
                    head, rest = page(f).split(" | ", 1)
                    where = "zero page" if f.zero else f"pfn {f.pfn}"
                    lines.append(f"{t.name}[{t.pid}] {addr:#x} {vma.prot} {flags} {what}: {where} {state} | {rest}")
        for f in self.files.values():
            for index, folio in sorted(f.pages.items()):
                lines.append(f"file {f.name} page {index}: {page(folio)}")
        for h in self.holders.values():
            if not h.released:
                lines.append(f"{h.kind} {self.holder_number(h)}: " + ", ".join(page(b[0]) for b in h.buffers))
        if used:
            lines.append(key_for(used))
        return "\n".join(lines)

    def check_invariants(self):
        """Recount every holder and walk every rmap (see mmkit.invariants.check_kernel).

        Returns the number of pages checked.
        """
        return check_kernel(self)

    # -- migration -------------------------------------------------------------
    def migrate(self, proc, addr, npages=1, reason="move_pages_all"):
        """Migrate the pages mapped at ``[addr, addr+npages)`` of ``proc``
        (mm/migrate.c: migrate_pages()) on behalf of the caller ``reason``.

        Parameters
        ----------
        reason : {"move_pages_all", "move_pages", "compaction", "offline"}
            Who asks (see :mod:`mmkit.migrate`).  ``"move_pages_all"``
            (default): move_pages(2) with MPOL_MF_MOVE_ALL, which isolates
            every page, shared ones too, with no refcount test; a pinned or
            referenced page fails with -EAGAIN after all its passes.
            ``"move_pages"``: without MOVE_ALL, a page mapped by more than one
            process is refused (-EACCES).  ``"compaction"``: an anon page
            with more references than mappings (pinned, spliced...) is
            skipped before isolation (isolate_migratepages_block()), never
            tried.  ``"offline"``: memory offlining's do_migrate_range().

        Returns
        -------
        MigrateResult
            ``migrated`` / ``failed`` counts, ``reasons`` per address
            (``"EAGAIN: pinned ..."``, ``"skipped: ..."``, ``"EFAULT: ..."``),
            ``passes``, ``unmap_cycles``, ``rmap_steps``.  A run of
            addresses with no page (or no VMA) is reported once, at its first
            address, with its length: the cost follows what is mapped, not
            ``npages``.

        Raises
        ------
        InvalidArgument
            For a bad range or an unknown ``reason``; nothing changes.
        """
        from .migrate import CALLERS, isolate_for_migration
        task = self._task(proc)
        check_range(addr, npages)
        if not isinstance(reason, str) or reason not in CALLERS:
            raise InvalidArgument(f"reason must be one of {', '.join(CALLERS)}, not {reason!r}")
        mm = task.mm
        self.trace.begin(f"migrate({task.name}, {addr:#x}, {npages}, {reason})")
        todo, refused, nrefused = [], {}, 0

        def visit(a, n=1):
            # a run of n pages without a present PTE is asked about once, at
            # its first address, so the cost follows what is mapped
            nonlocal nrefused
            folio, why = isolate_for_migration(self, reason, mm, a)
            if folio is None:
                refused[a] = why if n == 1 else f"{why} (and the {n - 1} pages after it)"
                nrefused += n
            else:
                todo.append((a, folio))

        end = addr + npages * PAGE_SIZE
        pos = addr
        for vma in mm.vmas_in(addr, end):
            lo, hi = max(vma.start, addr), min(vma.end, end)
            if pos < lo:
                visit(pos, (lo - pos) // PAGE_SIZE)                 # no VMA here
            pos = lo
            for a, e in mm.ptes(lo, hi):
                if pos < a:
                    visit(pos, (a - pos) // PAGE_SIZE)             # a VMA without pages
                visit(a)
                pos = a + PAGE_SIZE
            if pos < hi:
                visit(pos, (hi - pos) // PAGE_SIZE)
            pos = hi
        if pos < end:
            visit(pos, (end - pos) // PAGE_SIZE)
        res = migrate_pages(self, todo, reason=reason, isolated=True)
        res.failed += nrefused
        res.reasons.update(refused)
        self.trace.emit("migrate_pages", f"{res.migrated} migrated, {res.failed} not migrated",
                        f"{CALLERS[reason][2]}; {res.rmap_steps} rmap step(s)")
        if self.check:
            for a, _ in todo:
                self.after_range(mm, a, a + PAGE_SIZE)
        return res

    # -- snapshots ---------------------------------------------------------------
    def snapshot(self):
        """Save the whole state (pages, processes, files, pins, trace position)."""
        state = copy.deepcopy({name: getattr(self, name) for name in _STATE})
        return Snapshot(state, self.era, len(self.trace), self.trace.op)

    def restore(self, snap):
        """Return to a state saved by :meth:`snapshot` (the trace is cut back too).

        Raises
        ------
        InvalidArgument
            If ``snap`` is not a Snapshot or was taken under another era.
        """
        if not isinstance(snap, Snapshot):
            raise InvalidArgument(f"restore() takes a Snapshot, not {type(snap).__name__}")
        if snap.era != self.era:
            raise InvalidArgument(f"snapshot was taken under era {snap.era.name}, kernel runs {self.era.name}")
        state = copy.deepcopy(snap.state)
        for name in _STATE:
            setattr(self, name, state[name])
        self.trace.truncate(snap.trace_len, snap.op)

    # -- internals shared with process.py ------------------------------------------
    def _task(self, proc, alive=True):
        from .process import Process
        if not isinstance(proc, Process) or proc.kernel is not self:
            raise InvalidArgument(f"expected a process of this kernel, not {proc!r}")
        task = self.tasks.get(proc.pid)
        if task is None:
            raise InvalidArgument(f"process {proc.pid} does not exist in this state (restored snapshot?)")
        if alive and not task.alive:
            raise InvalidArgument(f"process {task.name!r} has exited")
        return task

    def after_range(self, mm, start, end):
        """Check the invariants on the PTEs of ``[start, end)`` in ``mm``."""
        for addr, e in mm.ptes(start, end):
            if e.present:
                check_pte(self, mm.find_vma(addr), e)

    def after_folios(self, folios):
        """Check the per-folio invariants on ``folios``."""
        for f in folios:
            check_folio(self, f)
