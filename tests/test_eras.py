"""Each era's rules, and the cow.c selftest table that follows from them."""

import pytest

from mmkit import ERAS, Kernel, era
from mmkit.scenarios import COW_CASES, era_table

PAGE = 4096

# Expected outcomes, written down from kernel-mm-facts.md 8.2-8.12 ("Bugs each
# era shows"), not read back from the model: F = the cow.c case fails.
FAILS = {
    "5.7": {"vmsplice() + unmap in child", "vmsplice() + unmap in child with mprotect() optimization",
            "vmsplice() before fork(), unmap in parent after fork()",
            "vmsplice() + unmap in parent after fork()", "fork() with an iouring fixed buffer",
            "R/O GUP pin on R/O-mapped shared page", "R/O GUP-fast pin on R/O-mapped shared page"},
    "5.8": {"vmsplice() before fork(), unmap in parent after fork()", "fork() with an iouring fixed buffer"},
    "5.9": {"R/O-mapping a page registered as iouring fixed buffer",
            "R/O GUP pin on R/O-mapped shared page", "R/O GUP-fast pin on R/O-mapped shared page",
            "R/O GUP pin on R/O-mapped previously-shared page",
            "R/O GUP-fast pin on R/O-mapped previously-shared page",
            "R/O GUP pin on R/O-mapped exclusive page", "R/O GUP-fast pin on R/O-mapped exclusive page"},
    "5.19": set(), "6.2": set(), "6.18": set(),
}


def test_cow_selftest_table_matches_history():
    """The era x cow.c case table reproduces the kernel's history of COW fixes."""
    table = era_table()
    assert len(table) == 14 == len(COW_CASES)
    for case, row in table.items():
        for name, passed in row.items():
            assert passed == (case not in FAILS[name]), (case, name)


@pytest.mark.parametrize("name", list(ERAS))
def test_basic_cow_always_passes(name):
    """No era leaks a plain COW after fork."""
    k = Kernel(era=name)
    p = k.spawn()
    a = p.mmap(1)
    p.write(a, b"A")
    c = p.fork()
    p.write(a, b"B")
    assert c.read(a, 1) == b"A"


def _vmsplice_leak(e):
    k = Kernel(era=e)
    p = k.spawn()
    a = p.mmap(1)
    p.write(a, b"old")
    c = p.fork()
    pipe = c.vmsplice(a, 3)
    c.munmap(a, 1)
    p.write(a, b"new")
    return pipe.read(3), k


def test_mapcount_reuse_rule_leaks_under_5_7():
    """5.7 reuses a page with mapcount 1 although a pipe holds it: the child reads the parent's write."""
    data, k = _vmsplice_leak("5.7")
    assert data == b"new"
    assert "reuse_swap_page: mapcount 1 (refcount 2 not consulted) -> reuse" in [str(e) for e in k.trace]


def test_flipping_reuse_rule_reintroduces_the_leak():
    """6.18 with the mapcount reuse rule flipped back (and no AE) leaks again."""
    e = era("6.18").replace(reuse_rule="mapcount", anon_exclusive=False, gup_unshares_anon=False)
    assert e.name == "6.18*"
    assert _vmsplice_leak(e)[0] == b"new"
    assert _vmsplice_leak("6.18")[0] == b"old"


def test_5_8_read_gup_breaks_cow():
    """Under 5.8 a read-only GUP on a shared COW page copies it for the caller first."""
    k = Kernel(era="5.8")
    p = k.spawn()
    a = p.mmap(1)
    p.write(a, b"A")
    c = p.fork()
    c.vmsplice(a, 1)
    assert k.page(c, a).pfn != k.page(p, a).pfn
    assert "should_force_cow_break" in [e.func for e in k.trace]


def test_5_9_fork_copies_pinned_page_but_no_ae():
    """5.9 copies a maybe-pinned page at fork; it has no PageAnonExclusive."""
    k = Kernel(era="5.9")
    p = k.spawn()
    a = p.mmap(1)
    p.write(a, b"A")
    p.pin(a, write=True)
    c = p.fork()
    assert k.page(c, a).pfn != k.page(p, a).pfn
    assert not k.page(p, a).exclusive and not k.page(c, a).exclusive


def test_fork_shares_pinned_page_before_5_9():
    """Before 5.9 fork shares a pinned page and write-protects the parent's PTE."""
    k = Kernel(era="5.8")
    p = k.spawn()
    a = p.mmap(1)
    p.write(a, b"A")
    p.pin(a, write=True)
    c = p.fork()
    assert k.page(c, a).pfn == k.page(p, a).pfn and not k.page(p, a).writable


def test_mm_without_pins_shares_even_with_1024_refs():
    """folio_needs_cow_for_dma() is false when the mm never pinned: 1024 FOLL_GETs do not force a copy."""
    k = Kernel()
    p = k.spawn()
    a = p.mmap(1)
    p.write(a, b"A")
    for _ in range(1024):
        p.get_user_pages(a, 1)
    c = p.fork()
    assert k.page(c, a).pfn == k.page(p, a).pfn and k.page(p, a).maybe_pinned


def test_false_positive_maybe_pinned_copies_at_fork():
    """Once the mm has pinned, 1024 plain references look pinned and the page is copied at fork."""
    k = Kernel()
    p = k.spawn()
    a, b = p.mmap(1), p.mmap(1)
    p.write(a, b"A")
    p.write(b, b"B")
    p.pin(b).unpin()                      # MMF_HAS_PINNED stays set
    for _ in range(1024):
        p.get_user_pages(a, 1)
    c = p.fork()
    assert k.page(c, a).pfn != k.page(p, a).pfn


@pytest.mark.parametrize("name,expect", [("5.7", False), ("5.19", False), ("6.2", True), ("6.18", True)])
def test_mprotect_upgrade_rule(name, expect):
    """mprotect(rw) makes an exclusive clean... anon PTE writable directly only from 6.0/6.2 on."""
    k = Kernel(era=name)
    p = k.spawn()
    a = p.mmap(1)
    p.write(a, b"A")
    p.mprotect(a, 1, "r")
    p.mprotect(a, 1, "rw")
    assert k.page(p, a).writable is expect


def test_mprotect_dirty_rule_needs_dirty_pte():
    """The 6.0 rule upgrades only exclusive PTEs that are dirty."""
    e = era("6.18").replace(mprotect_upgrade="dirty")
    k = Kernel(era=e)
    p = k.spawn()
    a = p.mmap(1)
    p.write(a, b"A")
    p.pin(a, write=False)                 # exclusive page, PTE dirty from the write
    p.mprotect(a, 1, "r")
    p.mprotect(a, 1, "rw")
    assert k.page(p, a).writable


def test_unshare_rule_off_pins_shared_page():
    """Without gup_unshares_anon (5.9-5.18) a R/O pin lands on the shared page itself."""
    k = Kernel(era="5.9")
    p = k.spawn()
    a = p.mmap(1)
    p.write(a, b"A")
    c = p.fork()
    pin = p.pin(a, write=False)
    assert k.page(p, a).pfn == k.page(c, a).pfn and k.page(p, a).pincount == 1
    p.write(a, b"B")
    assert pin.read(1) == b"A"            # stale


def test_era_rules_are_documented():
    """Every era rule is explained in the Era docstring with its kernel source."""
    doc = era().__class__.__doc__
    for rule in era().rules():
        assert rule in doc
    assert "wp_can_reuse_anon_folio" in doc and "gup_must_unshare" in doc


def test_non_anon_cases_fixed_in_6_2():
    """cow.c non-anon R/O long-term pins (zero page, memfd, tmpfile) pass from 6.2 (and under 5.8's forced COW)."""
    from mmkit.scenarios import NON_ANON_CASES
    table = era_table(cases=NON_ANON_CASES)
    for case, row in table.items():
        if case.startswith("Basic COW"):
            assert all(row.values()), case
        else:
            assert row == {"5.7": False, "5.8": True, "5.9": False, "5.19": False, "6.2": True, "6.18": True}, case


def test_large_folio_rules_per_preset():
    """Each preset carries the large-folio rules of its kernel: THP COW, PTE-mapped reuse, mTHP, MM IDs, alignment."""
    from mmkit.era import ERAS
    got = {n: (e.thp_cow, e.large_reuse, e.mthp, e.mm_id, e.thp_align_anon) for n, e in ERAS.items()}
    assert got == {
        "5.7": ("copy_huge", "mapcount", False, False, False),
        "5.8": ("split_mapcount", "mapcount", False, False, False),
        "5.9": ("split_mapcount", "refcount", False, False, False),
        "5.19": ("split_exclusive", "refcount", False, False, False),
        "6.2": ("split_exclusive", "refcount", False, False, False),
        "6.18": ("split_exclusive", "mm_id", True, True, True),
    }


def test_mm_id_reuse_needs_mm_ids():
    """An era cannot reuse PTE-mapped large folios via MM IDs without keeping MM IDs."""
    from mmkit.errors import InvalidArgument
    with pytest.raises(InvalidArgument):
        era("6.18").replace(mm_id=False)
    assert era("6.18").replace(mm_id=False, large_reuse="never").large_reuse == "never"
