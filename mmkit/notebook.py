"""Small helpers that keep the notebooks free of plumbing.

* :func:`pages` -- a table of :class:`~mmkit.PageInfo` for a few labelled pages.
* :func:`trace` -- the kernel trace of the last operation (or the last few).
* :func:`era_outcomes` -- one scenario under several eras, its watched pages
  and last outcome side by side.
* :func:`live_compare` -- the same scenario on the model and on the reader's
  own kernel, side by side; says why and skips when the live kernel is not
  available.
* :func:`anon_vma_chain` -- the anon_vmas a VMA is linked to (its anon_vma_chain).
* :func:`rmap_walk_of` -- the VMAs an rmap walk of a page visits, and which map it.
* :func:`cow_selftest` -- the kernel's own COW selftest cases (cow.c) under several eras.
* :func:`migrate_cached_page` -- migrate a page-cache page that nobody maps
  (the "not mapped: skip the rmap walk" case, which ``k.migrate()`` cannot
  reach because it starts from an address).

Each returns a value that renders as HTML in a notebook (``_repr_html_``)
and as text elsewhere, so a cell shows it by naming it last.
"""

import html

from .rmap import rmap_vmas
from .notation import counters, key_for
from .scenario import format_outcome
from .table import Table

__all__ = ["pages", "trace", "era_outcomes", "live_compare", "migrate_cached_page", "anon_vma_chain",
           "rmap_walk_of", "cow_selftest", "Table"]

_FIELDS = ("pfn", "present", "writable", "refcount", "mapcount", "pincount", "exclusive", "zero_page",
           "in_page_cache")
#: field -> column header, in the kit's notation (mmkit.notation)
_SHORT = {"present": "present", "writable": "W/RO", "refcount": "r", "mapcount": "m", "pincount": "p",
          "exclusive": "AE", "zero_page": "zero page", "in_page_cache": "page cache", "pfn": "pfn"}
#: notation symbols each field's column uses (for the key under the table)
_SYMBOLS = {"writable": ("W", "RO"), "refcount": ("r",), "mapcount": ("m",), "pincount": ("p",),
            "exclusive": ("AE",)}
_COUNTED = ("refcount", "mapcount", "pincount", "exclusive")


def pages(k, fields=("pfn", "writable", "refcount", "mapcount", "pincount", "exclusive"), **where):
    """A table of ``k.page(proc, addr)`` for each ``label=(proc, addr)``,
    headed in the kit's notation (``r``, ``m``, ``p``, ``AE``, ``W/RO``)
    with the key under it.  The zero page is not counted: its row says
    ``zero page`` and shows no counters.  ``t.column()`` takes the field
    name or the header.

    Examples
    --------
    >>> from mmkit import Kernel
    >>> k = Kernel(); p = k.spawn("parent"); a = p.mmap(1); p.write(a, b"x"); c = p.fork("child")
    >>> t = pages(k, parent=(p, a), child=(c, a))
    >>> t.column("mapcount"), t.column("m")
    ([2, 2], [2, 2])
    >>> print(t)  # doctest: +ELLIPSIS
    page    pfn  W/RO  r  m  p  AE
    parent    2  RO    2  2  0  no
    child     2  RO    2  2  0  no
    key: r = refcount (folio_ref_count); m = this page's mapcount ...; p = pins ...; AE = PageAnonExclusive set; W = PTE writable; RO = PTE read-only
    """
    rows = []
    zero = False
    for label, (proc, addr) in where.items():
        info = k.page(proc, addr) if proc.alive else None
        if info is None or not info.present:
            rows.append([label] + ["-"] * len(fields))
            continue
        row = [label]
        for f in fields:
            v = getattr(info, f)
            if info.zero_page and f in _COUNTED:
                v = "—"                     # not counted
            elif info.zero_page and f == "pfn":
                v = "zero page"
            elif f == "writable":
                v = "W" if v else "RO"
            row.append(v)
        zero |= info.zero_page
        rows.append(row)
    symbols = [s for f in fields for s in _SYMBOLS.get(f, ())] + (["zero page"] if zero else [])
    t = Table(["page"] + [_SHORT.get(f, f) for f in fields], rows, footer=key_for(symbols) if symbols else "")
    t.aliases = {f: _SHORT.get(f, f) for f in fields}
    return t


class _Lines(list):
    """Lines of text that print as text (not as a list)."""

    def __str__(self):
        return "\n".join(self)

    def __repr__(self):
        return str(self)

    def _repr_pretty_(self, p, cycle):
        p.text(str(self))

    def _repr_html_(self):
        return "<pre>" + html.escape(str(self)) + "</pre>"


def trace(k, ops=1):
    """The kernel trace of the last ``ops`` user-level operations, one
    decision per line: ``do_wp_page: page not exclusive -> wp_page_copy``."""
    last = k.trace.op
    out = _Lines()
    for op in range(max(1, last - ops + 1), last + 1):
        name = k.trace.op_names.get(op) if hasattr(k.trace, "op_names") else None
        if name is not None:
            out.append(f"# {name}")
        out += [("  " if name is not None else "") + str(e) for e in k.trace.of_op(op)]
    return out


def era_outcomes(scenario, eras=("5.7", "5.8", "5.9", "5.19", "6.18"), watch=None, upto=None):
    """Run ``scenario`` (a name or a Scenario) under each era; one row per
    era with the outcome of the step ``upto`` (a step name or a 1-based
    count; default the last step) and the watched pages' pfn / refcount /
    mapcount / exclusive after it."""
    from .kernel import Kernel
    from .scenarios import get
    sc = get(scenario) if isinstance(scenario, str) else scenario
    labels = watch or [w[0] for w in sc.watch]
    if upto is None:
        n = len(sc.steps)
    elif isinstance(upto, str):
        n = [st.name for st in sc.steps].index(upto) + 1
    else:
        n = int(upto)
    rows = []
    for e in eras:
        res = sc.run(Kernel(era=e), upto=n)
        last = res[-1]
        row = [e, format_outcome(last.outcome)]
        for lb in labels:
            info = last.pages.get(lb)
            row.append("-" if info is None or not info.present else "zero page" if info.zero_page else
                       f"pfn {info.pfn} " + counters(info.refcount, info.mapcount, info.pincount, info.exclusive))
        rows.append(row)
    return Table(["era", f"step {n}: {sc.steps[n - 1].name}"] + labels, rows, caption=sc.title,
                 footer=key_for(["r", "m", "p", "AE", "zero page"]))


class LiveResult:
    """What :func:`live_compare` found: a comparison, or why there is none."""

    def __init__(self, name, comparison=None, reason=None):
        self.name = name
        self.comparison = comparison
        self.reason = reason

    @property
    def ran(self):
        return self.comparison is not None

    @property
    def ok(self):
        """True if the model and the live kernel agree (None if not run)."""
        return None if self.comparison is None else self.comparison.ok

    def __str__(self):
        if self.comparison is None:
            return f"live kernel skipped for {self.name!r}: {self.reason}"
        return self.comparison.table()

    def __repr__(self):
        return str(self)

    def _repr_html_(self):
        if self.comparison is None:
            return (f'<div class="mm-live" data-ran="false" style="color:#666">Live kernel skipped: '
                    f"{html.escape(self.reason)}</div>")
        verdict = "model and live kernel agree" if self.ok else "model and live kernel DISAGREE"
        from .conformance import KEY
        legend = "Each cell: " + KEY + "."
        return (f'<div class="mm-live" data-ran="true" data-ok="{str(self.ok).lower()}"><b>{html.escape(verdict)}'
                f"</b><pre>{html.escape(self.comparison.table())}</pre><small>{html.escape(legend)}</small></div>")


def live_compare(scenario, retries=2):
    """Run ``scenario`` on the model and on this machine's kernel and show
    both, step by step (see :mod:`mmkit.conformance`).

    When the live backend cannot run here (not Linux, not root, no
    io_uring...), nothing is run and the result says why.

    Returns
    -------
    LiveResult
    """
    from .scenarios import get
    sc = get(scenario) if isinstance(scenario, str) else scenario
    try:
        from .live import available
        ok, why = available()
    except Exception as e:              # the backend itself could not be imported
        ok, why = False, f"mmkit.live unavailable ({type(e).__name__}: {e})"
    if not ok:                          # show the run recorded on a real kernel, if there is one
        try:
            from .live.recorded import recorded_result
        except Exception:               # mmkit.live does not even import here
            return LiveResult(sc.name, reason=why)
        return recorded_result(sc, why) or LiveResult(sc.name, reason=why)
    from .conformance import run_conformance
    try:
        report = run_conformance([sc], retries=retries)
    except Exception as e:
        return LiveResult(sc.name, reason=f"the live run failed: {type(e).__name__}: {e}")
    comps = getattr(report, "comparisons", None) or getattr(report, "results", None) or list(report)
    return LiveResult(sc.name, comparison=comps[0])


def migrate_cached_page(k, file, index=0):
    """Migrate page ``index`` of ``file``'s page cache as compaction would,
    whether or not anyone maps it (mm/migrate.c: migrate_pages()).

    A page that no process maps skips both rmap walks (migrate_folio_unmap()
    checks folio_mapped() first): ``rmap_steps`` is 0.

    Returns
    -------
    MigrateResult
    """
    from .migrate import migrate_pages
    f = file._file if hasattr(file, "_file") else file
    folio = f.pages.get(index)
    if folio is None:
        from .errors import InvalidArgument
        raise InvalidArgument(f"page {index} of {f.name!r} is not in the page cache")
    k.trace.begin(f"migrate page {index} of {f.name}")
    res = migrate_pages(k, [(index, folio)])
    k.trace.emit("migrate_pages", f"{res.migrated} migrated, {res.failed} failed", f"{res.rmap_steps} rmap step(s)")
    return res


def _vma_of(proc, addr):
    vma = proc.mm.find_vma(addr)
    if vma is None:
        from .errors import InvalidArgument
        raise InvalidArgument(f"no VMA at {addr:#x} in {proc.name}")
    return vma


def _owner(vma):
    t = vma.mm.owner
    return getattr(t, "name", "?")


def anon_vma_chain(proc, addr):
    """The anon_vma_chain of the VMA at ``addr`` in ``proc``: one row per
    anon_vma the VMA is linked to (include/linux/rmap.h: struct
    anon_vma_chain), with its root and parent and whether it is the VMA's
    own (``vma->anon_vma``, where the pages this VMA creates point)."""
    vma = _vma_of(proc, addr)
    rows = []
    for avc in vma.anon_vma_chain:
        av = avc.anon_vma
        users = sorted({_owner(c.vma) for c in av.chains})
        rows.append([f"anon_vma {av.id}", f"anon_vma {av.root.id}",
                     "-" if av.parent is av else f"anon_vma {av.parent.id}",
                     av is vma.anon_vma, ", ".join(users)])
    return Table(["anon_vma", "root", "parent", "own", "VMAs linked (by process)"], rows,
                 caption=f"{proc.name}'s VMA {vma.start:#x}-{vma.end:#x}")


def rmap_walk_of(k, proc, addr):
    """Which VMAs an rmap walk of the page mapped at ``addr`` in ``proc``
    visits (mm/rmap.c: rmap_walk_anon() over the folio's anon_vma, or
    rmap_walk_file() over the file's i_mmap), and whether each maps it."""
    e = proc.mm.pte(addr)
    if e is None or not e.present:
        from .errors import InvalidArgument
        raise InvalidArgument(f"no page mapped at {addr:#x} in {proc.name}")
    f = e.folio
    if f.zero:
        return Table(["VMA", "process", "maps this page"], [], caption="the zero page has no rmap: nothing to walk")
    vmas = rmap_vmas(f)
    via = f"anon_vma {f.mapping.id}" if f.anon else f"i_mmap of {f.mapping.name!r}"
    rows = []
    for vma in vmas:
        a = vma.vma_address(f.index)
        pte = vma.mm.pte(a) if a is not None else None
        rows.append([f"{vma.start:#x}-{vma.end:#x}", _owner(vma), pte is not None and pte.folio is f])
    return Table(["VMA", "process", "maps this page"], rows, caption=f"pfn {f.pfn}: walk via {via}")


def cow_selftest(match=None, eras=("5.7", "5.8", "5.9", "5.19", "6.2", "6.18")):
    """Pass/fail of the anonymous cases of tools/testing/selftests/mm/cow.c
    (see :mod:`mmkit.scenarios.cow_selftest`) under each era; ``match``
    keeps the cases whose name contains it (case-insensitive)."""
    from .scenarios.cow_selftest import COW_CASES, run_case
    rows = []
    for case in COW_CASES:
        if match is not None and match.lower() not in case.name.lower():
            continue
        rows.append([case.name] + ["pass" if run_case(case, e) else "FAIL" for e in eras])
    return Table(["cow.c case"] + list(eras), rows)
