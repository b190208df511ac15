"""The ``folio`` exercise kind: large folios (a 2 MiB THP, a 64 KiB mTHP).

Registered into :data:`mmkit.exercises.kinds.KINDS` at import, with the
same generator as every kind (independent streams, balanced answers,
informative parts only, difficulty): only the data differs.

* **Setup** (4 lines): a THP policy line, a process, an mmap and a first
  write.  Either ``k.thp.enabled = "always"`` and ``P.mmap(512)`` -- a
  PMD-mapped 2 MiB THP (any era) -- or ``k.thp.set("64kB", "always")``
  and ``P.mmap(16)`` -- a PTE-mapped 64 KiB mTHP (eras with per-size
  control, v6.8+).
* **Alphabet**: fork (and a grandchild at difficulty 3), writes and reads
  of the folio's pages 0-2, exit, munmap of the second half of the
  folio, MADV_DONTNEED of its last pages, an mprotect round trip (splits
  a PMD), read-only and read-write long-term pins, unpin.
* **Asks**: is P's page PMD-mapped, and what is its order; what does a
  write fault on a page of the folio do (reuse, copy, no fault); the
  folio's counters (``large_mapcount``, ``entire_mapcount``, the page's
  own mapcount, ``_pincount``); is it "maybe mapped shared"?

Wrong answers are explained by large-folio misconceptions
(:data:`FOLIO_MISCONCEPTIONS`): a PMD counted as 512 mappings, mappings
counted per process, a pin weighed 1024 on a large folio, the whole THP
copied on COW (up to v5.7), a shared THP reused after v5.8, no reuse of a
PTE-mapped folio before v6.15...

Examples
--------
>>> from mmkit.exercises import generate
>>> q = generate("folio", seed=3)
>>> q.params["kind"], q.evaluate(q.answer_key())[0]
('folio', True)
"""

from ..era import era as _era
from . import misconceptions as _mis
from . import question as _question
from .kinds import KINDS, Ask, Builder, Kind, _counter, _fault, _pick
from .misconceptions import Misconception
from .program import Op
from .question import Part, line_no

__all__ = ["FolioOp", "FolioPart", "FOLIO_MISCONCEPTIONS", "FOLIO_KIND"]

P = 4096


class FolioOp(Op):
    """An :class:`~mmkit.exercises.program.Op` with the large-folio verbs.

    ===============  ====================================  ==========================================
    verb             args                                  code
    ===============  ====================================  ==========================================
    thp_enabled      value                                 ``k.thp.enabled = "always"``
    thp_set          size, value                           ``k.thp.set("64kB", "always")``
    mmap_n           X, A, npages                          ``A = X.mmap(512)``
    munmap_n         X, A, start, npages                   ``X.munmap(A + 256*4096, 256)``
    dontneed         X, A, start, npages                   ``X.madvise(A + 8*4096, 8, "dontneed")``
    ===============  ====================================  ==========================================
    """

    def code(self):
        v, a = self.verb, self.args
        if v == "thp_enabled":
            return f'k.thp.enabled = "{a[0]}"'
        if v == "thp_set":
            return f'k.thp.set("{a[0]}", "{a[1]}")'
        if v == "mmap_n":
            return f"{a[1]} = {a[0]}.mmap({a[2]})"
        if v == "munmap_n":
            return f"{a[0]}.munmap({a[1]} + {a[2]}*4096, {a[3]})"
        if v == "dontneed":
            return f'{a[0]}.madvise({a[1]} + {a[2]}*4096, {a[3]}, "dontneed")'
        return super().code()

    def apply(self, k, env):
        v, a = self.verb, self.args
        if v == "thp_enabled":
            k.thp.enabled = a[0]
        elif v == "thp_set":
            k.thp.set(a[0], a[1])
        elif v == "mmap_n":
            env[a[1]] = env[a[0]].mmap(a[2])
        elif v == "munmap_n":
            env[a[0]].munmap(env[a[1]] + a[2] * P, a[3])
        elif v == "dontneed":
            env[a[0]].madvise(env[a[1]] + a[2] * P, a[3], "dontneed")
        else:
            return super().apply(k, env)
        return None

    @property
    def target(self):
        if self.verb in ("munmap_n", "dontneed"):
            return self.a1, self.a2, 0
        if self.verb in ("thp_enabled", "thp_set", "mmap_n"):
            return None
        return super().target


class FolioPart(Part):
    """A :class:`~mmkit.exercises.question.Part` that also reads the
    large-folio answers: ints (``large_mapcount``, ``total_mapcount``, ``entire_mapcount``,
    ``order``, ``folio_pincount``) and booleans (``pmd_mapped``,
    ``maybe_shared``)."""

    INTS = ("large_mapcount", "total_mapcount", "entire_mapcount", "order", "folio_pincount")
    BOOLS = ("pmd_mapped", "maybe_shared")

    @property
    def form(self):
        if self.type in self.INTS:
            return "an int"
        if self.type in self.BOOLS:
            return "True or False"
        return super().form

    def normalize(self, v):
        t = self.type
        if t in self.INTS:
            if isinstance(v, bool):
                raise ValueError(f"{self.name}: expected an int, got {v!r}")
            if isinstance(v, str) and v.strip().isdigit():
                return int(v)
            if isinstance(v, int):
                return v
            raise ValueError(f"{self.name}: expected an int, got {v!r}")
        if t in self.BOOLS:
            if isinstance(v, bool):
                return v
            if isinstance(v, int) and v in (0, 1):
                return bool(v)
            if isinstance(v, str) and v.strip().lower() in _question._BOOL:
                return _question._BOOL[v.strip().lower()]
            raise ValueError(f"{self.name}: expected True or False, got {v!r}")
        return super().normalize(v)


# -- misconceptions ---------------------------------------------------------------------------
def _m(key, title, explain):
    return key, Misconception(key, title, " ".join(explain.split()))


FOLIO_MISCONCEPTIONS = dict([
    _m("pmd_counts_pages", "a PMD counted as 512 mappings",
       """One PMD maps the whole 2 MiB folio and counts once: +1 in the entire mapcount, +1 in the folio's
       total mapcount and one reference on the folio (mm/rmap.c: __folio_add_rmap(), RMAP_LEVEL_PMD; in
       v5.x page_add_anon_rmap() with compound=true).  Only PTEs count one per page: a THP split into 512
       PTEs (__split_huge_pmd_locked()) counts 512."""),
    _m("mapcount_per_process", "mappings counted per process",
       """The folio's total mapcount counts page-table entries, not processes: every PTE that maps any page
       of the folio counts 1, and every PMD counts 1 (folio_mapcount(): _large_mapcount since v6.10,
       added up by total_mapcount() before).  A process mapping 16 pages of an mTHP by PTEs adds 16."""),
    _m("entire_counts_ptes", "PTE mappings counted in the entire mapcount",
       """The entire mapcount (folio_entire_mapcount(); compound_mapcount in v5.x) counts only mappings of
       the whole folio by one PMD; a split PMD or a PTE-mapped mTHP leaves it at 0 for that process."""),
    _m("large_pin_bias", "a pin weighed 1024 on a large folio",
       """A large folio has its own pin counter (_pincount; include/linux/mm.h: folio_has_pincount()): a
       FOLL_PIN adds 1 to the refcount and 1 to that counter (mm/gup.c: try_grab_folio(),
       try_grab_compound_head() in v5.x).  The 1024 bias (GUP_PIN_COUNTING_BIAS) is only for small
       folios, which have no pin counter."""),
    _m("large_pin_not_counted", "a pin on a large folio adds nothing to its refcount",
       """A FOLL_PIN on any page of a large folio takes a reference on the folio: +1 on its refcount, and +1
       on its pin counter (mm/gup.c: try_grab_folio(), try_grab_compound_head() in v5.x).  A pin maps
       nothing, but it holds the folio until unpin_user_page()."""),
    _m("page_mapcount_is_large", "a page's mapcount is the folio's total mapcount",
       """A page's mapcount (/proc/kpagecount; folio_precise_page_mapcount(), page_mapcount() in older
       kernels) counts the PTEs that map this very page, in every process, plus the PMDs that map the
       whole folio.  The PTEs that map the folio's other pages count only in the folio's total mapcount
       (folio_mapcount(): _large_mapcount since v6.10) and in its refcount.  (With CONFIG_NO_PAGE_MAPCOUNT,
       v6.15, kpagecount shows the folio's average instead.)"""),
    _m("thp_copied_whole", "the whole THP copied on a write fault",
       """Since v5.8 (3917c80280c9 "thp: change CoW semantics for anon-THP") a write fault on a shared
       PMD-mapped THP does not copy 2 MiB: do_huge_pmd_wp_page() splits the PMD and the fault falls back to
       the PTE, which copies one 4 KiB page (order 0).  Only up to v5.7 was a new THP allocated and all 512
       pages copied."""),
    _m("thp_split_in_old_era", "today's THP COW applied to v5.7",
       """This question runs on v5.7: do_huge_pmd_wp_page() then copied the whole shared THP into a new THP
       (do_huge_pmd_wp_page_fallback() only when no THP could be allocated); the split-and-fall-back rule
       came with 3917c80280c9 in v5.8."""),
    _m("pte_mapped_never_reused", "a page of a large folio is never reused (or only at refcount 1)",
       """Before v6.15 that was the rule: from Barry Song's 2024 "mm: prohibit the last subpage from reusing
       the entire large folio" no page of a large folio was reused.  And the small-page rule "reuse at
       refcount 1" never fits a large folio: its refcount is the folio's, one per PTE that maps any of its
       pages.  v6.15 changed it ("mm: Copy-on-Write (COW) reuse support for PTE-mapped THP",
       __wp_can_reuse_large_anon_folio() in mm/memory.c): a write fault reuses a page of a PTE-mapped
       large folio when the MM-ID slots say no other process maps the folio and every reference is a
       mapping (refcount == large mapcount)."""),
    _m("large_page_own_refcount", "a page of a large folio counted on its own",
       """Every page of a large folio shows the folio's _refcount (folio_ref_count() reads the head page):
       one per PTE that maps any page of it, one per PMD, plus pins and other references.  A page reused
       by a write fault stays in the folio and keeps showing the folio's refcount; refcount 1 and
       mapcount 1 would be a fresh 4 KiB copy."""),
    _m("reuse_while_folio_shared", "reuse while another process maps the folio",
       """A page of a large folio is reused on a write fault only when the whole folio is this process's
       alone: folio_maybe_mapped_shared() false and refcount == large mapcount.  Another process mapping
       *any* page of the folio, or a pin, forces a copy of the faulting 4 KiB page."""),
    _m("large_reuse_last_mapping", "a page of a large folio reused while the folio has other holders",
       """In this kernel (from 09854ba94c6a, v5.9, until Barry Song's 2024 "mm: prohibit the last subpage
       from reusing the entire large folio") do_wp_page() reuses a page of a large folio only when the
       folio's refcount is 1 (wp_page_reuse() after the refcount check; page_count() of any page of a large
       folio is the folio's): only when this PTE is the folio's last mapping and nothing else holds it.
       Another PTE mapping any page of the folio, in this process or another, or a pin, means a copy."""),
    _m("large_reuse_never_then", "a page of a large folio reused in a kernel that never reuses one",
       """In this kernel (from Barry Song's 2024 "mm: prohibit the last subpage from reusing the entire large
       folio"; v6.15 changed it) wp_can_reuse_anon_folio() returns false for every large folio: a write
       fault on a read-only PTE mapping a page of a large folio always copies that 4 KiB page.  Reuse of a
       PTE-mapped large folio came back in v6.15 (__wp_can_reuse_large_anon_folio())."""),
    _m("large_reuse_mapcount_then", "a page of a large folio reused while some page of it is mapped twice",
       """In this kernel (up to v5.8) do_wp_page() asked reuse_swap_page(), which for a large folio reads
       page_trans_huge_map_swapcount(): the page is reused only if no page of the folio is mapped more
       than once.  A page of the folio still shared with another process means a copy."""),
    _m("maybe_shared_per_page", "\"maybe mapped shared\" read per page",
       """folio_maybe_mapped_shared() (include/linux/mm.h, v6.15) is per folio: it is true when a second mm
       maps any page of the folio, even if not this page.  With CONFIG_NO_PAGE_MAPCOUNT it is what pagemap
       reports as 'not exclusively mapped' for every page of the folio."""),
    _m("split_keeps_pmd", "the PMD survives",
       """An mprotect() of part of a PMD-mapped THP, an munmap or MADV_DONTNEED of part of it, a COW fault on
       it since v5.8, a fork() of a THP that may be pinned (copy_huge_pmd(), since v5.9) and a pin of a
       shared THP all split the PMD first (__split_huge_pmd()): the folio stays order 9, but that process
       maps it by 512 PTEs from then on."""),
    _m("fork_splits_pmd", "fork() splits the PMD of a THP",
       """fork() copies the PMD into the child (mm/huge_memory.c: copy_huge_pmd()) and write-protects it in
       both processes: the THP stays PMD-mapped in both, and the child's exit or munmap removes only the
       child's PMD.  Only a THP that may be pinned in an mm that has pinned gets its PMD split at fork()
       (since v5.9), so that its pinned pages can be copied."""),
    _m("pmd_gone_thp_gone", "a split PMD means a split folio",
       """Splitting a PMD (__split_huge_pmd()) only changes the page table: the 2 MiB folio stays one order-9
       folio, now mapped by PTEs.  Splitting the folio itself (split_folio(), the deferred split queue) is
       a separate step, taken under memory pressure for a partially mapped folio."""),
    _m("fork_write_protects_large", "fork() leaves shared PTEs writable",
       """fork() write-protects every anonymous mapping it shares, in the parent and in the child: the PMD of
       a THP (mm/huge_memory.c: copy_huge_pmd()) and each PTE of a PTE-mapped large folio
       (copy_present_ptes()), so that the first write of either side faults.  Only the pages of a folio
       that may be pinned are handled otherwise (copied for the child, since v5.9)."""),
    _m("large_exclusive_by_mapcount", "a page of a large folio mapped once is exclusive",
       """PageAnonExclusive is kept per page and is not "this page's mapcount is 1".  fork() cleared it on
       every page of the folio it shared (folio_try_dup_anon_rmap_ptes() / _pmd()), and nothing sets it
       again when the other process exits or unmaps: only a write fault that reuses the page, or a new
       page (a first touch, a COW copy), sets it."""),
])

#: "once shared, stays shared" for a page of a large folio, as each kernel's reuse rule has it
#: (Era.large_reuse; only eras with PageAnonExclusive, v5.19+, ask the flag)
_EXCLUSIVE_LOST_REUSE = {
    "mm_id": "A write fault that reuses a page of the folio sets the flag on that page again (mm/memory.c: "
             "do_wp_page()); since v6.15 a page of a PTE-mapped large folio is reused when no other process "
             "maps the folio and refcount == large mapcount (__wp_can_reuse_large_anon_folio()).",
    "refcount": "A write fault that reuses a page sets the flag on that page again (mm/memory.c: do_wp_page()); "
                "this kernel reuses a page of a large folio only when the folio's refcount is 1.",
    "never": "This kernel never reuses a page of a large folio on a write fault (it copies it), so only a new "
             "page carries the flag after fork().",
    "mapcount": "",
}


def _exclusive_lost(era):
    e = _era(era)
    return Misconception(
        "large_exclusive_lost", "a page of a large folio, once shared, stays shared",
        "PageAnonExclusive is kept per page of a large folio: the fault that allocated the folio set it (on "
        "every page of a PTE-mapped folio; a PMD-mapped THP keeps it on its head page), fork() cleared it on "
        "every page it shared. " + _EXCLUSIVE_LOST_REUSE.get(e.large_reuse, "")
        + " Which of these happened last to this page?")


_MPROTECT_RULE = {
    "none": "In this kernel mprotect() never makes a private anonymous PTE writable (can_change_pte_writable() "
            "came in v6.0): the next write faults.",
    "dirty": "In this kernel mprotect() makes a PTE writable at once only for a page that is PageAnonExclusive "
             "and dirty (mm/mprotect.c: can_change_pte_writable(), v6.0).",
    "exclusive": "mprotect() makes a PTE writable at once only for a page that is PageAnonExclusive "
                 "(mm/mprotect.c: can_change_pte_writable(), v6.2); a page that fork() shared lost that flag, "
                 "even if the other process has exited since.",
}


def _mprotect_restores(era):
    e = _era(era)
    return Misconception(
        "mprotect_restores_write", "mprotect(PROT_READ|PROT_WRITE) makes the PTE writable again",
        "mprotect() gives the VMA back its write permission; the page-table entry is another matter. "
        + _MPROTECT_RULE[e.mprotect_upgrade] + " Otherwise the PTE stays read-only and the next write "
        "takes a write fault.")


def _fm(key):
    return FOLIO_MISCONCEPTIONS[key]


def _mappers(ctx):
    run = ctx.run
    return [x for x in ("P", "C", "G") if run.page(x, "a").present] if hasattr(run, "env") else []


def _check_large(learner, truth, ctx):
    if not isinstance(learner, int):
        return None
    run, key = ctx.run, ctx.part.key
    info = run.page(*key) if key else None
    if info is None or not info.present:
        return None
    nmaps = len(_mappers(ctx))
    if info.entire_mapcount and learner == truth + 511 * info.entire_mapcount:
        return _fm("pmd_counts_pages")
    if learner == nmaps and truth != nmaps:
        return _fm("mapcount_per_process")
    return None


def _check_entire(learner, truth, ctx):
    """An entire mapcount that also counted the PTE mappings: the folio's
    total mapcount, or the PMDs plus this page's PTEs."""
    if not isinstance(learner, int) or learner <= truth:
        return None
    info = _now(ctx)
    if info is None or not info.present or info.large_mapcount is None:
        return None
    if learner in (info.large_mapcount, info.mapcount):
        return _fm("entire_counts_ptes")
    return None


def _split_pmd(ctx):
    """Is the asked page a page of a large folio that this process maps by
    PTEs (its PMD split, or an mTHP)?"""
    try:
        info = ctx.run.page(*ctx.part.key)
    except Exception:
        return False
    return info.present and info.nr_pages > 1 and not info.pmd_mapped


def _check_order(learner, truth, ctx):
    if learner == 9 and truth == 0:
        return _fm("thp_copied_whole")
    if learner == 0 and truth == 9:
        if ctx.q.era.thp_cow == "copy_huge" and "write" in _verbs(ctx)[0]:
            return _fm("thp_split_in_old_era")
        if _split_pmd(ctx):
            # the learner took the PMD split for a split of the folio
            return _fm("pmd_gone_thp_gone")
    return None


def _check_pmd(learner, truth, ctx):
    if learner and not truth:
        return _fm("split_keeps_pmd")
    if truth and not learner:
        # fork(), the child's exit or munmap keep the parent's PMD: the one idea that predicts a split here
        verbs, gups = _verbs(ctx)
        if "fork" in verbs and not gups:
            return _fm("fork_splits_pmd")
    return None


def _check_shared(learner, truth, ctx):
    if truth and not learner:
        return _fm("maybe_shared_per_page")
    return None


def _before(ctx):
    """The asked page just before the last step: a generated program's line,
    or the scenario's previous step (predict())."""
    run, part = ctx.run, ctx.part
    lines = getattr(run, "lines", None)
    if lines and getattr(part, "line", None) is not None:
        return lines[part.line].before
    results = getattr(run, "results", None)
    if results and len(results) >= 2 and part.key:
        return results[-2].pages.get(part.key[0])
    return None


def _verbs(ctx):
    """The program's verbs, or a scenario's, read from its trace
    (:func:`mmkit.exercises.misconceptions.scenario_verbs`)."""
    if ctx.verbs:
        return list(ctx.verbs), list(getattr(ctx, "gups", ()) or ())
    k = getattr(ctx.run, "kernel", None)
    if k is None:
        return [], []
    return _mis.scenario_verbs(k)


def _now(ctx):
    """The asked page at the end (PageInfo), or None."""
    try:
        return ctx.run.page(*ctx.part.key) if ctx.part.key else None
    except Exception:
        return None


def _check_refcount_large(learner, truth, ctx):
    """A wrong refcount of a page of a large folio: the folio's refcount."""
    if not isinstance(learner, int) or not isinstance(truth, int):
        return None
    info = _now(ctx)
    pins = ctx.pins
    if pins and learner == truth + 1023 * pins:
        return _fm("large_pin_bias")
    if pins and learner == truth - pins:
        return _fm("large_pin_not_counted")
    if info is not None and info.entire_mapcount and learner == truth + 511 * info.entire_mapcount:
        return _fm("pmd_counts_pages")
    if info is not None and learner == info.mapcount and truth != info.mapcount:
        return _fm("large_page_own_refcount")
    if learner == 1 and truth > 1:
        return _fm("large_page_own_refcount")
    return None


def _check_mapcount_large(learner, truth, ctx):
    """A wrong mapcount of a page of a large folio: this page's own mappings."""
    if not isinstance(learner, int):
        return None
    info = _now(ctx)
    if info is None:
        return None
    if info.large_mapcount is not None and learner == info.large_mapcount and learner != truth:
        return _fm("page_mapcount_is_large")
    return None


def _check_exclusive_large(learner, truth, ctx):
    """A wrong PageAnonExclusive of a page of a large folio (eras with the flag only ask it)."""
    if learner and not truth:
        from .misconceptions import _answered
        info = _now(ctx)
        m = _answered(ctx, "mapcount", info.mapcount if info is not None else None)
        if m == 1 and "fork" in _verbs(ctx)[0]:
            return _fm("large_exclusive_by_mapcount")
        return None
    if truth and not learner:
        if ctx.pins:
            return _mis.MISCONCEPTIONS["pinned_not_exclusive"]
        if "fork" in _verbs(ctx)[0]:
            return _exclusive_lost(ctx.q.era)
    return None


def _check_fault_large(learner, truth, ctx):
    """A wrong fault on a page that was in a large folio just before the write."""
    e = ctx.q.era
    if truth == "no fault" and learner == "reuse":
        return _mis.MISCONCEPTIONS["writable_no_fault"]      # says nothing about small pages
    if learner == "no fault" and ctx.last_gup_ro:
        return _mis.MISCONCEPTIONS["unshare_is_write"]
    if learner == "copy" and truth == "reuse":
        if e.large_reuse == "mm_id":
            return _fm("pte_mapped_never_reused")
        return None
    if learner == "reuse" and truth == "copy":
        # the rule of the question's kernel (mmkit/era.py, Era.large_reuse), not today's
        return _fm({"mm_id": "reuse_while_folio_shared", "never": "large_reuse_never_then",
                    "refcount": "large_reuse_last_mapping",
                    "mapcount": "large_reuse_mapcount_then"}.get(e.large_reuse, "reuse_while_folio_shared"))
    if learner == "no fault" and truth in ("reuse", "copy"):
        verbs, gups = _verbs(ctx)
        last_fork = max((i for i, v in enumerate(verbs) if v == "fork"), default=None)
        after = verbs[last_fork + 1:] if last_fork is not None else verbs
        if "mprotect" in after and not gups:
            return _mprotect_restores(e)
        if last_fork is not None and "mprotect" not in after and "pin" not in after:
            return _fm("fork_write_protects_large")
        return None
    return None


def _check_pincount_large(learner, truth, ctx):
    """A wrong pin count of a page of a large folio: the folio's pin counter, one per pin."""
    if isinstance(learner, int) and truth and learner == truth * 1024:
        return _fm("large_pin_bias")
    return None


#: part type -> the large-folio check that replaces the small-page one
_LARGE_CHECKS = {"refcount": _check_refcount_large, "mapcount": _check_mapcount_large,
                 "exclusive": _check_exclusive_large, "fault": _check_fault_large,
                 "pincount": _check_pincount_large}

#: what a wrong part about a page of a large folio is told when no misconception fits
LARGE_GENERIC = {
    "refcount": "Every page of a large folio shows the folio's refcount: count one per PTE that maps any page "
                "of the folio and one per PMD, in every process, and one per pin (a pin adds 1 on a large "
                "folio). A page that a COW fault copied is a new 4 KiB page with counters of its own.",
    "mapcount": "Count the mappings of this very page: its own PTEs, in every process, plus the PMDs that map "
                "the whole folio. The PTEs of the folio's other pages do not count here.",
    "exclusive": "PageAnonExclusive is kept per page of the folio: set when the page was made for one process "
                 "(the fault that allocated the folio, a COW copy) or reused by a write fault, cleared on "
                 "every page fork() shares.",
    "fault": "Just before the write, how does this process map that page: not at all, by a writable entry, or "
             "read-only by a PMD or a PTE? A read-only PMD goes to do_huge_pmd_wp_page(), a read-only PTE into "
             "a large folio to this kernel's large-folio reuse rule (hint 2).",
    "pincount": "Count the FOLL_PIN pins still held on any page of the folio: a large folio keeps one pin "
                "counter for all its pages.",
}


def _large_page(part, ctx):
    """Is the part about a page of a large folio (for a fault: just before
    the write; else at the end)?"""
    try:
        info = _before(ctx) if part.type == "fault" else _now(ctx)
    except Exception:
        info = None
    return info is not None and info.present and not info.zero_page and info.nr_pages > 1


def _large_first(diagnose):
    """``diagnose`` that sends a part about a page of a large folio to the
    large-folio checks only: the small-page misconceptions (a pin weighs
    1024, reuse at refcount 1, the page cache holds a reference...) are false
    there, and an era alternative about small pages explains nothing about
    a large folio."""
    def check(part, learner, truth, ctx):
        if part.type in _LARGE_CHECKS and _large_page(part, ctx):
            return _LARGE_CHECKS[part.type](learner, truth, ctx)
        return diagnose(part, learner, truth, ctx)
    check.large_first = True
    return check


def _guidance(part, ctx):
    """The counting guidance for a wrong part no misconception explains:
    the large-folio one for a page of a large folio."""
    if part.type in LARGE_GENERIC and part.key is not None and _large_page(part, ctx):
        return LARGE_GENERIC[part.type]
    return None


def _register_checks():
    """Add the large-folio part types to the misconception diagnosis, route
    parts about pages of large folios to the large-folio checks and guidance."""
    for mod in (_mis, _question):
        if not getattr(mod.diagnose, "large_first", False):
            mod.diagnose = _large_first(mod.diagnose)
    if _guidance not in _question.GUIDANCE:
        _question.GUIDANCE.append(_guidance)
    fc = _mis._FIELD_CHECKS
    if fc.get("large_mapcount") is _check_large:
        return
    fc["large_mapcount"] = _check_large
    fc["total_mapcount"] = _check_large
    fc["entire_mapcount"] = _check_entire
    fc["order"] = _check_order
    fc["pmd_mapped"] = _check_pmd
    fc["maybe_shared"] = _check_shared
    fc["folio_pincount"] = _check_pincount_large
    g = _question.GENERIC
    g.setdefault("large_mapcount", "Count every page-table entry that maps any page of the folio, in every "
                 "process: a PMD counts 1, each PTE counts 1.")
    g.setdefault("total_mapcount", g["large_mapcount"])
    g.setdefault("entire_mapcount", "Count the PMDs that map the whole folio, in every process.")
    g.setdefault("order", "Is the page still part of the large folio, or did a fault give this process a "
                 "4 KiB copy (order 0)?")
    g.setdefault("pmd_mapped", "Which operations split a PMD into 512 PTEs? mprotect, munmap or MADV_DONTNEED of "
                 "part of the THP, a COW fault on it (since v5.8), a fork() of a THP that may be pinned (since "
                 "v5.9), unsharing or pinning a shared THP.")
    g.setdefault("maybe_shared", "folio_maybe_mapped_shared() is about the whole folio: does a second process map "
                 "any page of it?")
    g.setdefault("folio_pincount", "Count the FOLL_PIN pins held on any page of the folio.")


# -- drawing programs -----------------------------------------------------------------------
class FolioBuilder(Builder):
    """A :class:`~mmkit.exercises.kinds.Builder` whose lines are :class:`FolioOp`."""

    op_class = FolioOp

    def finfo(self, X, page=0):
        return self.k.page(self.env[X], self.env["a"] + page * P)


PAGES = (0, 1, 2)


def _setup(b):
    mthp = _era(b.era).mthp and b.rng.random() < 0.45
    b.nr = 16 if mthp else 512
    if mthp:
        b.do("thp_set", "64kB", "always")
    else:
        b.do("thp_enabled", "always")
    b.do("spawn", "P")
    b.do("mmap_n", "P", "a", b.nr)
    b.write("P")


def _m_write(b):
    x = _pick(b, b.mappers())
    if x is None:
        return False
    b.write(x, "a", b.rng.choice(PAGES))
    return True


def _m_read(b):
    x = _pick(b, b.mappers())
    if x is None:
        return False
    pg = b.rng.choice(PAGES)
    if pg:
        b.do("read", x, "a", pg)
    else:
        b.do("read", x, "a")
    return True


def _m_munmap_half(b):
    x = _pick(b, [x for x in ("C", "G") if b.maps(x)])
    if x is None or getattr(b, "halved", set()) & {x}:
        return False
    b.halved = getattr(b, "halved", set()) | {x}
    b.do("munmap_n", x, "a", b.nr // 2, b.nr // 2)
    return True


def _m_dontneed(b):
    x = _pick(b, b.mappers())
    if x is None or getattr(b, "dontneed", False):
        return False
    b.dontneed = True
    n = b.rng.choice([b.nr // 4, b.nr // 2])
    b.do("dontneed", x, "a", b.nr - n, n)
    return True


def _m_fork(b):
    if "C" not in b.env and b.maps("P"):
        b.do("fork", "P", "C")
        return True
    if b.difficulty >= 3 and "C" in b.env and "G" not in b.env and b.maps("C"):
        b.do("fork", "C", "G")
        return True
    return False


from .kinds import MOVES as _MOVES  # noqa: E402

_FOLIO_MOVES = dict(_MOVES)
_FOLIO_MOVES.update({"write": _m_write, "read": _m_read, "munmap_half": _m_munmap_half, "dontneed": _m_dontneed,
                     "fork": _m_fork})


def _draw_folio_moves(b, weights, n):
    names = list(weights)
    w = [weights[x] for x in names]
    for _ in range(n):
        for _ in range(12):
            m = b.rng.choices(names, w)[0]
            if _FOLIO_MOVES[m](b):
                break


class FolioKind(Kind):
    """A :class:`~mmkit.exercises.kinds.Kind` drawing with :class:`FolioBuilder`."""

    def draw(self, rng, era, difficulty, ask):
        b = FolioBuilder(rng, era, difficulty)
        self.setup(b)
        lo, hi = self.length[difficulty]
        if self.before is not None:
            self.before(b)
        _draw_folio_moves(b, self.moves, rng.randint(lo, hi))
        got = ask.finish(b)
        if got is None:
            return None
        return b, got


# -- parts and asks ---------------------------------------------------------------------------
_FIELD_OF = {"large_mapcount": "large_mapcount", "total_mapcount": "large_mapcount",
             "entire_mapcount": "entire_mapcount", "order": "order", "pmd_mapped": "pmd_mapped",
             "maybe_shared": "maybe_mapped_shared", "folio_pincount": "folio_pincount"}

#: the first kernel with the field ``_large_mapcount`` (05c5323b2a34 "mm: track mapcount of large
#: folios in single value", posted April 2024, v6.10); before it the kernel added the folio's total
#: mapcount up when asked: total_mapcount() (compound_mapcount + the per-page _mapcounts, minus the
#: PageDoubleMap offset in v5.x), later folio_mapcount() -> folio_total_mapcount()
LARGE_MAPCOUNT_SINCE = (6, 10)


def era_has(era, field):
    """Does the kernel of ``era`` have what part type ``field`` asks about?

    ``large_mapcount``: the ``_large_mapcount`` field (v6.10; older eras are
    asked the same number as ``total_mapcount``, which every era computes);
    ``exclusive``: PageAnonExclusive (v5.19); ``maybe_shared``:
    folio_maybe_mapped_shared() and the MM-ID slots (v6.15).  Every other
    part type is asked in every era."""
    e = _era(era)
    if field == "large_mapcount":
        return (e.version or LARGE_MAPCOUNT_SINCE) >= LARGE_MAPCOUNT_SINCE
    if field == "total_mapcount":
        return not era_has(e, "large_mapcount")
    if field == "exclusive":
        return e.anon_exclusive
    if field == "maybe_shared":
        return e.mm_id
    return True


def _fpart(b, X, field=None, page=0, name=None):
    """A large-folio part of ``X``'s page ``page``, named as ``b``'s era has
    it: ``large_mapcount`` becomes ``total_mapcount`` before v6.10; None
    for a field the era does not have.  ``_fpart(X, field, page)`` (no
    builder) makes the part as asked, for any era."""
    if isinstance(b, str):              # _fpart(X, field, page=0, name=None)
        b, X, field, page, name = None, b, X, (field if field is not None else 0), (page or None)
    if b is not None:
        if field == "large_mapcount" and not era_has(b.era, field):
            field = "total_mapcount"
        if not era_has(b.era, field):
            return None
    who = f"{X}'s page at a" + (f" + {page}*4096" if page else "")
    prompts = {"large_mapcount": f"large_mapcount (_large_mapcount) of the folio {who} belongs to",
               "total_mapcount": f"total mapcount of the folio {who} belongs to: its PMD and PTE mappings of "
                                 "any of its pages, in every process (this kernel adds it up in "
                                 "total_mapcount(); _large_mapcount keeps it since v6.10)",
               "entire_mapcount": f"entire mapcount (PMD mappings of the whole folio; compound_mapcount in "
                                  f"v5.x) of the folio {who} belongs to",
               "order": f"order of the folio {who} belongs to (9: 2 MiB, 4: 64 KiB, 0: a 4 KiB page)",
               "pmd_mapped": f"is {who} mapped by a PMD (not a PTE)?",
               "maybe_shared": f"is the folio {who} belongs to 'maybe mapped shared' "
                               "(folio_maybe_mapped_shared())?",
               "folio_pincount": f"pins counted by the folio {who} belongs to (its own pin counter, _pincount)"}
    attr = _FIELD_OF[field]

    def fn(run):
        info = run.page(X, "a", page)
        if not info.present:
            return None
        return getattr(info, attr)
    base = field if X == "P" and not page else f"{X}_{field}" + (f"_{page}" if page else "")
    return FolioPart(name or base, field, fn, key=(X, "a", page), prompt=prompts[field])


def _cpart(b, X, field, page=0):
    """A page counter part (:func:`~mmkit.exercises.kinds._counter`), None
    for a field ``b``'s era does not have (PageAnonExclusive before v5.19)."""
    if not era_has(b.era, field):
        return None
    return _counter(X, "a", field, page=page)


def _some(parts):
    return [p for p in parts if p is not None]


def _large(b, X="P", page=0):
    i = b.finfo(X, page) if b.maps(X) else None
    return i is not None and i.present and i.nr_pages > 1


def _ask_shape(b):
    if b.nr != 512 or not b.maps("P") or not b.finfo("P").present:
        return None
    prim = _fpart(b, "P", "pmd_mapped")
    others = [_fpart(b, "P", "order"), _counter("P", "a", "mapcount")]
    if _large(b):
        others += [_fpart(b, "P", "entire_mapcount"), _fpart(b, "P", "large_mapcount")]
    return prim, _some(others), ("After the last line, is P's first page of the THP still mapped by the PMD?",
                                 "After the last line, how does P map the THP's first page?")


def _ask_fault(b):
    xs = [x for x in b.mappers() if _large(b, x)]
    if not xs:
        return None
    w = b.rng.choice(xs)
    pg = b.rng.choice(PAGES)
    b.write(w, "a", pg)
    prim = _fault(b, -1, w)
    prim.key = (w, "a", pg)
    others = [_fpart(b, w, "order", pg)]
    for x in ("P", "C", "G"):
        if x != w and b.maps(x) and b.finfo(x).present and b.finfo(x).nr_pages > 1:
            others.append(_fpart(b, x, "large_mapcount"))
            others.append(_fpart(b, x, "maybe_shared"))
    if b.maps("P") and w != "P":
        others.append(_fpart(b, "P", "pmd_mapped"))
    return prim, _some(others), (f"{w} writes page {pg} of the folio. Which write fault, if any, does it take?",
                                 f"{w} writes page {pg} of the folio. Which write fault, if any, does it take, "
                                 "and what state follows?")


def _ask_counters(b):
    if not _large(b):
        return None
    prim = _fpart(b, "P", "large_mapcount")
    others = [_fpart(b, "P", "entire_mapcount"), _counter("P", "a", "mapcount"), _counter("P", "a", "refcount"),
              _fpart(b, "P", "folio_pincount"), _fpart(b, "P", "maybe_shared")]
    return prim, _some(others), ("After the last line, what is the total mapcount of the large folio P maps at a?",
                                 "After the last line, what are the counters of the large folio P maps at a?")


def _ask_shared(b):
    if not _large(b):
        return None
    e = _era(b.era)
    if not e.mm_id and not e.anon_exclusive:
        # neither MM IDs (v6.15) nor PageAnonExclusive (v5.19): ask how P maps it instead
        return _ask_shape(b)
    if not e.mm_id:                     # no MM IDs before v6.15: ask what the page itself records
        prim = _cpart(b, "P", "exclusive")
        return prim, _some([_fpart(b, "P", "large_mapcount"), _counter("P", "a", "mapcount")]), \
            "After the last line, is P's page of the large folio PageAnonExclusive (this era has no MM IDs)?"
    prim = _fpart(b, "P", "maybe_shared")
    others = [_fpart(b, "P", "large_mapcount"), _cpart(b, "P", "exclusive"), _counter("P", "a", "mapcount")]
    return prim, _some(others), "After the last line, is P's large folio 'maybe mapped shared' (MM-ID tracking)?"


def _cow_first(b):
    if b.rng.random() < 0.8:
        _draw_folio_moves(b, dict(pin_ro=1, pin_rw=1, mprotect=1, dontneed=1, read=1), b.rng.randint(0, 1))
        b.do("fork", "P", "C")


# -- hints ------------------------------------------------------------------------------------
_LINE_QUESTION = {
    "fork": "what does fork() do to the parent's PMD or PTEs, to the child's, and to PageAnonExclusive?",
    "write": "which fault, if any, does this write take, and which page does the writer map after it?",
    "read": "does this read fault at all, and does it change any counter?",
    "exit": "which mappings and references go with the process?",
    "munmap": "which pages does it unmap, and what must happen to a PMD that maps only part of the range?",
    "dontneed": "which pages does it zap, and what must happen to a PMD that maps only part of the range?",
    "mprotect": "does it split a PMD, and does the entry become writable again at once?",
    "pin": "what does a pin of a page of a large folio add, and to which counters?",
    "unpin": "what does the unpin give back?",
}

_VERB_OF = {"fork": "fork", "write": "write", "read": "read", "exit": "exit", "munmap_n": "munmap",
            "dontneed": "dontneed", "mprotect": "mprotect", "pin": "pin", "unpin": "unpin"}


def _rules(era, types, verbs=()):
    """Hint 2: the rules of ``era`` that the asked part types (and the
    program's verbs) need."""
    e = _era(era)
    out = []
    if "fault" in types or "order" in types:
        out.append({"copy_huge": "In this kernel (v5.7) a write to a shared PMD-mapped THP copies the whole THP "
                                 "into a new one (do_huge_pmd_wp_page()).",
                    "split_mapcount": "A write to a shared PMD-mapped THP splits the PMD and copies one 4 KiB page "
                                      "(v5.8+, reuse only when no page is mapped twice).",
                    "split_exclusive": "A write to a read-only PMD-mapped THP reuses it if its head page is "
                                       "PageAnonExclusive or its refcount is 1, else splits the PMD and copies one "
                                       "4 KiB page."}[e.thp_cow])
        out.append({"mm_id": "A write to a read-only PTE into a large folio reuses the page only if no other "
                             "process maps the folio and refcount == large mapcount (v6.15, MM IDs).",
                    "never": "This kernel never reuses a page of a PTE-mapped large folio: a write to a read-only "
                             "PTE copies 4 KiB.",
                    "refcount": "This kernel reuses a page of a PTE-mapped large folio only when the folio's "
                                "refcount is 1.",
                    "mapcount": "This kernel reuses a page of a large folio only if no page of the folio is "
                                "mapped twice (reuse_swap_page())."}[e.large_reuse])
        if "mprotect" in verbs:
            out.append({"none": "mprotect() never makes a private anonymous PTE writable again in this kernel.",
                        "dirty": "mprotect() makes a PTE writable again only for a dirty PageAnonExclusive page.",
                        "exclusive": "mprotect() makes a PTE writable again only for a PageAnonExclusive page."}
                       [e.mprotect_upgrade])
    if types & {"large_mapcount", "total_mapcount", "refcount", "mapcount", "entire_mapcount"}:
        out.append("The folio's total mapcount counts every PTE and every PMD mapping any page of it (a PMD "
                   "counts 1); the entire mapcount the PMDs only; a page's mapcount its own PTEs plus the PMDs; "
                   "the refcount one per PTE or PMD of any page, plus pins.")
    if types & {"folio_pincount", "refcount", "pincount"}:
        out.append("A pin on a large folio adds 1 to its refcount and 1 to its pin counter.")
    if "exclusive" in types:
        out.append("PageAnonExclusive is per page: set for a page made for one process or reused by a write "
                   "fault, cleared on every page fork() shares.")
    if "maybe_shared" in types:
        out.append("'Maybe mapped shared' is one bit per folio: does a second MM map any page of it?")
    if "pmd_mapped" in types:
        out.append("A PMD is split by mprotect(), munmap() or MADV_DONTNEED of part of the THP, by a COW fault "
                   "on a shared THP (v5.8+), by fork() of a THP that may be pinned (v5.9+), and by unsharing it.")
    return " ".join(out)


def hints_for(q, b=None):
    """Three hints for a ``folio`` question ``q``, specific to its program,
    parts and era, none stating an answer: 1 asks about the lines that
    matter, 2 gives the rules the asked parts need in ``q``'s era, 3 shows
    the asked page just before the first asked line with every asked field
    left out."""
    from .. import notation
    prog, parts = q.source, q.parts
    ops = prog.ops
    types = {p.type for p in parts}
    qs = []
    for i, op in enumerate(ops[4:], 4):
        v = _VERB_OF.get(op.verb)
        if v is not None:
            ask = _LINE_QUESTION[v]
            if v == "fork" and not era_has(q.era, "exclusive"):      # no PageAnonExclusive before v5.19
                ask = "what does fork() do to the parent's PMD or PTEs, and to the child's?"
            qs.append(f"line {line_no(i)} (`{op.code()}`): {ask}")
    h1 = ("Take the lines after P's first write one at a time. " + " ".join(qs[:4])
          if qs else "Follow the folio from P's first write on: which lines touch it?")
    h2 = _rules(q.era, types, {op.verb for op in ops})
    key = next((p.key for p in parts if p.key is not None), ("P", "a", 0))
    lines = [p.line for p in parts if p.line is not None]
    n = min(max(min(lines) if lines else len(ops) - 1, 3), len(ops) - 1)
    run = prog.run(q.era, upto=n, trace="off")
    info = run.page(*key)
    who = f"{key[0]}'s page at a" + (f" + {key[2]}*4096" if len(key) > 2 and key[2] else "")
    where = f"line {line_no(n)} (`{ops[n].code()}`)"
    if not info.present:
        return [h1, h2, f"Before {where}, {who} is not mapped. What does that line do?"]
    shown = []
    if not types & {"order"}:
        shown.append(f"in an order-{info.order} folio" if info.nr_pages > 1 else "a 4 KiB page (order 0)")
    if info.nr_pages > 1 and "pmd_mapped" not in types:
        shown.append("mapped by a PMD" if info.pmd_mapped else "mapped by a PTE")
    sym = []
    level = bool(types & {"pmd_mapped", "order"})    # r and m tell a PMD from 512 PTEs: left out then
    if "refcount" not in types and not level:
        sym.append(f"r{info.refcount}")
    if "mapcount" not in types and not level:
        sym.append(f"m{info.mapcount}")
    if not types & {"pincount", "folio_pincount"}:
        sym.append(f"p{info.pincount}")
    if "exclusive" not in types and era_has(q.era, "exclusive") and info.exclusive:
        sym.append("AE")
    if "fault" not in types:
        sym.append(notation.pte_bits(info.writable))
    used = [s[0] if s[0] in "rmp" else s for s in sym]
    key_text = notation.key_for([u for u in used if u in ("r", "m", "p", "AE", "W", "RO")])
    asked = ", ".join(sorted(types))
    return [h1, h2, f"Before {where}, {who} is " + ", ".join(shown) + (": " + " ".join(sym) if sym else "")
            + f" ({key_text}; what you are asked -- {asked} -- is left out). What does that line change?"]


FOLIO_KIND = FolioKind(
    "folio", "09-large-folios", "large folios: PMD or PTE, large mapcount, COW of a THP and an mTHP", [
        "Draw the folio: which process maps which of its pages, by one PMD or by PTEs? Which lines split a PMD "
        "(mprotect, munmap or MADV_DONTNEED of part of it, a COW fault since v5.8, a fork() of a THP that may "
        "be pinned since v5.9, a pin of a shared THP), and which gave a process its own 4 KiB copy?",
        "The folio's total mapcount (_large_mapcount since v6.10) counts every PTE and every PMD mapping any page "
        "of the folio (a PMD counts 1), the entire mapcount the PMDs only, a page's mapcount its own PTEs plus "
        "the PMDs. A pin adds 1 to the refcount and 1 to _pincount. A write to a shared THP splits the PMD and "
        "copies 4 KiB (since v5.8); a page of a PTE-mapped folio is reused only if no other process maps the "
        "folio and refcount == large mapcount (v6.15, MM IDs)."],
    asks=[Ask("shape", _ask_shape, [True, False]),
          Ask("fault", _ask_fault, ["reuse", "copy", "no fault"]),
          Ask("large", _ask_counters, [lambda v: isinstance(v, int) and v <= 2,
                                       lambda v: isinstance(v, int) and 3 <= v <= 64,
                                       lambda v: isinstance(v, int) and v > 64]),
          Ask("shared", _ask_shared, [True, False])],
    moves=dict(fork=3, write=3, read=1, exit=1, munmap_half=1, dontneed=1, mprotect=1, pin_rw=1, pin_ro=1,
               unpin=1),
    setup=_setup, before=_cow_first, forms=("predict",),
    length={1: (0, 1), 2: (1, 3), 3: (2, 5)})
FOLIO_KIND.hints_for = hints_for
#: a seed is a new exercise: seeds in one block of this many draw distinct programs
FOLIO_KIND.distinct_block = 100
#: secondary parts with a rare answer are offered first (see kinds._choose_parts)
FOLIO_KIND.rare_first = True

_register_checks()
KINDS.setdefault("folio", FOLIO_KIND)
