"""The kernel's own COW selftest, anonymous base-page cases, as scenarios.

tools/testing/selftests/mm/cow.c (``anon_test_cases[]``) checks that no
process sees another's writes through a private mapping after fork, and
that a pin always sees what its owner writes.  Each case here follows the
test's steps; its last step returns True when the test would pass.  Run
them under every era with :func:`era_table` to get the history of the COW
fixes: CVE-2020-29374 under 5.7, stale R/O pins under 5.9, all fixed by 5.19.

Notes
-----
``RO_PIN_TEST_RO_EXCLUSIVE`` in cow.c clears soft-dirty between the two
mprotect() calls so that mprotect cannot map the page writable again; the
model has no soft-dirty tracking, so since 6.2 its mprotect() does upgrade
the exclusive page.  The case passes either way.
"""

from ..era import ERAS, era as _era
from ..scenario import Scenario

__all__ = ["COW_CASES", "NON_ANON_CASES", "run_case", "era_table", "partial_mremap_thp_cases"]

OLD, NEW = b"\x00old", b"\xffnew"


def _base(k, s):
    s.p = k.spawn("parent")
    s.a = s.p.mmap(1)
    s.n, s.old, s.new = 1, OLD, NEW
    s.p.write(s.a, OLD)


_BASE = ("populate", "Map one anonymous page and write it (an exclusive page).", _base)


def _case(name, steps, populate=_BASE, watch=None):
    sc = Scenario(name, name, watch=watch or [("parent", "p", "a"), ("child", "c", "a")])
    sc.add(*populate)
    for st in steps:
        sc.add(*st)
    return sc


def _fork(k, s):
    s.c = s.p.fork("child")


def _mprotect_rw(k, s):
    s.p.mprotect(s.a, s.n, "r")
    s.p.mprotect(s.a, s.n, "rw")


FORK = ("fork", "fork(): the page is now shared by parent and child.", _fork)
MPROTECT = ("mprotect R/O, R/W", "mprotect(PROT_READ) then mprotect(PROT_READ|PROT_WRITE).", _mprotect_rw)


def cow_in_parent(mprotect, populate=_BASE, suffix="", watch=None):
    steps = [FORK] + ([MPROTECT] if mprotect else []) + [
        ("parent writes", "The parent modifies the page.", lambda k, s: s.p.write(s.a, s.new)),
        ("check", "Pass if the child still reads the old data.",
         lambda k, s: s.c.read(s.a, len(s.old)) == s.old)]
    return _case("Basic COW after fork()" + (" with mprotect() optimization" if mprotect else "") + suffix, steps,
                 populate, watch)


def vmsplice_in_child(mprotect, populate=_BASE, suffix="", watch=None):
    steps = [FORK,
             ("child vmsplices", "vmsplice() the page into a pipe [R/O GUP, FOLL_GET].",
              lambda k, s: setattr(s, "pipe", s.c.vmsplice(s.a, len(s.old)))),
             ("child unmaps", "munmap() in the child.", lambda k, s: s.c.munmap(s.a, s.n))] + \
        ([MPROTECT] if mprotect else []) + [
        ("parent writes", "The parent modifies the page.", lambda k, s: s.p.write(s.a, s.new)),
        ("check", "Pass if the pipe returns the old data.", lambda k, s: s.pipe.read(len(s.old)) == s.old)]
    return _case("vmsplice() + unmap in child" + (" with mprotect() optimization" if mprotect else "") + suffix,
                 steps, populate, watch)


def vmsplice_in_parent(before_fork, populate=_BASE, suffix="", watch=None):
    splice = ("parent vmsplices", "vmsplice() the page into a pipe [R/O GUP, FOLL_GET].",
              lambda k, s: setattr(s, "pipe", s.p.vmsplice(s.a, len(s.old))))
    steps = ([splice, FORK] if before_fork else [FORK, splice]) + [
        ("parent unmaps", "munmap() in the parent.", lambda k, s: s.p.munmap(s.a, s.n)),
        ("child writes", "The child modifies the page.", lambda k, s: s.c.write(s.a, s.new)),
        ("check", "Pass if the pipe returns the old data.", lambda k, s: s.pipe.read(len(s.old)) == s.old)]
    name = "vmsplice() before fork(), unmap in parent after fork()" if before_fork else \
        "vmsplice() + unmap in parent after fork()"
    return _case(name + suffix, steps, populate, watch)


def iouring(use_fork, populate=_BASE, suffix="", watch=None):
    reg = ("register buffer", "io_uring fixed buffer: a long-term R/W pin (FOLL_PIN|FOLL_WRITE|FOLL_LONGTERM).",
           lambda k, s: setattr(s, "pin", s.p.pin(s.a, s.n, write=True, longterm=True)))
    steps = [reg, FORK if use_fork else MPROTECT,
             ("parent writes", "The parent modifies the page.", lambda k, s: s.p.write(s.a, s.new)),
             ("check", "Pass if the pin (a fixed-buffer write to a file) sees the new data.",
              lambda k, s: s.pin.read(len(s.new)) == s.new)]
    name = "fork() with an iouring fixed buffer" if use_fork else \
        "R/O-mapping a page registered as iouring fixed buffer"
    return _case(name + suffix, steps, populate, watch)


def ro_pin(variant, fast, populate=_BASE, suffix="", watch=None):
    pin = ("R/O pin", "A long-term R/O pin" + (" via GUP-fast" if fast else "") + " (FOLL_PIN|FOLL_LONGTERM).",
           lambda k, s: setattr(s, "pin", s.p.pin(s.a, s.n, write=False, longterm=True, fast=fast)))
    if variant == "shared":
        prep, name = [FORK], "R/O GUP{} pin on R/O-mapped shared page"
    elif variant == "previously-shared":
        prep = [FORK, ("child exits", "The child quits: the page is exclusive again, but not marked.",
                       lambda k, s: s.c.exit())]
        name = "R/O GUP{} pin on R/O-mapped previously-shared page"
    else:
        prep = [("map R/O", "mprotect(PROT_READ), clear soft-dirty, mprotect(PROT_READ|PROT_WRITE).", _mprotect_rw)]
        name = "R/O GUP{} pin on R/O-mapped exclusive page"
    steps = prep + [pin,
                    ("parent writes", "Modify the page through the page table.", lambda k, s: s.p.write(s.a, s.new)),
                    ("check", "Pass if the pin sees the new data.", lambda k, s: s.pin.read(len(s.new)) == s.new)]
    return _case(name.format("-fast" if fast else "") + suffix, steps, populate, watch)


def anon_cases(populate=_BASE, suffix="", watch=None):
    """cow.c's ``anon_test_cases[]`` on the memory ``populate`` sets up."""
    kw = dict(populate=populate, suffix=suffix, watch=watch)
    return [
        cow_in_parent(False, **kw), cow_in_parent(True, **kw),
        vmsplice_in_child(False, **kw), vmsplice_in_child(True, **kw),
        vmsplice_in_parent(True, **kw), vmsplice_in_parent(False, **kw),
        iouring(False, **kw), iouring(True, **kw),
        ro_pin("shared", False, **kw), ro_pin("shared", True, **kw),
        ro_pin("previously-shared", False, **kw), ro_pin("previously-shared", True, **kw),
        ro_pin("exclusive", False, **kw), ro_pin("exclusive", True, **kw),
    ]


def _non_anon(fn, backing):
    """non_anon_test_cases[] with run_with_zeropage / run_with_memfd / run_with_tmpfile:
    ``mem`` is a private R/W mapping, ``smem`` a R/O one of the same memory
    (a second anon mapping for the zero page, a MAP_SHARED one for files)."""
    def setup(k, s):
        s.p = k.spawn("parent")
        if backing == "shared zeropage":
            s.a, s.sa = s.p.mmap(1), s.p.mmap(1, prot="r")
        else:
            s.f = k.open("test", 1, shmem=backing == "memfd")
            s.a, s.sa = s.p.mmap(1, file=s.f), s.p.mmap(1, prot="r", shared=True, file=s.f)
        s.p.read(s.a, 1)
        s.p.read(s.sa, 1)
    sc = Scenario(f"{fn} ... with {backing}", f"{fn} ... with {backing}",
                  watch=[("mem", "p", "a"), ("smem", "p", "sa")])
    sc.add("populate", "Map the memory twice and read both mappings (" +
           ("the shared zero page" if backing == "shared zeropage" else "the page-cache page") + ").", setup)
    if fn == "Basic COW":
        sc.add("write mem", "Modify the page through the private mapping.", lambda k, s: s.p.write(s.a, NEW))
        sc.add("check", "Pass if the other mapping still reads the old (zero) data.",
               lambda k, s: s.p.read(s.sa, len(NEW)) == bytes(len(NEW)))
    else:
        fast = "fast" in fn
        sc.add("R/O pin", "A long-term R/O pin" + (" via GUP-fast" if fast else "") + " on the private mapping.",
               lambda k, s: setattr(s, "pin", s.p.pin(s.a, 1, write=False, longterm=True, fast=fast)))
        sc.add("write mem", "Modify the page through the private mapping.", lambda k, s: s.p.write(s.a, NEW))
        sc.add("check", "Pass if the pin sees the new data.", lambda k, s: s.pin.read(len(NEW)) == NEW)
    return sc


#: non_anon_test_cases[] x (zeropage, memfd, tmpfile): pages in private
#: mappings that are shared through COW without fork (the v6.2 fix).
NON_ANON_CASES = [_non_anon(fn, backing) for fn in ("Basic COW", "R/O longterm GUP pin", "R/O longterm GUP-fast pin")
                  for backing in ("shared zeropage", "memfd", "tmpfile")]

COW_CASES = anon_cases()


def _partial_mremap_populate(size_kb):
    nr = size_kb // 4
    size = nr * 4096

    def populate(k, s):
        s.p = k.spawn("parent")
        if nr != 512:
            k.thp.set(f"{size_kb}kB", "always")          # run_anon_test_case(): this size always,
            k.thp.set("2048kB", "never")                  # the PMD size never
        raw = s.p.mmap(2 * nr)                            # "For alignment purposes, we need twice the thp size."
        s.a = (raw + size) & ~(size - 1)
        s.p.madvise(s.a, nr, "hugepage")
        s.p.write(s.a, b"\x01" * size)                    # memset(mem, 1, thpsize)
        s.r = s.p.mmap(nr // 2, "none")                   # mremap_mem = mmap(NULL, thpsize / 2, PROT_NONE, ...)
        s.p.mremap(s.a + size // 2, nr // 2, nr // 2, maymove=True, fixed=s.r)
        s.n, s.old, s.new = nr // 2, b"\x01" * (size // 2), b"\xff" * (size // 2)
    return ("populate", f"Map a {size_kb} kB THP (MADV_HUGEPAGE), write it whole, then mremap(MREMAP_MAYMOVE | "
            "MREMAP_FIXED) its upper half onto a PROT_NONE mapping: the cases run on the lower half.", populate)


def partial_mremap_thp_cases(size_kb=2048):
    """cow.c's anonymous cases "... with partially mremap()'ed THP (<size> kB)"
    (tools/testing/selftests/mm/cow.c: run_with_partial_mremap_thp() ->
    do_run_with_thp(THP_RUN_PARTIAL_MREMAP)), set up exactly as cow.c does
    (see :mod:`mmkit.mremap` for what the move does to the THP).  Before
    v6.8 there are no mTHP sizes: use the default 2048."""
    return anon_cases(_partial_mremap_populate(size_kb), f" ... with partially mremap()'ed THP ({size_kb} kB)",
                      [("parent", "p", "a"), ("child", "c", "a")])

def run_case(case, era=None):
    """Run one cow.c case on a fresh model kernel; True if it passes."""
    from ..kernel import Kernel
    if isinstance(case, str):
        case = next(c for c in COW_CASES + NON_ANON_CASES if c.name == case)
    return case.run(Kernel(era=_era(era)))[-1].outcome is True


def era_table(eras=None, cases=None):
    """{case name: {era name: passed}} for every case (default: the anon
    cases, COW_CASES) and era (default: all presets)."""
    eras = list(ERAS) if eras is None else eras
    cases = COW_CASES if cases is None else cases
    return {c.name: {_era(e).name: run_case(c, e) for e in eras} for c in cases}
