"""Why a wrong answer is wrong: the misconceptions behind typical mistakes.

A checker never prints the right answer.  It explains a wrong one by the
idea that most likely produced it.  Two kinds of evidence are used:

* **Other kernels.**  The same program is run again under an era with one
  rule flipped (``reuse_rule="mapcount"``: COW decided on the mapcount, as
  up to 5.8; ``fork_copies_maybe_pinned=False``: fork shares pinned pages,
  as before 5.9; the 5.9 preset: no unsharing for R/O pins).  If the
  learner's answer is what *that* kernel computes, the learner reasons
  with that kernel's rule.
* **Counting slips.**  A refcount that equals the mapcount, or that is off
  by exactly 1023 per pin, or by one per pipe buffer, names its own
  misconception (refcount vs mapcount, pinned vs referenced, ...).

A misconception is named only when the learner's answer is what it
predicts: for an era alternative, every part the alternative changes must
carry the alternative's value (the whole relevant answer, not one part; the
other parts' answers come from ``ctx.answer`` when the caller gives them,
else they are taken as right), and exactly one alternative may fit; for a
counting slip, the value the slip produces.  Otherwise nothing is named and
the caller gives its counting guidance.  Titles name the wrong idea and are
shown as "Misconception: ..."; messages state the rule and the kernel
function behind it, or ask a question, but print no value of the right
answer.
"""

from dataclasses import dataclass

from ..pageinfo import GUP_PIN_COUNTING_BIAS

__all__ = ["Misconception", "MISCONCEPTIONS", "diagnose", "ALTERNATIVES"]


#: how a misconception's title is shown, so that it does not read as a statement of fact
PREFIX = "Misconception: "


@dataclass(frozen=True)
class Misconception:
    """A named wrong idea and the explanation that corrects it.  ``title``
    states the wrong idea and always starts with :data:`PREFIX`."""

    key: str
    title: str
    explain: str

    def __post_init__(self):
        if not self.title.startswith(PREFIX):
            object.__setattr__(self, "title", PREFIX + self.title)


def _m(key, title, explain):
    return key, Misconception(key, title, " ".join(explain.split()))


MISCONCEPTIONS = dict([
    _m("mapcount_decides", "COW decided on the mapcount",
       """Your answer is what a kernel that decides copy-on-write on the mapcount computes (Linux up to
       5.8: do_wp_page() -> reuse_swap_page() reused a page mapped once).  A page mapped exactly once
       can still have other users that map nothing: a pipe buffer from vmsplice(), a GUP reference or
       pin, the page cache.  Since 5.9 do_wp_page() reuses a page that is not PageAnonExclusive only
       when wp_can_reuse_anon_folio() (mm/memory.c) finds the refcount at exactly 1: our own
       page-table entry and nobody else."""),
    _m("refcount_rule_in_old_era", "today's rule applied to an old kernel",
       """This question runs on an old kernel.  Up to 5.8 do_wp_page() decided reuse on the mapcount
       (reuse_swap_page(): mapcount + swap count == 1) and never looked at the refcount, so extra
       references such as pipe buffers did not force a copy.  Apply that era's rule."""),
    _m("fork_shares_pinned", "fork shares a pinned page",
       """Your answer assumes fork() shares a pinned page like any other.  Since 5.9 (70e806e4e645,
       today copy_present_ptes() -> copy_present_page() in mm/memory.c) a page that may be pinned
       (folio_maybe_dma_pinned(): refcount >= 1024) in an mm that has pinned (MMF_HAS_PINNED) is
       copied for the child at once (copy_present_page()), so that the device and the parent keep
       seeing the same memory.  Ask which page each process maps after fork(), and what fork() did
       to the parent's PTE."""),
    _m("no_unshare", "a read-only pin does not unshare",
       """Your answer is what 5.9 to 5.18 computed, before FAULT_FLAG_UNSHARE.  Since 5.19 a FOLL_PIN
       without FOLL_WRITE on an anonymous page that is not PageAnonExclusive first takes an unshare
       fault (mm/internal.h: gup_must_unshare(), mm/gup.c: follow_page_pte() returns -EMLINK), so that
       the pin and this process's later writes stay on one page."""),
    _m("mprotect_copies_pinned", "an mprotect() round trip makes the next write copy the pinned page",
       """Your answer is what 5.9 to 5.18 computed: mprotect(PROT_READ) then mprotect(PROT_READ|PROT_WRITE)
       left the PTE read-only, the next write faulted, and do_wp_page() decided on the refcount alone,
       which a pin raises above 1: the page was copied and the pin lost sight of the process's writes
       (the bug PageAnonExclusive fixed).  Since 5.19 an exclusive page keeps PageAnonExclusive through
       mprotect(), so a write fault on it reuses it (mm/memory.c: do_wp_page()); from 6.0/6.2 mprotect()
       even makes the PTE writable again at once (mm/mprotect.c: can_change_pte_writable())."""),
    _m("split_keeps_zero_pages", "splitting a THP keeps every page it still maps",
       """Your answer is what a kernel before v6.12 computed: the split cut the folio into 4 KiB folios
       and re-mapped every page that still had a PTE.  Since v6.12 (b1f202060afe) the split re-maps
       with RMP_USE_SHARED_ZEROPAGE (mm/huge_memory.c: __folio_split() -> remap_page()), and
       try_to_map_unused_to_zeropage() (mm/migrate.c) looks at each page's contents: a page that
       holds only zeros -- one the program never wrote, in memory the kernel handed out zeroed --
       gets the shared zero page instead, and its own page is freed.  Which pages did the program
       write?"""),
    _m("mapped_once_only_user", "mapped once means used once (refcount = mapcount)",
       """You gave the refcount the value of the mapcount.  The mapcount counts page-table entries
       only; the refcount counts every holder: each PTE, the page cache, every FOLL_GET reference
       (get_user_pages(), each pipe buffer filled by vmsplice()), and 1024 per FOLL_PIN on a small
       page.  "Mapped exactly once" does not mean "used by one": that is the point Linus made in the
       Dec 2021 thread."""),
    _m("pin_weighs_one", "a pin adds one to the refcount",
       """A FOLL_PIN on a small page adds GUP_PIN_COUNTING_BIAS = 1024 to the refcount, not 1
       (mm/gup.c: try_grab_folio()).  That bias is how folio_maybe_dma_pinned() can tell a pinned page
       from a merely referenced one without a separate pincount field."""),
    _m("forgot_references", "holders outside the page tables do not count",
       """Some holders of this page map nothing: a get_user_pages() reference or a pipe buffer filled by
       vmsplice() holds one reference each, until ref.put() or until the pipe buffer is read, and a
       FOLL_PIN holds 1024 until it is unpinned.  They count in the refcount although no page table
       shows them."""),
    _m("forgot_page_cache", "the page cache holds no reference",
       """A page in the page cache holds one reference for the cache itself (filemap_add_folio()),
       besides one per page-table entry that maps it.  folio_expected_ref_count() adds it for every
       non-anonymous folio that still has a mapping."""),
    _m("ref_is_pin", "a GUP reference or a pipe buffer is a pin",
       """get_user_pages() and vmsplice() take FOLL_GET references: +1 on the refcount each, and no pin.
       Only pin_user_pages() (FOLL_PIN: io_uring fixed buffers, O_DIRECT, RDMA) pins, adding 1024 on a
       small page.  The difference matters: fork, unsharing and migration look for pins, and only the
       refcount rule of do_wp_page() protects a FOLL_GET holder."""),
    _m("holders_are_mappings", "a pin or a pipe buffer is a mapping",
       """The mapcount (folio_mapcount()) counts page-table entries that map the page, in every process,
       and nothing else.  A pin, a GUP reference or a pipe buffer maps nothing: it shows up in the
       refcount only."""),
    _m("refcount_as_mapcount", "the mapcount counts every holder",
       """You gave the mapcount the value of the refcount.  The mapcount counts page-table entries;
       the refcount also counts holders that map nothing (page cache, pipe buffers, GUP references,
       1024 per pin)."""),
    _m("exclusive_by_mapcount", "mapped once means exclusive",
       """PageAnonExclusive is not "the mapcount is 1".  It is set when a page is created for one
       process (a first write, a COW copy), or when a write or unshare fault decides to reuse a page
       (mm/memory.c: do_wp_page()), and when migration or swap-in restore it.  fork() clears it
       (folio_try_dup_anon_rmap_pte()), and nothing sets it again when the other process exits or
       unmaps: the flag stays clear until the next fault that checks the refcount."""),
    _m("only_anon_exclusive", "a page-cache page or the zero page can be exclusive",
       """PageAnonExclusive exists for anonymous pages only.  The shared zero page and page-cache pages
       never carry it: they are not owned by one process."""),
    _m("exclusive_lost", "once shared, a page stays shared",
       """A page is owned by one process alone when it was created for it (first write, COW copy, unshare
       copy), or a fault reused it after finding refcount 1, or fork() copied it for the child instead
       of sharing it.  Such a page is marked PageAnonExclusive; only fork() sharing it, or migration and
       swap-out (folio_try_share_anon_rmap_pte()), clear the flag.  Which of these happened last to this
       page?"""),
    _m("pinned_not_exclusive", "a pinned anonymous page can be shared",
       """GUP asserts that an anonymous page it pins is PageAnonExclusive (mm/gup.c: follow_page_pte()),
       and fork() refuses to share such a page (it copies it for the child).  Was this page pinned at
       the end, and by whom?"""),
    _m("unshare_is_write", "unsharing makes the PTE writable",
       """An unshare fault (FAULT_FLAG_UNSHARE) gives the process an exclusive page, copying it if it is
       still shared, but it is not a write: wp_page_copy() (mm/memory.c) does not make the PTE writable
       for an unshare, and a reuse just sets PageAnonExclusive.  What must the next write do, then?"""),
    _m("fork_write_protects", "fork() leaves shared PTEs writable",
       """fork() write-protects every anonymous page it shares, in the parent and in the child
       (mm/memory.c: __copy_present_ptes()), so that the first write of either side faults into
       do_wp_page().  Only a page copied for the child at once (a maybe-pinned page) keeps the parent's
       PTE as it was.  Which was this page at fork()?"""),
    _m("pte_stays_writable", "a PTE, once writable, stays writable",
       """A PTE is writable after a write fault gave the process a page of its own (a fresh page, a COW
       copy or a reuse).  fork() write-protects shared pages, an unshare fault and a read fault leave
       the PTE read-only, mprotect(PROT_READ) removes write permission, and mprotect(PROT_READ|PROT_WRITE)
       makes a PTE writable again without a fault only for an exclusive page (from 6.0/6.2,
       mm/mprotect.c: can_change_pte_writable())."""),
    _m("zero_page_counted", "the zero page is counted",
       """The page here is the shared zero page, mapped by a special PTE: a read fault on untouched
       anonymous memory maps it (mm/memory.c: do_anonymous_page()), and since v6.12 so does the split
       of a large folio for a page holding only zeros (mm/migrate.c: try_to_map_unused_to_zeropage()).
       No page is allocated, and mapping it changes neither its refcount nor its mapcount
       (vm_normal_page() does not even return it)."""),
    _m("gup_get_unshares", "get_user_pages() and vmsplice() unshare",
       """Only a read-only FOLL_PIN unshares.  get_user_pages() and vmsplice() take FOLL_GET references,
       and gup_must_unshare() returns false for them: the reference lands on the page as it is, shared
       or not.  Such holders are protected only by the refcount rule of do_wp_page()."""),
    _m("migrate_pinned", "a pinned page can move",
       """Migration must unmap the page and then find nobody else holding it.  An exclusive page that may
       be pinned cannot even be unmapped: try_to_migrate_one() needs folio_try_share_anon_rmap_pte(),
       which returns -EBUSY for a maybe-pinned page.  Any other extra reference (a pipe buffer, a
       get_user_pages() reference) makes __migrate_folio() (mm/migrate.c) fail its check
       refcount == folio_expected_ref_count() + 1.  Either way: -EAGAIN, and the page stays."""),
    _m("migrate_referenced", "a referenced page can move",
       """A pipe buffer or a get_user_pages() reference is a holder outside the page tables: migration
       unmaps the page, then finds the refcount higher than the page tables and the migration itself
       explain (mm/migrate.c: folio_expected_ref_count(), checked in __folio_migrate_mapping()), restores
       the PTEs and fails with -EAGAIN.  The page stays where it is while anyone holds such a reference."""),
    _m("released_holder", "a released holder still holds the page",
       """A pin that was unpinned, a reference that was put and a pipe buffer that was read no longer hold
       the page: unpin_user_page() drops the 1024 bias, put_page() and the pipe's buffer release drop their
       one reference.  Only holders alive at the moment of the operation count."""),
    _m("writable_no_fault", "every write to a mapped page faults",
       """A write faults only when the PTE does not allow it; a writable PTE lets the store through and
       handle_pte_fault() is never entered.  Ask what state the writer's PTE is in right before the
       write: which fault last gave this process the page, and did fork(), mprotect() or an unshare
       make the PTE read-only since?"""),
    _m("reuse_while_shared", "a page still shared is reused",
       """do_wp_page() (mm/memory.c) reuses a page that is not PageAnonExclusive only when
       wp_can_reuse_anon_folio() finds the refcount at exactly 1: this PTE and nobody else; otherwise
       wp_page_copy() copies it.  Count who holds the page at the moment of the write: other processes'
       PTEs, pipe buffers, GUP references, pins."""),
    _m("copy_when_alone", "a page nobody else holds is copied",
       """do_wp_page() copies a page only while someone else still holds it (or for the zero page).  When
       the other holders are gone (the child exited or unmapped, the pipe was read, the reference put),
       the refcount is back to 1 and the page is reused in place.  Who holds the page at the moment of
       the write?"""),
    _m("first_touch_missed", "a page is already mapped here",
       """No page-table entry existed for this address before the write (nothing was written or read
       there in this process, or fork() copied no page table for it): the write takes a first-touch fault,
       do_anonymous_page() (mm/memory.c), which allocates a fresh zeroed page for this process alone."""),
    _m("file_pin_allowed", "a long-term writable pin of a file mapping is allowed",
       """Since v6.5 (8ac268436e6d / a6e79df92e4a, mm/gup.c: check_vma_flags() -> writable_file_mapping_allowed()) a
       FOLL_LONGTERM|FOLL_WRITE pin of a *shared* mapping of a file that needs dirty tracking (ext4, xfs:
       write-back must see every write) is refused with -EFAULT: the device would write behind the
       file system's back.  shmem and private mappings do not need dirty tracking and are pinned."""),
    _m("file_pin_refused", "every file pin is refused",
       """Only one combination is refused (since v6.5, mm/gup.c: writable_file_mapping_allowed()):
       FOLL_LONGTERM and FOLL_WRITE on a shared mapping of a file that needs dirty tracking.  A pin that
       is short-term, read-only, of a private mapping, or of shmem (a memfd) succeeds."""),
    _m("migrate_shared_fails", "a shared page cannot move",
       """Being mapped by several processes does not stop migration: the rmap walk (try_to_migrate())
       finds every PTE, replaces each with a migration entry, and remove_migration_ptes() points them
       all at the new page.  Only holders outside the page tables (pins, GUP references, pipe buffers)
       make migration fail."""),
    _m("truncate_keeps_cow", "truncation keeps private COW copies",
       """truncate_pagecache() calls unmap_mapping_range() with even_cows = 1 (mm/truncate.c): beyond
       the new end of file it removes page-cache PTEs *and* the private COW copies made from them.  A
       later access there faults into filemap_fault(), which returns SIGBUS.  (Hole punching, with
       even_cows = 0, is the case that keeps private copies.)"""),
    _m("truncate_below_eof", "truncation also removes pages below the new size",
       """Truncation only removes pages at or beyond the new end of file (rounded up to a page).  Pages
       below it stay mapped and keep their data."""),
    _m("pin_outlives_file", "truncation frees a pinned page",
       """Truncation takes the page out of the page cache and out of every page table, but a pin or a
       pipe buffer still holds a reference, so the page is not freed.  The holder keeps reading the old
       data from a page that no longer belongs to the file; writes through it are never written back.
       If the file grows again, new zero-filled pages are created: the pin and the file have
       diverged."""),
    _m("holder_sees_new", "a holder follows the address",
       """A pin, a GUP reference or a pipe buffer holds a *page*, not a virtual address.  If the process
       later gets a different page at that address (a COW copy after its write), the holder keeps the
       old page and does not see the new data; it sees the owner's writes only if the owner keeps
       writing to the same page."""),
    _m("holder_sees_old", "the owner's write went to another page",
       """A holder sees the owner's writes as long as the owner keeps writing into the very page it holds:
       a write through a writable PTE, or a fault that reuses the page, writes in place; only a COW copy
       moves the owner to another page.  Which of these did the owner's write take?"""),
    _m("holder_on_other_page", "a holder taken on a shared page holds that shared page",
       """A pin, a GUP reference or a pipe buffer holds the page the process mapped when it was taken.
       A read-write pin (FOLL_WRITE) on a page that is still shared first takes a write fault that gives
       the pinning process its own copy (mm/memory.c: do_wp_page() -> wp_page_copy()), and since 5.19 a
       read-only pin unshares first (mm/internal.h: gup_must_unshare()); a pipe buffer or reference taken
       later holds that copy too.  Which page does each holder sit on when k.migrate() runs?"""),
    _m("wipeonfork_is_dontfork", "MADV_WIPEONFORK leaves the mapping out of the child",
       """MADV_DONTFORK (VM_DONTCOPY) and MADV_WIPEONFORK (VM_WIPEONFORK) differ: dup_mmap()
       skips a VM_DONTCOPY VMA, so the child has no mapping there at all, but it copies a VM_WIPEONFORK
       VMA without its page-table entries (copy_page_range() is not called for it), so the child's
       memory there is like a fresh anonymous mapping."""),
    _m("dontfork_is_wipeonfork", "MADV_DONTFORK gives the child an empty mapping",
       """MADV_DONTFORK (VM_DONTCOPY) and MADV_WIPEONFORK (VM_WIPEONFORK) differ: dup_mmap()
       copies a VM_WIPEONFORK VMA without its page-table entries, but skips a VM_DONTCOPY VMA altogether:
       the child has no VMA at that address.  What does an access to an address with no VMA get?"""),
    _m("madvise_ignored", "fork() copies every mapping as it is",
       """madvise() changes what fork() does with a VMA: dup_mmap() skips a MADV_DONTFORK
       (VM_DONTCOPY) VMA, and copies a MADV_WIPEONFORK (VM_WIPEONFORK) VMA without its page-table entries.
       Which advice did the parent give before fork(), and what does the child have at that address?"""),
])


def _mis(key):
    return MISCONCEPTIONS[key]


#: era alternatives: key -> function(era) -> Era or None (None: not meaningful here)
def _alt_mapcount(e):
    if e.reuse_rule == "mapcount":
        return None
    return e.replace(reuse_rule="mapcount")


def _alt_refcount(e):
    if e.reuse_rule != "mapcount":
        return None
    from ..era import ERAS
    return ERAS["5.9"]


def _alt_fork_pinned(e):
    if not e.fork_copies_maybe_pinned:
        return None
    # fork_copies_pinned_cache (a widening of that copy) cannot stay on without it
    return e.replace(fork_copies_maybe_pinned=False, fork_copies_pinned_cache=False)


def _alt_file_pin(e):
    if not e.longterm_file_pin_refused:
        return None
    return e.replace(longterm_file_pin_refused=False)


def _alt_no_unshare(e):
    if not e.gup_unshares_anon:
        return None
    from ..era import ERAS
    return ERAS["5.9"]


def _alt_no_exclusive(e):
    # 5.9 to 5.18: the refcount rule without PageAnonExclusive, mprotect() never upgrades
    if not e.anon_exclusive:
        return None
    from ..era import ERAS
    return ERAS["5.9"]


def _alt_split_keeps_zero(e):
    # before v6.12: split_folio() kept every mapped subpage
    if not e.split_remaps_zero:
        return None
    return e.replace(split_remaps_zero=False)


ALTERNATIVES = {
    "mapcount_decides": _alt_mapcount,
    "refcount_rule_in_old_era": _alt_refcount,
    "fork_shares_pinned": _alt_fork_pinned,
    "no_unshare": _alt_no_unshare,
    "mprotect_copies_pinned": _alt_no_exclusive,
    "file_pin_allowed": _alt_file_pin,
    "split_keeps_zero_pages": _alt_split_keeps_zero,
}

#: which era alternatives may explain a wrong value of each part type
_ALT_FOR = {
    "fault": ("mapcount_decides", "refcount_rule_in_old_era", "fork_shares_pinned", "no_unshare",
              "mprotect_copies_pinned"),
    "data": ("mapcount_decides", "refcount_rule_in_old_era", "fork_shares_pinned", "no_unshare",
             "mprotect_copies_pinned"),
    "shared": ("fork_shares_pinned",),
    "copied": ("no_unshare", "mapcount_decides"),
    "exclusive": ("fork_shares_pinned", "no_unshare", "mapcount_decides", "mprotect_copies_pinned"),
    "writable": ("fork_shares_pinned",),
    "refcount": ("mapcount_decides", "fork_shares_pinned", "mprotect_copies_pinned", "split_keeps_zero_pages"),
    "mapcount": ("fork_shares_pinned", "split_keeps_zero_pages"),
    "present": ("split_keeps_zero_pages",),
    "pin_result": ("file_pin_allowed",),
}


def _relevant(key, ctx):
    """Does the program contain what misconception ``key`` is about?  (An
    old kernel differs in many rules; its answer names a misconception only
    when the program exercises that rule.)"""
    verbs = ctx.verbs
    gups = getattr(ctx, "gups", ())
    if not verbs:
        # a scenario: its steps are not ops to inspect; read what they did from the kernel's trace
        run = getattr(ctx, "run", None)
        if getattr(run, "kernel", None) is None:
            return True
        verbs, gups = scenario_verbs(run.kernel)
    if key == "split_keeps_zero_pages":
        return "split" in verbs
    if key in ("mapcount_decides", "refcount_rule_in_old_era"):
        return "write" in verbs and ("fork" in verbs or bool(gups))
    if key == "fork_shares_pinned":
        return "fork" in verbs and "pin" in verbs
    if key == "no_unshare":
        return any(v == "pin" and not w for v, w in gups)
    if key == "mprotect_copies_pinned":
        return "mprotect" in verbs and "write" in verbs[verbs.index("mprotect"):] and any(v == "pin" for v, _ in gups)
    if key == "file_pin_allowed":
        return "pin" in verbs and "mmap_file" in verbs
    return True


#: kernel functions in a scenario's trace -> the user-level verb they stand for
_TRACE_VERBS = {"dup_mmap": "fork", "do_wp_page": "write", "do_huge_pmd_wp_page": "write",
                "change_protection": "mprotect", "deferred_split_scan": "split",
                "shmem_truncate_range": "truncate", "truncate_inode_pages_range": "truncate"}


def scenario_verbs(k):
    """(verbs, gups) of what a scenario run on kernel ``k`` did, read from its
    trace (in order) and its holders: the evidence a program's ops give."""
    verbs = [_TRACE_VERBS[e.func] for e in k.trace if e.func in _TRACE_VERBS]
    gups = []
    for h in k.holders.values():
        if h.kind == "pin":
            from ..gup import FOLL_WRITE
            gups.append(("pin", bool(h.flags & FOLL_WRITE)))
            verbs.append("pin")
        else:
            gups.append(("vmsplice" if h.kind == "pipe" else "gup", False))
    return verbs, gups


def diagnose(part, learner, truth, ctx):
    """The misconception that best explains ``learner`` (a wrong value of
    ``part``), or None.

    ``ctx`` gives the evidence: ``ctx.alt(key)`` is the part's value under
    era alternative ``key`` (or None), ``ctx.folio`` the page asked about
    (or None), ``ctx.pins`` / ``ctx.refs`` the holders outside the page
    tables, ``ctx.verbs`` the ops of the program, and, when the caller
    sets it, ``ctx.answer`` the learner's whole answer (part name ->
    normalized value; a part missing from it is taken as answered right).

    An era alternative is named only if the whole answer is what it
    computes (every part it changes), and only if no other alternative fits
    the answer as well: two rules that give the same answer leave it open
    which idea the learner holds, so none is named.
    """
    fits = [key for key in _ALT_FOR.get(part.type, ()) if _relevant(key, ctx) and _alt_fits(key, part, learner, truth, ctx)]
    if len(fits) == 1:
        return _mis(fits[0])
    if fits:
        return None
    check = _FIELD_CHECKS.get(part.type)
    if check is not None:
        return check(learner, truth, ctx)
    return None


def _eq(part, a, b):
    from .question import _same
    try:
        return _same(part, a, b)
    except Exception:
        return a == b


def _alt_fits(key, part, learner, truth, ctx):
    """Is the learner's answer what the kernel of alternative ``key``
    computes, in this part and in every other part that kernel changes?"""
    v = ctx.alt(key)
    if v is None or _eq(part, v, truth) or not _eq(part, learner, v):
        return False
    q = getattr(ctx, "q", None)
    parts = getattr(q, "parts", None) or ()
    answer = getattr(ctx, "answer", None) or {}
    for p in parts:
        if p is part or p.name == part.name:
            continue
        try:
            t = p.fn(ctx.run)
            av = q._alt_value(key, p)
        except Exception:
            return False
        if av is None or _eq(p, av, t):
            continue
        if not _eq(p, answer.get(p.name, t), av):
            return False
    return True


def _answered(ctx, ptype, default=None):
    """The learner's answer to the part of type ``ptype`` about the same page,
    if the caller gave the whole answer, else ``default``."""
    answer = getattr(ctx, "answer", None) or {}
    key = getattr(ctx.part, "key", None)
    for p in getattr(getattr(ctx, "q", None), "parts", None) or ():
        if p.type == ptype and p.key == key and p.name in answer:
            return answer[p.name]
    return default


def _refcount(learner, truth, ctx):
    f = ctx.folio
    if not isinstance(learner, int):
        return None
    if f is not None and f.zero:
        return _mis("zero_page_counted")
    if ctx.pins and learner == truth - (GUP_PIN_COUNTING_BIAS - 1) * ctx.pins:
        return _mis("pin_weighs_one")
    if ctx.refs and learner == truth + (GUP_PIN_COUNTING_BIAS - 1) * ctx.refs:
        return _mis("ref_is_pin")
    if f is not None and learner == f.mapcount and truth != f.mapcount:
        if f.in_page_cache and not ctx.pins and not ctx.refs:
            return _mis("forgot_page_cache")
        return _mis("mapped_once_only_user")
    if ctx.refs and learner in (truth - ctx.refs, truth - ctx.refs - (1 if f is not None and f.in_page_cache else 0)):
        return _mis("forgot_references")
    if f is not None and f.in_page_cache and learner == truth - 1:
        return _mis("forgot_page_cache")
    if ctx.pins and learner == truth - GUP_PIN_COUNTING_BIAS * ctx.pins:
        return _mis("forgot_references")
    return None


def _mapcount(learner, truth, ctx):
    f = ctx.folio
    if not isinstance(learner, int):
        return None
    if f is not None and f.zero:
        return _mis("zero_page_counted")
    held = ctx.pins + ctx.refs
    if held and learner in (truth + held, truth + ctx.pins, truth + ctx.refs):
        return _mis("holders_are_mappings")
    if f is not None and learner == f.refcount and f.refcount != truth:
        return _mis("refcount_as_mapcount")
    return None


def _pincount(learner, truth, ctx):
    if not isinstance(learner, int):
        return None
    if ctx.refs and learner == truth + ctx.refs:
        return _mis("ref_is_pin")
    if learner == truth * GUP_PIN_COUNTING_BIAS and truth:
        return _mis("pin_weighs_one")
    return None


def _exclusive(learner, truth, ctx):
    f = ctx.folio
    if learner and not truth:
        if f is not None and (f.zero or not f.anon):
            return _mis("only_anon_exclusive")
        # "mapped once means exclusive" predicts exclusive exactly when the mapcount is 1
        m = _answered(ctx, "mapcount", f.mapcount if f is not None else None)
        if m == 1:
            return _mis("exclusive_by_mapcount")
        return None
    if truth and not learner:
        if ctx.pins:
            return _mis("pinned_not_exclusive")
        if "fork" in ctx.verbs:
            return _mis("exclusive_lost")
    return None


def _writable(learner, truth, ctx):
    verbs = ctx.verbs
    if learner and not truth:
        if "pin" in verbs and ctx.last_gup_ro:
            return _mis("unshare_is_write")
        f = ctx.folio
        if "fork" in verbs and (f is None or f.mapcount > 1 or not getattr(f, "exclusive", True)):
            return _mis("fork_write_protects")
        return _mis("pte_stays_writable")
    return None


def _fault(learner, truth, ctx):
    if truth == "first touch":
        return _mis("first_touch_missed")
    if learner == "first touch":
        return None
    if truth == "no fault":
        # "every write faults" meets a writable, hence exclusive, page: do_wp_page() would reuse it
        return _mis("writable_no_fault") if learner == "reuse" else None
    if learner == "no fault":
        if ctx.last_gup_ro and "fork" not in ctx.verbs[ctx.verbs.index("pin"):]:
            return _mis("unshare_is_write")
        if "fork" in ctx.verbs:
            return _mis("fork_write_protects")
        return _mis("pte_stays_writable")
    if learner == "reuse" and truth == "copy":
        return _mis("reuse_while_shared")
    if learner == "copy" and truth == "reuse":
        return _mis("copy_when_alone")
    return None


def _copied(learner, truth, ctx):
    if ctx.last_gup == "gup" and learner == "copied":
        return _mis("gup_get_unshares")
    return None


def _migrated(learner, truth, ctx):
    if learner == "migrated" and truth != "migrated":
        if ctx.pins:
            return _mis("migrate_pinned")
        if ctx.refs:
            return _mis("migrate_referenced")
        return None
    if truth == "migrated" and learner != "migrated":
        f = ctx.folio
        if f is not None and f.mapcount > 1:
            return _mis("migrate_shared_fails")
        k = getattr(ctx.run, "kernel", None)
        held = k is not None and any(not h.released for h in k.holders.values())
        if not ctx.pins and not ctx.refs and held:
            return _mis("holder_on_other_page")
        if set(ctx.verbs) & {"unpin", "put", "pipe_read"}:
            return _mis("released_holder")
    return None


def _pin_result(learner, truth, ctx):
    if learner == "ok" and truth == "EFAULT":
        return _mis("file_pin_allowed")
    if truth == "ok" and learner == "EFAULT":
        return _mis("file_pin_refused")
    return None


def _is_data(v):
    return v == "zero" or (isinstance(v, str) and v.isdigit())


def _address(ctx):
    """The address of the page the part asks about, in a program's or a
    scenario's run, or None."""
    key, run = ctx.part.key, ctx.run
    try:
        if getattr(run, "env", None) is not None:
            return run.env[key[1]] + (key[2] if len(key) > 2 else 0) * 4096
        w = run._where(key[0])
        return getattr(run.s, w[2]) + (w[3] if len(w) > 3 else 0) * 4096
    except Exception:
        return None


def _advice(ctx):
    """"dontfork" or "wipeonfork" if a live process's VMA at the part's
    address carries that madvise() flag, else None."""
    addr = _address(ctx) if ctx.part.key is not None else None
    k = getattr(ctx.run, "kernel", None)
    if addr is None or k is None:
        return None
    for t in k.tasks.values():
        vma = t.mm.find_vma(addr) if t.alive and t.mm is not None else None
        if vma is not None and vma.dontcopy:
            return "dontfork"
        if vma is not None and vma.wipeonfork:
            return "wipeonfork"
    return None


def _fork_advice(learner, truth, ctx, gone, empty, as_parent):
    """A wrong answer about the child's view of a madvise()d VMA: ``gone`` /
    ``empty`` / ``as_parent`` are the answers of no VMA, an empty VMA and a
    copied page table."""
    advice = _advice(ctx)
    if advice is None or ctx.part.key[0] == "P":
        return None
    if advice == "wipeonfork" and truth == empty and learner == gone:
        return _mis("wipeonfork_is_dontfork")
    if advice == "dontfork" and truth == gone and learner == empty:
        return _mis("dontfork_is_wipeonfork")
    if learner == as_parent and truth != as_parent:
        return _mis("madvise_ignored")
    return None


def _present(learner, truth, ctx):
    return _fork_advice(learner, truth, ctx, gone=False, empty=False, as_parent=True)


def _data(learner, truth, ctx):
    if not ctx.truncated and not ctx.reader_is_holder:
        f = _fork_advice(learner, truth, ctx, gone="SIGSEGV", empty="zero",
                         as_parent=learner if _is_data(learner) and learner != "zero" else object())
        if f is not None:
            return f
    if ctx.truncated:
        if truth == "SIGBUS" and _is_data(learner):
            return _mis("truncate_keeps_cow")
        if learner == "SIGBUS" and ctx.reader_is_holder is False:
            return _mis("truncate_below_eof")
        if ctx.reader_is_holder and learner in ("SIGBUS", "zero", "EFAULT"):
            return _mis("pin_outlives_file")
    if ctx.reader_is_holder:
        if ctx.data_is_older(truth, learner):
            return _mis("holder_sees_new")
        if ctx.data_is_older(learner, truth):
            return _mis("holder_sees_old")
    return None


_FIELD_CHECKS = {
    "refcount": _refcount, "mapcount": _mapcount, "pincount": _pincount, "exclusive": _exclusive,
    "writable": _writable, "fault": _fault, "copied": _copied, "migrated": _migrated, "data": _data,
    "pin_result": _pin_result, "present": _present,
}
