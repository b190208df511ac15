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

Every message states the rule and the kernel function behind it, but no
value from the right answer.
"""

from dataclasses import dataclass

from ..pageinfo import GUP_PIN_COUNTING_BIAS

__all__ = ["Misconception", "MISCONCEPTIONS", "diagnose", "ALTERNATIVES"]


@dataclass(frozen=True)
class Misconception:
    """A named wrong idea and the explanation that corrects it."""

    key: str
    title: str
    explain: str


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
       copied for the child at once.  The parent keeps the pinned page, still exclusive and still
       writable, so the device and the parent keep seeing the same memory."""),
    _m("no_unshare", "a read-only pin does not unshare",
       """Your answer is what 5.9 to 5.18 computed, before FAULT_FLAG_UNSHARE.  Since 5.19 a FOLL_PIN
       without FOLL_WRITE on an anonymous page that is not PageAnonExclusive first takes an unshare
       fault (mm/internal.h: gup_must_unshare(), mm/gup.c: follow_page_pte() returns -EMLINK), so the
       pin lands on a page this process alone owns and stays coherent with its later writes."""),
    _m("mapped_once_only_user", "refcount vs mapcount: mapped once is not only user",
       """You gave the refcount the value of the mapcount.  The mapcount counts page-table entries
       only; the refcount counts every holder: each PTE, the page cache, every FOLL_GET reference
       (get_user_pages(), each pipe buffer filled by vmsplice()), and 1024 per FOLL_PIN on a small
       page.  "Mapped exactly once" does not mean "used by one": that is the point Linus made in the
       Dec 2021 thread."""),
    _m("pin_weighs_one", "a pin counted as one reference",
       """A FOLL_PIN on a small page adds GUP_PIN_COUNTING_BIAS = 1024 to the refcount, not 1
       (mm/gup.c: try_grab_folio()).  That bias is how folio_maybe_dma_pinned() can tell a pinned page
       from a merely referenced one without a separate pincount field."""),
    _m("forgot_references", "references outside the page tables forgotten",
       """Some holders of this page map nothing: a get_user_pages() reference or a pipe buffer filled by
       vmsplice() holds one reference each, until ref.put() or until the pipe buffer is read.  They
       count in the refcount although no page table shows them."""),
    _m("forgot_page_cache", "the page cache's own reference forgotten",
       """A page in the page cache holds one reference for the cache itself (filemap_add_folio()),
       besides one per page-table entry that maps it.  folio_expected_ref_count() adds it for every
       non-anonymous folio that still has a mapping."""),
    _m("ref_is_pin", "pinned vs referenced",
       """get_user_pages() and vmsplice() take FOLL_GET references: +1 on the refcount each, and no pin.
       Only pin_user_pages() (FOLL_PIN: io_uring fixed buffers, O_DIRECT, RDMA) pins, adding 1024 on a
       small page.  The difference matters: fork, unsharing and migration look for pins, and only the
       refcount rule of do_wp_page() protects a FOLL_GET holder."""),
    _m("holders_are_mappings", "a pin or pipe buffer counted as a mapping",
       """The mapcount (folio_mapcount()) counts page-table entries that map the page, in every process,
       and nothing else.  A pin, a GUP reference or a pipe buffer maps nothing: it shows up in the
       refcount only."""),
    _m("refcount_as_mapcount", "mapcount vs refcount",
       """You gave the mapcount the value of the refcount.  The mapcount counts page-table entries;
       the refcount also counts holders that map nothing (page cache, pipe buffers, GUP references,
       1024 per pin)."""),
    _m("exclusive_by_mapcount", "mapped once is not exclusive",
       """PageAnonExclusive is not "the mapcount is 1".  It is set when a page is created for one
       process (a first write, a COW copy), or when a write or unshare fault decides to reuse a page
       (mm/memory.c: do_wp_page()), and when migration or swap-in restore it.  fork() clears it
       (folio_try_dup_anon_rmap_pte()), and nothing sets it again when the other process exits or
       unmaps: the flag stays clear until the next fault that checks the refcount."""),
    _m("only_anon_exclusive", "only anonymous pages can be exclusive",
       """PageAnonExclusive exists for anonymous pages only.  The shared zero page and page-cache pages
       never carry it: they are not owned by one process."""),
    _m("exclusive_lost", "an exclusive page taken for shared",
       """The page is owned by this process alone: it was created for it (first write, COW copy, unshare
       copy), or a fault reused it after finding refcount 1, or fork() copied it for the child instead
       of sharing it.  Such a page is marked PageAnonExclusive; only fork() sharing it, or migration and
       swap-out (folio_try_share_anon_rmap_pte()), clear the flag."""),
    _m("pinned_not_exclusive", "a pinned anonymous page is always exclusive",
       """GUP asserts that an anonymous page it pins is PageAnonExclusive (mm/gup.c: follow_page_pte()),
       and fork() refuses to share such a page (it copies it for the child), so a pinned anonymous page
       is exclusive for as long as it is pinned."""),
    _m("unshare_is_write", "unsharing does not grant write access",
       """An unshare fault (FAULT_FLAG_UNSHARE) gives the process an exclusive page, copying it if it is
       still shared, but it is not a write: the PTE stays read-only (mm/memory.c: wp_page_copy() does
       not make it writable for an unshare, and a reuse just sets PageAnonExclusive).  The next write
       takes a fault, finds the page exclusive and reuses it in place."""),
    _m("fork_write_protects", "fork write-protects shared pages",
       """fork() write-protects every anonymous page it shares, in the parent and in the child
       (mm/memory.c: __copy_present_ptes()), so that the first write of either side faults into
       do_wp_page().  Only a page copied for the child at once (a maybe-pinned page) keeps the parent's
       PTE writable."""),
    _m("pte_stays_writable", "when a PTE is writable",
       """A PTE is writable after a write fault gave the process a page of its own (a fresh page, a COW
       copy or a reuse).  fork() write-protects shared pages, an unshare fault and a read fault leave
       the PTE read-only, mprotect(PROT_READ) removes write permission, and mprotect(PROT_READ|PROT_WRITE)
       makes a PTE writable again without a fault only for an exclusive page (from 6.0/6.2,
       mm/mprotect.c: can_change_pte_writable())."""),
    _m("zero_page_counted", "the zero page is not counted",
       """A read fault on untouched anonymous memory maps the shared zero page with a special PTE
       (mm/memory.c: do_anonymous_page()): no page is allocated, and mapping it changes neither its
       refcount nor its mapcount (vm_normal_page() does not even return it)."""),
    _m("gup_get_unshares", "FOLL_GET never unshares",
       """Only a read-only FOLL_PIN unshares.  get_user_pages() and vmsplice() take FOLL_GET references,
       and gup_must_unshare() returns false for them: the reference lands on the page as it is, shared
       or not.  Such holders are protected only by the refcount rule of do_wp_page()."""),
    _m("migrate_pinned", "a pinned page cannot move",
       """Migration must unmap the page and then find nobody else holding it.  An exclusive page that may
       be pinned cannot even be unmapped: try_to_migrate_one() needs folio_try_share_anon_rmap_pte(),
       which returns -EBUSY for a maybe-pinned page.  Any other extra reference (a pipe buffer, a
       get_user_pages() reference) makes __migrate_folio() (mm/migrate.c) fail its check
       refcount == folio_expected_ref_count() + 1.  Either way: -EAGAIN, and the page stays."""),
    _m("migrate_referenced", "a referenced page cannot move",
       """A pipe buffer or a get_user_pages() reference is a holder outside the page tables: migration
       unmaps the page, then finds the refcount higher than the page tables and the migration itself
       explain (mm/migrate.c: folio_expected_ref_count(), checked in __folio_migrate_mapping()), restores
       the PTEs and fails with -EAGAIN.  The page stays where it is while anyone holds such a reference."""),
    _m("released_holder", "a released holder still counted",
       """A pin that was unpinned, a reference that was put and a pipe buffer that was read no longer hold
       the page: unpin_user_page() drops the 1024 bias, put_page() and the pipe's buffer release drop their
       one reference.  Only holders alive at the moment of the operation count."""),
    _m("writable_no_fault", "a writable PTE takes no fault",
       """The PTE was writable when the write came: the MMU lets the store through and no fault runs at
       all, so there is nothing to copy or reuse (handle_pte_fault() is never entered).  Ask what made
       the PTE writable: a write fault that gave this process the page, or a copy at fork()."""),
    _m("reuse_while_shared", "a page still shared is reused",
       """do_wp_page() (mm/memory.c) reuses a page that is not PageAnonExclusive only when
       wp_can_reuse_anon_folio() finds the refcount at exactly 1: this PTE and nobody else.  Here someone
       else still holds the page -- another process's PTE, a pipe buffer, a GUP reference or a pin -- so
       the writer gets a copy (wp_page_copy())."""),
    _m("copy_when_alone", "a page nobody else holds is copied",
       """Once the other holders are gone (the child exited or unmapped, the pipe was read, the reference
       put), the writer is the only holder: refcount 1, so do_wp_page() reuses the page in place and
       marks it PageAnonExclusive.  A copy is made only while someone else still holds the page (or
       for the zero page)."""),
    _m("first_touch_missed", "a write to an unpopulated address is a first touch",
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
    _m("migrate_shared_fails", "a shared page can move",
       """Being mapped by several processes does not stop migration: the rmap walk (try_to_migrate())
       finds every PTE, replaces each with a migration entry, and remove_migration_ptes() points them
       all at the new page.  Only holders outside the page tables (pins, GUP references, pipe buffers)
       make migration fail."""),
    _m("truncate_keeps_cow", "truncation zaps private COW copies too",
       """truncate_pagecache() calls unmap_mapping_range() with even_cows = 1 (mm/truncate.c): beyond
       the new end of file it removes page-cache PTEs *and* the private COW copies made from them.  A
       later access there faults into filemap_fault(), which returns SIGBUS.  (Hole punching, with
       even_cows = 0, is the case that keeps private copies.)"""),
    _m("truncate_below_eof", "truncation only affects pages beyond the new size",
       """Truncation only removes pages at or beyond the new end of file (rounded up to a page).  Pages
       below it stay mapped and keep their data."""),
    _m("pin_outlives_file", "the pinned page outlives its file",
       """Truncation takes the page out of the page cache and out of every page table, but a pin or a
       pipe buffer still holds a reference, so the page is not freed.  The holder keeps reading the old
       data from a page that no longer belongs to the file; writes through it are never written back.
       If the file grows again, new zero-filled pages are created: the pin and the file have
       diverged."""),
    _m("holder_sees_new", "a reference holds a page, not an address",
       """A pin, a GUP reference or a pipe buffer holds a *page*, not a virtual address.  If the process
       later gets a different page at that address (a COW copy after its write), the holder keeps the
       old page and does not see the new data; it sees the owner's writes only if the owner keeps
       writing to the same page."""),
    _m("holder_sees_old", "the owner writes into the held page",
       """Here the owner's write did not replace the page: the PTE was writable (no fault) or the fault
       reused the page in place, so the holder, which holds that very page, sees the new data."""),
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


ALTERNATIVES = {
    "mapcount_decides": _alt_mapcount,
    "refcount_rule_in_old_era": _alt_refcount,
    "fork_shares_pinned": _alt_fork_pinned,
    "no_unshare": _alt_no_unshare,
    "file_pin_allowed": _alt_file_pin,
}

#: which era alternatives may explain a wrong value of each part type
_ALT_FOR = {
    "fault": ("mapcount_decides", "refcount_rule_in_old_era", "fork_shares_pinned", "no_unshare"),
    "data": ("mapcount_decides", "refcount_rule_in_old_era", "fork_shares_pinned", "no_unshare"),
    "shared": ("fork_shares_pinned",),
    "copied": ("no_unshare",),
    "exclusive": ("fork_shares_pinned", "no_unshare", "mapcount_decides"),
    "writable": ("fork_shares_pinned",),
    "refcount": ("mapcount_decides", "fork_shares_pinned"),
    "mapcount": ("fork_shares_pinned",),
    "pin_result": ("file_pin_allowed",),
}


def _relevant(key, ctx):
    """Does the program contain what misconception ``key`` is about?  (An
    old kernel differs in many rules; its answer names a misconception only
    when the program exercises that rule.)"""
    verbs = ctx.verbs
    if not verbs:
        return True         # a scenario: its steps are not ops to inspect
    gups = getattr(ctx, "gups", ())
    if key in ("mapcount_decides", "refcount_rule_in_old_era"):
        return "write" in verbs and ("fork" in verbs or bool(gups))
    if key == "fork_shares_pinned":
        return "fork" in verbs and "pin" in verbs
    if key == "no_unshare":
        return any(v == "pin" and not w for v, w in gups)
    if key == "file_pin_allowed":
        return "pin" in verbs and "mmap_file" in verbs
    return True


def diagnose(part, learner, truth, ctx):
    """The misconception that best explains ``learner`` (a wrong value of
    ``part``), or None.

    ``ctx`` gives the evidence: ``ctx.alt(key)`` is the part's value under
    era alternative ``key`` (or None), ``ctx.folio`` the page asked about
    (or None), ``ctx.pins`` / ``ctx.refs`` the holders outside the page
    tables, ``ctx.verbs`` the ops of the program.
    """
    for key in _ALT_FOR.get(part.type, ()):
        if not _relevant(key, ctx):
            continue
        v = ctx.alt(key)
        if v is not None and v != truth and v == learner:
            return _mis(key)
    check = _FIELD_CHECKS.get(part.type)
    if check is not None:
        return check(learner, truth, ctx)
    return None


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
        return _mis("mapped_once_only_user")
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
        return _mis("exclusive_by_mapcount")
    if truth and not learner:
        if ctx.pins:
            return _mis("pinned_not_exclusive")
        return _mis("exclusive_lost")
    return None


def _writable(learner, truth, ctx):
    verbs = ctx.verbs
    if learner and not truth:
        if "pin" in verbs and ctx.last_gup_ro:
            return _mis("unshare_is_write")
        if "fork" in verbs:
            return _mis("fork_write_protects")
        return _mis("pte_stays_writable")
    return _mis("pte_stays_writable")


def _fault(learner, truth, ctx):
    if truth == "first touch":
        return _mis("first_touch_missed")
    if learner == "first touch":
        return None
    if truth == "no fault":
        return _mis("writable_no_fault")
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


def _data(learner, truth, ctx):
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
    "pin_result": _pin_result,
}
