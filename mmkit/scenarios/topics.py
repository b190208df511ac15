"""The kit's topic scenarios: first touch, fork, COW, GUP pins, unsharing,
vmsplice, migration, truncation, MADV_DONTFORK / WIPEONFORK.

Each runs on the model and on the live kernel (same API); the watch lists
name the pages a table or a conformance check compares after every step.
"""

from ..scenario import Scenario

__all__ = ["TOPICS", "LARGE_TOPICS"]

OLD, NEW = b"old data", b"NEW DATA"


def _setup(k, s, shared_file=None):
    s.p = k.spawn("parent")
    s.a = s.p.mmap(1)
    s.p.write(s.a, OLD)


def first_touch():
    sc = Scenario("first_touch", "First touch: a read maps the zero page, a write a new page",
                  watch=[("page 0", "p", "a", 0), ("page 1", "p", "a", 1)])

    @sc.step("map", "mmap() creates a VMA; no page is mapped yet.")
    def _(k, s):
        s.p = k.spawn("parent")
        s.a = s.p.mmap(2)

    @sc.step("read page 0", "A read fault maps the shared zero page read-only: no page is allocated.")
    def _(k, s):
        return s.p.read(s.a, 4)

    @sc.step("write page 1", "A write fault allocates a fresh exclusive page, mapped writable.")
    def _(k, s):
        s.p.write(s.a + k.PAGE_SIZE, b"x")

    @sc.step("write page 0", "Writing the zero page COWs it into a zeroed new page.")
    def _(k, s):
        s.p.write(s.a, b"y")
    return sc


def fork_shares():
    sc = Scenario("fork", "fork() shares anon pages read-only and clears PageAnonExclusive",
                  watch=[("parent", "p", "a"), ("child", "c", "a")])
    sc.add("parent writes", "A write fault gives the parent an exclusive, writable page.", _setup)

    @sc.step("fork", "copy_present_ptes() shares the page: refcount 2, mapcount 2, both PTEs read-only.")
    def _(k, s):
        s.c = s.p.fork("child")

    @sc.step("child reads", "Reading takes no fault and changes nothing.")
    def _(k, s):
        return s.c.read(s.a, len(OLD))
    return sc


def _cow(name, title, writer, explain):
    sc = Scenario(name, title, watch=[("parent", "p", "a"), ("child", "c", "a")])
    sc.add("parent writes", "The parent's page: exclusive and writable.", _setup)
    sc.add("fork", "Now shared: refcount 2, mapcount 2, read-only in both.",
           lambda k, s: setattr(s, "c", s.p.fork("child")))
    if writer == "exit":
        sc.add("child exits", "The child's mapping goes: refcount 1, mapcount 1, but not yet exclusive.",
               lambda k, s: s.c.exit())
        sc.add("parent writes", explain, lambda k, s: s.p.write(s.a, NEW))
        sc.add("parent reads", "The parent sees its write.", lambda k, s: s.p.read(s.a, len(NEW)))
        return sc
    first, second = ("c", "p") if writer == "child" else ("p", "c")
    sc.add(f"{'child' if writer == 'child' else 'parent'} writes", explain,
           lambda k, s: getattr(s, first).write(s.a, NEW))
    sc.add(f"{'parent' if writer == 'child' else 'child'} reads", "The other process still sees the old data.",
           lambda k, s: getattr(s, second).read(s.a, len(OLD)))
    sc.add(f"{'parent' if writer == 'child' else 'child'} writes",
           "The page is now used by one process only (refcount 1): reused in place, no second copy.",
           lambda k, s: getattr(s, second).write(s.a, b"second"))
    return sc


def vmsplice_unmap_in_child():
    sc = Scenario("vmsplice_child", "vmsplice() + unmap in the child, parent writes (CVE-2020-29374)",
                  watch=[("parent", "p", "a"), ("child", "c", "a")])
    sc.add("parent writes", "The parent's page: exclusive and writable.", _setup)
    sc.add("fork", "Shared between parent and child.", lambda k, s: setattr(s, "c", s.p.fork("child")))
    sc.add("child vmsplices", "The child's pipe takes a FOLL_GET reference: refcount 3, mapcount 2.",
           lambda k, s: setattr(s, "pipe", s.c.vmsplice(s.a, len(OLD))))
    sc.add("child unmaps", "mapcount 1 -- but the pipe still holds a reference: refcount 2.",
           lambda k, s: s.c.munmap(s.a, 1))
    sc.add("parent writes", "Refcount 2 > 1: the parent copies (since 5.9); under 5.7's mapcount rule it "
           "reused the page the pipe still holds.", lambda k, s: s.p.write(s.a, NEW))
    sc.add("child reads the pipe", "The pipe must return the old data; the parent's new data is a leak.",
           lambda k, s: s.pipe.read(len(OLD)))
    return sc


def pin_before_fork():
    sc = Scenario("pin_before_fork", "An io_uring fixed buffer (long-term R/W pin), then fork()",
                  watch=[("parent", "p", "a"), ("child", "c", "a")])
    sc.add("parent writes", "The parent's page: exclusive and writable.", _setup)
    sc.add("register buffer", "FOLL_PIN|FOLL_WRITE|FOLL_LONGTERM: refcount 1 + 1024.",
           lambda k, s: setattr(s, "pin", s.p.pin(s.a, 1, write=True, longterm=True)))
    sc.add("fork", "The page may be pinned: the child gets its own copy at once, the parent keeps the "
           "pinned page writable.", lambda k, s: setattr(s, "c", s.p.fork("child")))
    sc.add("parent writes", "No fault, no copy: the PTE stayed writable.", lambda k, s: s.p.write(s.a, NEW))
    sc.add("device reads", "The pin sees the parent's new data.", lambda k, s: s.pin.read(len(NEW)))
    sc.add("child reads", "The child has the old data in its copy.", lambda k, s: s.c.read(s.a, len(OLD)))
    sc.add("unpin", "The pin goes; the parent's page keeps refcount 1.", lambda k, s: s.pin.unpin())
    return sc


def pin_after_fork():
    sc = Scenario("pin_after_fork", "A long-term R/W pin on a page shared after fork()",
                  watch=[("parent", "p", "a"), ("child", "c", "a")])
    sc.add("parent writes", "The parent's page: exclusive and writable.", _setup)
    sc.add("fork", "Shared, read-only in both.", lambda k, s: setattr(s, "c", s.p.fork("child")))
    sc.add("register buffer", "FOLL_WRITE needs a writable PTE: a write fault breaks COW first, so the pin "
           "lands on the parent's new exclusive copy.",
           lambda k, s: setattr(s, "pin", s.p.pin(s.a, 1, write=True, longterm=True)))
    sc.add("parent writes", "Writable already: no fault.", lambda k, s: s.p.write(s.a, NEW))
    sc.add("device reads", "The pin sees it.", lambda k, s: s.pin.read(len(NEW)))
    sc.add("unpin", "Release the pin.", lambda k, s: s.pin.unpin())
    return sc


def ro_pin_unshare(after_exit=False):
    name = "ro_pin_unshare_after_exit" if after_exit else "ro_pin_unshare"
    sc = Scenario(name, "A short-term R/O pin (O_DIRECT write) on a " +
                  ("previously shared" if after_exit else "shared") + " page: FAULT_FLAG_UNSHARE",
                  watch=[("parent", "p", "a"), ("child", "c", "a")])
    sc.add("parent writes", "The parent's page: exclusive and writable.", _setup)
    sc.add("fork", "Shared, read-only in both, not exclusive.", lambda k, s: setattr(s, "c", s.p.fork("child")))
    if after_exit:
        sc.add("child exits", "refcount 1, mapcount 1, still not marked exclusive.", lambda k, s: s.c.exit())
    sc.add("R/O pin", "gup_must_unshare(): the page is not exclusive, so GUP takes an unshare fault first. "
           + ("Nobody else uses it: it is just marked exclusive, no copy, PTE stays read-only." if after_exit else
              "It is shared: the parent gets a new exclusive copy, mapped read-only."),
           lambda k, s: setattr(s, "pin", s.p.pin(s.a, 1, write=False, longterm=False)))
    sc.add("device reads", "The device reads the parent's data.", lambda k, s: s.pin.read(len(OLD)))
    sc.add("unpin", "The O_DIRECT write completes.", lambda k, s: s.pin.unpin())
    sc.add("parent writes", "The PTE was read-only: one fault, and the exclusive page is reused in place.",
           lambda k, s: s.p.write(s.a, NEW))
    return sc


def migrate_pages_topic():
    sc = Scenario("migration", "Migration: rmap walk, migration entries, and the pinned page that cannot move",
                  watch=[("parent", "p", "a"), ("child", "c", "a"), ("pinned", "p", "b")])
    sc.add("parent writes two pages", "Two exclusive pages.",
           lambda k, s: (_setup(k, s), setattr(s, "b", s.p.mmap(1)), s.p.write(s.b, b"pinned"))[-1])
    sc.add("fork", "Page a is shared by both processes.", lambda k, s: setattr(s, "c", s.p.fork("child")))
    sc.add("migrate a", "try_to_migrate() walks the rmap and replaces both PTEs; both processes end up on "
           "the same new page.", lambda k, s: k.migrate(s.p, s.a, 1).migrated)
    sc.add("pin b", "A long-term R/W pin on page b.",
           lambda k, s: setattr(s, "pin", s.p.pin(s.b, 1, write=True, longterm=True)))
    sc.add("migrate b", "move_pages(MPOL_MF_MOVE_ALL) isolates it, but an exclusive page that may be pinned "
           "cannot be unmapped: EAGAIN in every pass, it stays (compaction would not even isolate it).",
           lambda k, s: k.migrate(s.p, s.b, 1).migrated)
    sc.add("unpin b", "Release the pin.", lambda k, s: s.pin.unpin())
    sc.add("migrate b again", "Now it moves.", lambda k, s: k.migrate(s.p, s.b, 1).migrated)
    return sc


def truncate_topic(shared, shmem=True):
    kind = "shared" if shared else "private"
    sc = Scenario(f"truncate_{kind}", f"Truncating a file under a {kind} mapping with a pinned page",
                  watch=[("mapping", "p", "m")])

    @sc.step("map the file", f"A one-page {'memfd' if shmem else 'file'} mapped {kind}.")
    def _(k, s):
        s.f = k.open("memfd" if shmem else "data", 1, shmem=shmem)
        s.f.write(0, OLD)
        s.p = k.spawn("parent")
        s.m = s.p.mmap(1, file=s.f, shared=shared)

    if shared:
        sc.add("write through the mapping", "A shared write maps the page-cache page writable.",
               lambda k, s: s.p.write(s.m, NEW))
    else:
        sc.add("write through the mapping", "A private write COWs the page-cache page into an anon copy.",
               lambda k, s: s.p.write(s.m, NEW))
    sc.add("pin", "A long-term R/W pin on the mapped page (an io_uring buffer).",
           lambda k, s: setattr(s, "pin", s.p.pin(s.m, 1, write=True, longterm=True)))
    sc.add("truncate to 0", "unmap_mapping_range(even_cows=1) zaps the PTEs (COW copies too); the page "
           "leaves the page cache but the pin keeps it alive.", lambda k, s: s.f.truncate(0))
    sc.add("access", "Beyond EOF now: SIGBUS.", lambda k, s: s.p.read(s.m, 1))
    sc.add("device reads", "The pin still reads the old page: an orphan.", lambda k, s: s.pin.read(len(NEW)))
    sc.add("unpin", "The last reference goes: the orphan is freed.", lambda k, s: s.pin.unpin())
    return sc


def dontfork():
    sc = Scenario("dontfork", "MADV_DONTFORK and MADV_WIPEONFORK",
                  watch=[("parent a", "p", "a"), ("child a", "c", "a"), ("parent b", "p", "b"),
                         ("child b", "c", "b")])

    @sc.step("two regions", "Two written regions, a and b.")
    def _(k, s):
        _setup(k, s)
        s.b = s.p.mmap(1)
        s.p.write(s.b, OLD)

    sc.add("advise", "a: MADV_DONTFORK (not in the child at all); b: MADV_WIPEONFORK (empty in the child).",
           lambda k, s: (s.p.madvise(s.a, 1, "dontfork"), s.p.madvise(s.b, 1, "wipeonfork"))[-1])
    sc.add("fork", "The parent keeps both pages exclusive and writable.",
           lambda k, s: setattr(s, "c", s.p.fork("child")))
    sc.add("child reads b", "b reads zeros: a fresh mapping of the zero page.", lambda k, s: s.c.read(s.b, 4))
    sc.add("child reads a", "a does not exist in the child: SIGSEGV.", lambda k, s: s.c.read(s.a, 4))
    return sc


def fault_around():
    sc = Scenario("fault_around", "A read fault on a file maps the cached neighbours too (fault-around)",
                  watch=[(f"page {i}", "p", "m", i) for i in range(4)] + [("uncached", "p", "m", 5)])

    @sc.step("cache four pages", "pwrite() fills pages 0-3 of a 6-page file into the page cache; map it.")
    def _(k, s):
        s.f = k.open("data", 6, shmem=True)
        s.f.write(0, b"x" * 4 * k.PAGE_SIZE)
        s.p = k.spawn("reader")
        s.m = s.p.mmap(6, file=s.f, shared=True)

    sc.add("read page 1", "do_read_fault() first maps the cached pages around the fault "
           "(do_fault_around(), 64 KiB window); page 5 is not cached and stays unmapped.",
           lambda k, s: s.p.read(s.m + k.PAGE_SIZE, 1))
    return sc


# -- large folios ------------------------------------------------------------------

def _thp(k, s, pages=512, size=None):
    """A private anon mapping of ``pages`` pages with MADV_HUGEPAGE, written
    whole: one PMD THP (512) or, with ``size`` set to "always", mTHPs."""
    s.p = k.spawn("parent")
    if size and size in k.thp.sizes:        # no mTHP before v6.8: 4 KiB pages then
        k.thp.set(size, "always")
    s.a = s.p.mmap(pages)
    s.p.madvise(s.a, pages, "hugepage")
    s.p.write(s.a, OLD * (pages * k.PAGE_SIZE // len(OLD)))
    s.j, s.kk = s.a + 4 * k.PAGE_SIZE, s.a + 3 * k.PAGE_SIZE


def _mthp(k, s, pages=16, size="64kB"):
    """cow.c's do_run_with_thp(): mmap() twice the size and align the start to the mTHP size inside it (the
    kernel places a small mapping only 4 KiB aligned, and alloc_anon_folio() takes an order only if its
    naturally aligned range fits the VMA), then unmap the slack, MADV_HUGEPAGE, write it whole."""
    s.p = k.spawn("parent")
    if size in k.thp.sizes:        # no mTHP before v6.8: 4 KiB pages then
        k.thp.set(size, "always")
    raw = s.p.mmap(2 * pages)
    s.a = (raw + pages * k.PAGE_SIZE) & ~(pages * k.PAGE_SIZE - 1)
    # trim the slack around the aligned range (cow.c keeps it; the picture is clearer with one 16-page VMA)
    head = (s.a - raw) // k.PAGE_SIZE
    if head:
        s.p.munmap(raw, head)
    if pages - head:
        s.p.munmap(s.a + pages * k.PAGE_SIZE, pages - head)
    s.p.madvise(s.a, pages, "hugepage")
    s.p.write(s.a, OLD * (pages * k.PAGE_SIZE // len(OLD)))
    s.j, s.kk = s.a + 4 * k.PAGE_SIZE, s.a + 3 * k.PAGE_SIZE


def _large_watch(n=512):
    return [("parent head", "p", "a", 0), ("parent K", "p", "a", 3), ("parent J", "p", "a", 4),
            ("child K", "c", "a", 3), ("child J", "c", "a", 4), ("parent last", "p", "a", n - 1)]


def thp_fork_cow():
    sc = Scenario("thp_fork_cow", "fork + COW of a PMD-mapped THP: split, copy one page, then the parent writes",
                  watch=_large_watch())
    sc.add("THP", "A write fault in a MADV_HUGEPAGE range maps a 2 MiB THP with one PMD "
           "(do_huge_pmd_anonymous_page()): refcount 1, entire mapcount 1, AE on the head page.", _thp)
    sc.add("fork", "copy_huge_pmd() shares the THP: refcount 2, entire mapcount 2, both PMDs read-only.",
           lambda k, s: setattr(s, "c", s.p.fork("child")))
    sc.add("child writes K", "do_huge_pmd_wp_page(): shared, so the child's PMD is split (512 PTEs) and only "
           "page K is copied; the parent stays PMD-mapped.", lambda k, s: s.c.write(s.kk, NEW))
    sc.add("parent writes J", "The folio is still mapped by the child: maybe mapped shared, so the parent's "
           "PMD is split and J is copied.", lambda k, s: s.p.write(s.j, NEW))
    sc.add("child exits", "Only the parent maps the folio now; its MM slot holds every mapping.",
           lambda k, s: s.c.exit())
    sc.add("parent writes K", "__wp_can_reuse_large_anon_folio() (v6.15): not maybe shared and large mapcount "
           "== refcount, so K is reused in place and gets AE.", lambda k, s: s.p.write(s.kk, NEW))
    return sc


def mthp_fork_cow():
    sc = Scenario("mthp_fork_cow", "fork + COW of a 64 KiB mTHP (16 PTEs of one folio)",
                  watch=[("parent head", "p", "a", 0), ("parent K", "p", "a", 3), ("parent J", "p", "a", 4),
                         ("child K", "c", "a", 3), ("child J", "c", "a", 4)])
    sc.add("mTHP", "hugepages-64kB/enabled=always: a write fault maps a 64 KiB folio with 16 PTEs "
           "(alloc_anon_folio(), v6.8+; older kernels map 4 KiB pages): refcount 16, large mapcount 16, "
           "AE on every page.",
           _mthp)
    sc.add("fork", "copy_present_ptes() shares the 16 pages: refcount 32, large mapcount 32, AE cleared.",
           lambda k, s: setattr(s, "c", s.p.fork("child")))
    sc.add("child writes K", "Maybe mapped shared: the child copies page K only.", lambda k, s: s.c.write(s.kk, NEW))
    sc.add("child exits", "The parent's MM slot now holds every mapping.", lambda k, s: s.c.exit())
    sc.add("parent writes J", "Exclusive to this mm and every reference a mapping: J is reused (v6.15).",
           lambda k, s: s.p.write(s.j, NEW))
    return sc


def thp_pin_fork():
    sc = Scenario("thp_pin_fork", "fork of a THP with one pinned page: split the PMD, copy all 512 pages",
                  watch=_large_watch())
    sc.add("THP", "A 2 MiB THP mapped by one PMD.", _thp)
    sc.add("pin page J", "io_uring-style R/W long-term pin of one page: refcount +1, _pincount +1 (no 1024 "
           "bias on a large folio).", lambda k, s: setattr(s, "pin", s.p.pin(s.j, 1, write=True)))
    sc.add("fork", "copy_huge_pmd(): maybe pinned and AE -> split the parent's PMD and copy per PTE: "
           "every AE page of a pinned folio is copied for the child.", lambda k, s: setattr(s, "c", s.p.fork("child")))
    sc.add("parent writes J", "The parent's PTEs stayed writable: no fault, the pin sees the write.",
           lambda k, s: s.p.write(s.j, NEW))
    sc.add("check", "The pin reads the parent's new data.", lambda k, s: s.pin.read(len(NEW)) == NEW)
    return sc


def _sparse_thp(k, s):
    """A 2 MiB MADV_HUGEPAGE mapping whose program wrote only pages 0 and 3:
    the first write fault allocates the whole THP (zero-filled,
    do_huge_pmd_anonymous_page()), the second store takes no fault."""
    s.p = k.spawn("parent")
    s.a = s.p.mmap(512)
    s.p.madvise(s.a, 512, "hugepage")
    s.p.write(s.a, OLD)
    s.p.write(s.a + 3 * k.PAGE_SIZE, OLD)


def _shrink_and_look(k, s):
    """The shrinker runs; the outcome says what became of page 100 (so that eras that differ there differ in
    the step's outcome, which the side-by-side comparison marks)."""
    k.shrink_deferred_split()
    info = k.page(s.p, s.a + 100 * k.PAGE_SIZE)
    return "page 100: the zero page" if info.zero_page else "page 100: its own 4 KiB page"


def thp_partial_unmap():
    sc = Scenario("thp_partial_unmap", "Partial munmap of a THP: PMD split, deferred split, shrinker",
                  watch=[("head", "p", "a", 0), ("page 3", "p", "a", 3), ("page 100", "p", "a", 100),
                         ("last", "p", "a", 511)])
    sc.add("THP, two pages written", "One write fault allocated the whole zero-filled 2 MiB THP, mapped by one "
           "PMD; the program stored data in pages 0 and 3 only.", _sparse_thp)
    sc.add("munmap the upper half", "__split_vma() splits the PMD first; zapping 256 PTEs leaves the folio "
           "partially mapped: it goes on the deferred split queue.", lambda k, s: s.p.munmap(s.a + 256 * k.PAGE_SIZE, 256))
    sc.add("shrinker", "deferred_split_scan() -> split_folio(): 4 KiB folios; the 256 unmapped pages are freed, "
           "and since v6.12 (b1f202060afe) so is every mapped page holding only zeros: its PTE now maps the "
           "shared zero page (try_to_map_unused_to_zeropage()). Pages 0 and 3 keep theirs.",
           _shrink_and_look)
    sc.add("write page 100", "A write to the zero page's read-only PTE: do_wp_page() -> wp_page_copy() "
           "allocates a fresh zero-filled page.", lambda k, s: s.p.write(s.a + 100 * k.PAGE_SIZE, NEW))
    return sc


TOPICS = {sc.name: sc for sc in [
    first_touch(), fork_shares(),
    _cow("cow_child_writes", "COW: the child writes first", "child",
         "refcount 2: the child copies; the parent keeps the old page (refcount 1 now)."),
    _cow("cow_parent_writes", "COW: the parent writes while the child maps the page", "parent",
         "refcount 2: the parent copies; the child keeps the original."),
    _cow("cow_after_exit", "COW after the child exited", "exit",
         "refcount 1: nobody else uses the page, so the parent reuses it in place."),
    vmsplice_unmap_in_child(), pin_before_fork(), pin_after_fork(),
    ro_pin_unshare(), ro_pin_unshare(after_exit=True), migrate_pages_topic(),
    truncate_topic(True), truncate_topic(False), dontfork(), fault_around(),
]}

#: The large-folio topics, kept apart from TOPICS so that code iterating the
#: base-page topics (figures, conformance tables) takes them in when ready;
#: ``mmkit.scenarios.get(name)`` finds them.
LARGE_TOPICS = {sc.name: sc for sc in [thp_fork_cow(), mthp_fork_cow(), thp_pin_fork(), thp_partial_unmap()]}
