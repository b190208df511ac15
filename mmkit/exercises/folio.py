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
from .question import Part

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
    large-folio answers: ints (``large_mapcount``, ``entire_mapcount``,
    ``order``, ``folio_pincount``) and booleans (``pmd_mapped``,
    ``maybe_shared``)."""

    INTS = ("large_mapcount", "entire_mapcount", "order", "folio_pincount")
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
       """One PMD maps the whole 2 MiB folio and counts once: +1 in _entire_mapcount and +1 in
       _large_mapcount (mm/rmap.c: __folio_add_rmap(), RMAP_LEVEL_PMD).  Only PTEs count one per page: a
       THP split into 512 PTEs (__split_huge_pmd_locked()) adds 512 to the large mapcount."""),
    _m("mapcount_per_process", "mappings counted per process",
       """_large_mapcount counts page-table entries, not processes: every PTE that maps any page of the
       folio counts 1, and every PMD counts 1 (include/linux/mm.h: folio_large_mapcount()).  A process
       mapping 16 pages of an mTHP by PTEs adds 16."""),
    _m("entire_counts_ptes", "PTE mappings counted in the entire mapcount",
       """_entire_mapcount counts only mappings of the whole folio by one PMD (folio_entire_mapcount());
       a split PMD or a PTE-mapped mTHP leaves it at 0 for that process."""),
    _m("large_pin_bias", "a pin weighed 1024 on a large folio",
       """A large folio has its own _pincount (include/linux/mm.h: folio_has_pincount()): a FOLL_PIN adds 1
       to the refcount and 1 to _pincount (mm/gup.c: try_grab_folio()).  The 1024 bias
       (GUP_PIN_COUNTING_BIAS) is only for small folios, which have no _pincount."""),
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
       """That was the rule from Barry Song's 2024 "mm: prohibit the last subpage from reusing the entire
       large folio" until v6.15, and the small-page rule "reuse at refcount 1" never fits a large folio:
       its refcount is the folio's, one per PTE that maps any of its pages.  Since v6.15 ("mm:
       Copy-on-Write (COW) reuse support for PTE-mapped THP", __wp_can_reuse_large_anon_folio() in
       mm/memory.c) a write fault reuses a page of a PTE-mapped large folio when the MM-ID slots say no
       other process maps the folio and every reference is a mapping (refcount == large mapcount)."""),
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
       """In this kernel (from 09854ba94c6a, v5.9, until Barry Song's 2024 "mm: prohibit the last subpage from
       reusing the entire large folio") do_wp_page() reuses a page of a large folio only when the folio's
       refcount is 1 (wp_page_reuse() after the refcount check; page_count() of any page of a large folio
       is the folio's): only when this PTE is the folio's last mapping and nothing else holds it.  Another
       PTE mapping any page of the folio, in this process or another, or a pin, means a copy."""),
    _m("large_reuse_never_then", "a page of a large folio reused in a kernel that never reuses one",
       """In this kernel (from Barry Song's 2024 "mm: prohibit the last subpage from reusing the entire large
       folio" until v6.15) wp_can_reuse_anon_folio() returns false for every large folio: a write fault on
       a read-only PTE mapping a page of a large folio always copies that 4 KiB page.  Reuse of a
       PTE-mapped large folio came back in v6.15 (__wp_can_reuse_large_anon_folio())."""),
    _m("large_reuse_mapcount_then", "a page of a large folio reused while some page of it is mapped twice",
       """In this kernel (up to v5.8) do_wp_page() asked reuse_swap_page(), which for a large folio reads
       page_trans_huge_map_swapcount(): the page is reused only if no page of the folio is mapped more
       than once.  A page of the folio still shared with another
       process means a copy."""),
    _m("maybe_shared_per_page", "\"maybe mapped shared\" read per page",
       """folio_maybe_mapped_shared() (include/linux/mm.h, v6.15) is per folio: it is true when a second mm
       maps any page of the folio, even if not this page.  With CONFIG_NO_PAGE_MAPCOUNT it is what pagemap
       reports as 'not exclusively mapped' for every page of the folio."""),
    _m("split_keeps_pmd", "the PMD survives",
       """An mprotect() of part of a PMD-mapped THP, an munmap or MADV_DONTNEED of part of it, a COW fault on
       it since v5.8, and a pin of a shared THP all split the PMD first (__split_huge_pmd()): the folio
       stays order 9, but that process maps it by 512 PTEs from then on."""),
    _m("pmd_gone_thp_gone", "a split PMD means a split folio",
       """Splitting a PMD (__split_huge_pmd()) only changes the page table: the 2 MiB folio stays one order-9
       folio, now mapped by PTEs.  Splitting the folio itself (split_folio(), the deferred split queue) is
       a separate step, taken under memory pressure for a partially mapped folio."""),
])


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
    if isinstance(learner, int) and learner > truth:
        return _fm("entire_counts_ptes")
    return None


def _check_order(learner, truth, ctx):
    if learner == 9 and truth == 0:
        return _fm("thp_copied_whole")
    if learner == 0 and truth == 9:
        if ctx.q.era.thp_cow == "copy_huge" and "write" in ctx.verbs:
            return _fm("thp_split_in_old_era")
        return _fm("pmd_gone_thp_gone")
    return None


def _check_pmd(learner, truth, ctx):
    if learner and not truth:
        return _fm("split_keeps_pmd")
    if truth and not learner:
        return _fm("pmd_gone_thp_gone")
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


def _check_refcount_large(prev):
    def check(learner, truth, ctx):
        f = ctx.folio
        if getattr(f, "large", False) and isinstance(learner, int) and ctx.pins:
            if learner == truth + 1023 * ctx.pins:
                return _fm("large_pin_bias")
        b = _before(ctx) if isinstance(learner, int) else None
        if (b is not None and b.present and b.nr_pages > 1 and learner == 1 and isinstance(truth, int)
                and truth > 1):
            return _fm("large_page_own_refcount")
        return prev(learner, truth, ctx)
    return check


def _check_fault_large(prev):
    def check(learner, truth, ctx):
        before = _before(ctx)
        if before is not None and before.present and before.nr_pages > 1:
            e = ctx.q.era
            if learner == "copy" and truth == "reuse" and e.large_reuse == "mm_id":
                return _fm("pte_mapped_never_reused")
            if learner == "reuse" and truth == "copy":
                # the rule of the question's kernel (mmkit/era.py, Era.large_reuse), not today's
                return _fm({"mm_id": "reuse_while_folio_shared", "never": "large_reuse_never_then",
                            "refcount": "large_reuse_last_mapping",
                            "mapcount": "large_reuse_mapcount_then"}.get(e.large_reuse,
                                                                        "reuse_while_folio_shared"))
        return prev(learner, truth, ctx)
    return check


def _large_first(diagnose):
    """``diagnose`` that asks the large-folio checks first for a fault or a
    refcount of a page that was in a large folio before the step: an era
    alternative about small pages (a pin, an mprotect round trip) may give
    the same numbers there but explains nothing about a large folio."""
    def check(part, learner, truth, ctx):
        if part.type in ("fault", "refcount"):
            try:
                b = _before(ctx)
            except Exception:
                b = None
            if b is not None and b.present and b.nr_pages > 1:
                m = (_check_fault_large if part.type == "fault" else _check_refcount_large)(
                    lambda *a: None)(learner, truth, ctx)
                if m is not None:
                    return m
        return diagnose(part, learner, truth, ctx)
    check.large_first = True
    return check


def _register_checks():
    """Add the large-folio part types to the misconception diagnosis, and let
    the refcount and fault checks know large folios first."""
    for mod in (_mis, _question):
        if not getattr(mod.diagnose, "large_first", False):
            mod.diagnose = _large_first(mod.diagnose)
    fc = _mis._FIELD_CHECKS
    if fc.get("large_mapcount") is _check_large:
        return
    fc["large_mapcount"] = _check_large
    fc["entire_mapcount"] = _check_entire
    fc["order"] = _check_order
    fc["pmd_mapped"] = _check_pmd
    fc["maybe_shared"] = _check_shared
    fc["refcount"] = _check_refcount_large(fc["refcount"])
    fc["fault"] = _check_fault_large(fc["fault"])
    g = _question.GENERIC
    g.setdefault("large_mapcount", "Count every page-table entry that maps any page of the folio, in every "
                 "process: a PMD counts 1, each PTE counts 1.")
    g.setdefault("entire_mapcount", "Count the PMDs that map the whole folio, in every process.")
    g.setdefault("order", "Is the page still part of the large folio, or did a fault give this process a "
                 "4 KiB copy (order 0)?")
    g.setdefault("pmd_mapped", "Which operations split a PMD into 512 PTEs? mprotect, munmap or MADV_DONTNEED of "
                 "part of the THP, a COW fault on it (since v5.8), unsharing or pinning a shared THP.")
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
_FIELD_OF = {"large_mapcount": "large_mapcount", "entire_mapcount": "entire_mapcount", "order": "order",
             "pmd_mapped": "pmd_mapped", "maybe_shared": "maybe_mapped_shared", "folio_pincount": "folio_pincount"}


def _fpart(X, field, page=0, name=None):
    who = f"{X}'s page at a" + (f" + {page}*4096" if page else "")
    prompts = {"large_mapcount": f"large_mapcount of the folio {who} belongs to",
               "entire_mapcount": f"entire_mapcount of the folio {who} belongs to",
               "order": f"order of the folio {who} belongs to (9: 2 MiB, 4: 64 KiB, 0: a 4 KiB page)",
               "pmd_mapped": f"is {who} mapped by a PMD (not a PTE)?",
               "maybe_shared": f"is the folio {who} belongs to 'maybe mapped shared'?",
               "folio_pincount": f"_pincount of the folio {who} belongs to"}
    attr = _FIELD_OF[field]

    def fn(run):
        info = run.page(X, "a", page)
        if not info.present:
            return None
        return getattr(info, attr)
    base = field if X == "P" and not page else f"{X}_{field}" + (f"_{page}" if page else "")
    return FolioPart(name or base, field, fn, key=(X, "a", page), prompt=prompts[field])


def _large(b, X="P", page=0):
    i = b.finfo(X, page) if b.maps(X) else None
    return i is not None and i.present and i.nr_pages > 1


def _ask_shape(b):
    if b.nr != 512 or not b.maps("P") or not b.finfo("P").present:
        return None
    prim = _fpart("P", "pmd_mapped")
    others = [_fpart("P", "order"), _counter("P", "a", "mapcount")]
    if _large(b):
        others += [_fpart("P", "entire_mapcount"), _fpart("P", "large_mapcount")]
    return prim, others, "After the last line, how does P map the THP's first page?"


def _ask_fault(b):
    xs = [x for x in b.mappers() if _large(b, x)]
    if not xs:
        return None
    w = b.rng.choice(xs)
    pg = b.rng.choice(PAGES)
    b.write(w, "a", pg)
    prim = _fault(b, -1, w)
    prim.key = (w, "a", pg)
    others = [_fpart(w, "order", pg)]
    for x in ("P", "C", "G"):
        if x != w and b.maps(x) and b.finfo(x).present and b.finfo(x).nr_pages > 1:
            others.append(_fpart(x, "large_mapcount"))
            others.append(_fpart(x, "maybe_shared"))
    if b.maps("P") and w != "P":
        others.append(_fpart("P", "pmd_mapped"))
    return prim, others, f"{w} writes page {pg} of the folio. What does the write fault do, and what follows?"


def _ask_counters(b):
    if not _large(b):
        return None
    prim = _fpart("P", "large_mapcount")
    others = [_fpart("P", "entire_mapcount"), _counter("P", "a", "mapcount"), _counter("P", "a", "refcount"),
              _fpart("P", "folio_pincount"), _fpart("P", "maybe_shared")]
    return prim, others, "After the last line, what are the counters of the large folio P maps at a?"


def _ask_shared(b):
    if not _large(b):
        return None
    if not _era(b.era).mm_id:           # no MM IDs before v6.15: ask what the page itself records
        prim = _counter("P", "a", "exclusive")
        return prim, [_fpart("P", "large_mapcount"), _counter("P", "a", "mapcount")], \
            "After the last line, is P's page of the large folio PageAnonExclusive (this era has no MM IDs)?"
    prim = _fpart("P", "maybe_shared")
    others = [_fpart("P", "large_mapcount"), _counter("P", "a", "exclusive"), _counter("P", "a", "mapcount")]
    return prim, others, "After the last line, is P's large folio 'maybe mapped shared' (MM-ID tracking)?"


def _cow_first(b):
    if b.rng.random() < 0.8:
        _draw_folio_moves(b, dict(pin_ro=1, pin_rw=1, mprotect=1, dontneed=1, read=1), b.rng.randint(0, 1))
        b.do("fork", "P", "C")


FOLIO_KIND = FolioKind(
    "folio", "09-large-folios", "large folios: PMD or PTE, large mapcount, COW of a THP and an mTHP", [
        "Draw the folio: which process maps which of its pages, by one PMD or by PTEs? Which lines split a PMD "
        "(mprotect, munmap or MADV_DONTNEED of part of it, a COW fault since v5.8, a pin of a shared THP), and "
        "which gave a process its own 4 KiB copy?",
        "_large_mapcount counts every PTE and every PMD mapping any page of the folio (a PMD counts 1), "
        "_entire_mapcount the PMDs only, a page's mapcount its own PTEs plus the PMDs. A pin adds 1 to the "
        "refcount and 1 to _pincount. A write to a shared THP splits the PMD and copies 4 KiB (since v5.8); a "
        "page of a PTE-mapped folio is reused only if no other process maps the folio and refcount == large "
        "mapcount (v6.15, MM IDs)."],
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

_register_checks()
KINDS.setdefault("folio", FOLIO_KIND)
