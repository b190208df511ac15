"""Seeded exercise generators, one kind per notebook.

Each generator draws a short program from ``random.Random(seed)``, running
it on the model while it draws so that every line is valid, and chooses
what to ask.  The answer is whatever the model computes; nothing is
written by hand.  Three forms exist:

``predict``  given the program, predict values (counters, copy or reuse...).
``inverse``  given a final state, pick the program (of four) that produces it.
``build``    write ``build(k)`` that produces a given state.
"""

import random

from ..errors import MMError
from ..kernel import Kernel
from .program import Op, Program, show_value
from .question import GENERIC, Part, Question

__all__ = ["KINDS", "Kind", "make_question"]

FIELDS = ("refcount", "mapcount", "pincount", "exclusive", "writable")


class Builder:
    """Draws a program line by line, running each line on a live model."""

    def __init__(self, rng, era):
        self.rng = rng
        self.era = era
        self.k = Kernel(era=era)
        self.env = {}
        self.ops = []
        self.values = []
        self.digit = 1

    def do(self, verb, *args):
        op = Op(verb, *args)
        try:
            v = op.apply(self.k, self.env)
        except MMError as e:
            v = getattr(e, "signal", None) or getattr(e, "errno", None)
            if v is None:
                raise
        self.ops.append(op)
        self.values.append(v)
        return v

    def write(self, X, A="a", page=0):
        d = str(self.digit)
        self.digit += 1
        if page:
            return self.do("write", X, A, d, page)
        return self.do("write", X, A, d)

    def alive(self, X):
        return X in self.env and self.env[X].alive

    def maps(self, X, A="a"):
        return self.alive(X) and A in self.env and self.env[X].mm.find_vma(self.env[A]) is not None

    def active(self, H):
        return H in self.env and self.env[H].active

    def page(self, X, A="a"):
        return self.k.page(self.env[X], self.env[A])

    def program(self):
        return Program(self.ops)

    @property
    def n(self):
        return len(self.ops)


def _counter(X, A, field, name=None, page=0):
    who = f"{X}'s page at {A}" + (f" + {page}*4096" if page else "")
    prompts = {"refcount": f"refcount of {who}", "mapcount": f"mapcount of {who}",
               "pincount": f"pincount of {who}", "exclusive": f"is {who} PageAnonExclusive?",
               "writable": f"is {X}'s PTE for {A} writable?", "present": f"is a page mapped in {X} at {A}?"}
    return Part(name or field, field, lambda run: getattr(run.page(X, A, page), field),
                key=(X, A, page), prompt=prompts[field])


def _fault(b, i, X, A="a"):
    """What the write on line ``i`` (negative: from the end of what ``b`` drew so far) did."""
    n = i % b.n
    return Part("fault", "fault", lambda run: run.lines[n].fault, key=(X, A, 0),
                prompt=f"what does {X}'s write on line {n + 1} do: no fault, reuse or copy?")


def _value(b, i, name, prompt, reader=None, key=None):
    """The value of line ``i`` (negative: from the end of what ``b`` drew so far)."""
    n = i % b.n
    return Part(name, "data", lambda run: show_value(run.lines[n].value), key=key, prompt=prompt, reader=reader)


def _line_no(b, i):
    return (i % b.n) + 1


# -- generators ------------------------------------------------------------------
def gen_counters(b):
    rng = b.rng
    b.do("spawn", "P")
    b.do("mmap", "P", "a")
    b.write("P")
    for _ in range(rng.randint(2, 4)):
        cands = []
        if "C" not in b.env:
            cands += ["fork"] * 3
        if b.maps("C"):
            cands += ["C.exit", "C.munmap", "C.write"]
        if "pin" not in b.env:
            cands.append("pin")
        elif b.active("pin"):
            cands.append("unpin")
        if "pipe" not in b.env:
            cands.append("vmsplice")
        elif b.active("pipe"):
            cands.append("pipe_read")
        if "ref" not in b.env:
            cands.append("gup")
        cands.append("P.write")
        c = rng.choice(cands)
        if c == "fork":
            b.do("fork", "P", "C")
        elif c == "C.exit":
            b.do("exit", "C")
        elif c == "C.munmap":
            b.do("munmap", "C", "a")
        elif c == "pin":
            b.do("pin", "P", "a", "pin", True, True)
        elif c == "unpin":
            b.do("unpin", "pin")
        elif c == "vmsplice":
            b.do("vmsplice", rng.choice([x for x in ("P", "C") if b.maps(x)]), "a", "pipe")
        elif c == "pipe_read":
            b.do("pipe_read", "pipe")
        elif c == "gup":
            b.do("gup", "P", "a", "ref")
        elif c == "C.write":
            b.write("C")
        else:
            b.write("P")
    parts = [_counter("P", "a", f) for f in ("refcount", "mapcount", "pincount", "exclusive")]
    return parts, "After the last line, what are the counters of the page P maps at a?"


def gen_fork(b):
    rng = b.rng
    b.do("spawn", "P")
    b.do("mmap", "P", "a")
    zero = rng.random() < 0.15
    if zero:
        b.do("read", "P", "a")
    else:
        b.write("P")
    advice = rng.choice([None, None, "dontfork", "wipeonfork"])
    if advice:
        b.do("madvise", "P", "a", advice)
    if not zero and rng.random() < 0.35:
        b.do("pin", "P", "a", "pin", True, True)
    b.do("fork", "P", "C")
    ask = rng.choice(["parent", "child", "read"])
    if ask == "read":
        b.do("read", "C", "a")
        return [_value(b, -1, "value", "what does C's read return?", key=("C", "a", 0))], \
            "What does the child's read on the last line return?"
    if ask == "child":
        parts = [_counter("C", "a", "present")] + [_counter("C", "a", f) for f in ("refcount", "mapcount", "exclusive")]
        return parts, "Right after fork(), what does the child's page table show at a?"
    parts = [_counter("P", "a", f) for f in ("refcount", "mapcount", "exclusive", "writable")]
    return parts, "Right after fork(), what are the counters of the page P maps at a, and its PTE's write bit?"


def gen_cow(b):
    rng = b.rng
    b.do("spawn", "P")
    b.do("mmap", "P", "a")
    if rng.random() < 0.2:
        b.do("read", "P", "a")
    else:
        b.write("P")
    if rng.random() < 0.9:
        b.do("fork", "P", "C")
    zero = b.page("P").zero_page
    for _ in range(rng.randint(0, 3)):
        cands = [x + ".write" for x in ("P", "C") if b.maps(x) and rng.random() < 0.4]
        if b.maps("C"):
            cands += ["C.exit", "C.munmap", "C.read"]
        if "pipe" not in b.env and [x for x in ("P", "C") if b.maps(x)]:
            cands += ["vmsplice"] * 2
        if b.active("pipe"):
            cands.append("pipe_read")
        if not cands:
            break
        c = rng.choice(cands)
        if c.endswith(".write"):
            b.write(c[0])
        elif c == "C.exit":
            b.do("exit", "C")
        elif c == "C.munmap":
            b.do("munmap", "C", "a")
        elif c == "C.read":
            b.do("read", "C", "a")
        elif c == "vmsplice":
            b.do("vmsplice", rng.choice([x for x in ("P", "C") if b.maps(x)]), "a", "pipe")
        else:
            b.do("pipe_read", "pipe")
    writers = [x for x in ("P", "C") if b.maps(x)]
    w = rng.choice(writers)
    b.write(w)
    parts = [_fault(b, -1, w)]
    other = "C" if w == "P" else "P"
    if b.active("pipe") and rng.random() < 0.6:
        b.do("pipe_read", "pipe")
        parts.append(_value(b, -1, "pipe", "what does the pipe read on the last line return?", reader="pipe"))
        return parts, f"What does {w}'s last write do, and what does the pipe then return?"
    if b.maps(other) and not zero:
        parts += [_counter(other, "a", "refcount", f"{other}.refcount"),
                  _counter(other, "a", "mapcount", f"{other}.mapcount")]
        return parts, f"What does {w}'s last write do, and what are the counters of {other}'s page afterwards?"
    parts += [_counter(w, "a", "refcount"), _counter(w, "a", "exclusive")]
    return parts, f"What does {w}'s last write do, and what does {w}'s page look like afterwards?"


def gen_pin(b):
    rng = b.rng
    b.do("spawn", "P")
    b.do("mmap", "P", "a")
    b.write("P")
    variant = rng.choice(["pin_fork", "fork_pin", "coherence", "get_vs_pin"])
    if variant == "pin_fork":
        if rng.random() < 0.5:
            b.do("gup", "P", "a", "ref")
        b.do("pin", "P", "a", "pin", True, True)
        if rng.random() < 0.3:
            b.write("P")
        b.do("fork", "P", "C")
        shared = Part("fork", "shared",
                      lambda run: "shared" if run.page("P", "a").pfn == run.page("C", "a").pfn else "copied",
                      key=("P", "a", 0), prompt="does fork() share P's page with C or give C a copy?")
        return [shared, _counter("P", "a", "refcount"), _counter("P", "a", "writable")], \
            "What does fork() do with the pinned page?"
    if variant == "fork_pin":
        b.do("fork", "P", "C")
        if rng.random() < 0.4:
            b.do("exit", "C")
        b.do("pin", "P", "a", "pin", True, True)
        return [_counter("P", "a", f) for f in ("refcount", "pincount", "exclusive", "writable")], \
            "A long-term read-write pin (an io_uring fixed buffer) after fork(): what does P's page look like?"
    if variant == "coherence":
        b.do("pin", "P", "a", "pin", True, True)
        for _ in range(rng.randint(1, 3)):
            c = rng.choice(["fork", "mprotect", "P.write", "C.write"] if "C" in b.env else
                           ["fork", "fork", "mprotect", "P.write"])
            if c == "fork" and "C" not in b.env:
                b.do("fork", "P", "C")
            elif c == "mprotect":
                b.do("mprotect", "P", "a", "r")
                b.do("mprotect", "P", "a", "rw")
            elif c == "C.write" and b.maps("C"):
                b.write("C")
            else:
                b.write("P")
        b.write("P")
        b.do("dev_read", "pin")
        return [_value(b, -1, "device", "what does the device read through the pin?", reader="pin"),
                _counter("P", "a", "refcount")], \
            "The device reads the buffer on the last line. What does it see, and what is P's refcount?"
    # get_vs_pin
    holders = rng.sample(["gup", "pin", "vmsplice", "pin_ro"], rng.randint(1, 3))
    for h in holders:
        if h == "gup":
            b.do("gup", "P", "a", "ref")
        elif h == "pin":
            b.do("pin", "P", "a", "pin", True, True)
        elif h == "pin_ro":
            b.do("pin", "P", "a", "pin2", False, False)
        else:
            b.do("vmsplice", "P", "a", "pipe")
    return [_counter("P", "a", f) for f in ("refcount", "mapcount", "pincount")], \
        "Who holds P's page? Give its counters after the last line."


def gen_unshare(b):
    rng = b.rng
    b.do("spawn", "P")
    b.do("mmap", "P", "a")
    prep = rng.choice(["shared", "shared", "previously shared", "exclusive", "zero page"])
    if prep == "zero page":
        b.do("read", "P", "a")
    else:
        b.write("P")
    if prep in ("shared", "previously shared"):
        b.do("fork", "P", "C")
        if prep == "previously shared":
            b.do("exit", "C")
    elif prep == "exclusive":
        b.do("mprotect", "P", "a", "r")
        b.do("mprotect", "P", "a", "rw")
    how = rng.choice(["ro_short", "ro_long", "ro_long", "get", "rw"])
    if how == "get":
        b.do("gup", "P", "a", "pin")
    else:
        b.do("pin", "P", "a", "pin", how == "rw", how != "ro_short")
    gi = b.n - 1
    copied = Part("gup", "copied", lambda run: "copied" if run.lines[gi].after.pfn != run.lines[gi].before.pfn
                  else "same page", key=("P", "a", 0),
                  prompt=f"does line {gi + 1} leave P on a new page (copied) or on the same page?")
    if rng.random() < 0.5 or prep == "zero page":
        return [copied, _counter("P", "a", "writable"), _counter("P", "a", "exclusive")], \
            f"What does the GUP request on line {gi + 1} do to P's page?"
    b.write("P")
    b.do("dev_read" if how != "get" else "pipe_read", "pin")
    return [copied, _fault(b, -2, "P"),
            _value(b, -1, "device", "what does the holder read on the last line?", reader="pin")], \
        f"What does line {gi + 1} do, what does P's next write do, and what does the holder then read?"


def gen_migrate(b):
    rng = b.rng
    b.do("spawn", "P")
    b.do("mmap", "P", "a")
    b.write("P")
    for _ in range(rng.randint(1, 4)):
        cands = []
        if "C" not in b.env:
            cands += ["fork"] * 3
        if b.maps("C"):
            cands += ["C.exit", "C.write", "C.munmap"]
        if "pin" not in b.env and "pipe" not in b.env:
            cands += ["pin", "vmsplice"]
        if b.active("pin"):
            cands += ["unpin"] * 2
        if b.active("pipe"):
            cands += ["pipe_read"] * 2
        c = rng.choice(cands)
        if c == "fork":
            b.do("fork", "P", "C")
        elif c == "C.exit":
            b.do("exit", "C")
        elif c == "C.write":
            b.write("C")
        elif c == "C.munmap":
            b.do("munmap", "C", "a")
        elif c == "pin":
            b.do("pin", "P", "a", "pin", True, True)
        elif c == "unpin":
            b.do("unpin", "pin")
        elif c == "vmsplice":
            b.do("vmsplice", rng.choice([x for x in ("P", "C") if b.maps(x)]), "a", "pipe")
        else:
            b.do("pipe_read", "pipe")
    b.do("migrate", "P", "a")
    result = Part("result", "migrated", lambda run: "migrated" if run.lines[-1].value == 1 else "EAGAIN",
                  key=("P", "a", 0), prompt="does the page move (migrated) or not (EAGAIN)?")
    parts = [result, _counter("P", "a", "mapcount"), _counter("P", "a", "exclusive")]
    if b.maps("C") and rng.random() < 0.5:
        parts.append(Part("same", "present", lambda run: run.page("P", "a").pfn == run.page("C", "a").pfn,
                          key=("P", "a", 0), prompt="do P and C map the same page afterwards?"))
    return parts, "k.migrate() tries to move P's page (as compaction would). What happens?"


def gen_truncate(b):
    rng = b.rng
    shmem = rng.random() < 0.5
    shared = rng.random() < 0.5
    b.do("open", "f", 2, shmem)
    b.do("fwrite", "f", 0, str(b.digit))
    b.digit += 1
    b.do("fwrite", "f", 1, str(b.digit))
    b.digit += 1
    b.do("spawn", "P")
    b.do("mmap_file", "P", "m", "f", 2, shared)
    for page in (0, 1):
        if rng.random() < 0.5:
            b.write("P", "m", page)
        else:
            b.do("read", "P", "m", page)
    holder = rng.choice([None, "pin", "pin", "pipe"])
    if holder == "pin":
        if b.do("pin", "P", "m", "pin", True, True) is not None:
            holder = "refused"      # EFAULT: long-term writable pin of a file that needs dirty tracking
    elif holder == "pipe":
        b.do("vmsplice", "P", "m", "pipe")
    newsize = rng.choice([0, 1])
    b.do("truncate", "f", newsize)
    parts = []
    page = rng.choice([0, 1, 1]) if newsize == 1 else rng.choice([0, 1])
    b.do("read", "P", "m", page)
    parts.append(_value(b, -1, "access", f"what does P's read of page {page} of the mapping return?",
                        reader="mapping", key=("P", "m", page)))
    if holder in ("pin", "pipe"):
        if rng.random() < 0.4:
            b.do("truncate", "f", 2)
            b.do("fwrite", "f", 0, str(b.digit))
            b.digit += 1
        b.do("dev_read" if holder == "pin" else "pipe_read", holder)
        parts.append(_value(b, -1, holder, f"what does the {'device read through the pin' if holder == 'pin' else 'pipe read'} "
                            "return on the last line?", reader=holder))
    elif holder == "refused":
        parts.insert(0, Part("pin", "data", lambda run: show_value(next(
            ln.value for ln in run.lines if ln.op.verb == "pin") or "ok"),
            prompt='what does the pin on the mapping return: "ok" or an errno name?'))
    kind = ("a memfd (shmem)" if shmem else "an ext4-like file") + (", mapped shared" if shared else ", mapped private")
    return parts, f"The file is {kind} and is truncated. What do the reads return?"


class Kind:
    """One exercise kind: its generator, notebook, forms and hints."""

    def __init__(self, name, gen, notebook, title, hints, forms=("predict", "inverse", "build")):
        self.name = name
        self.gen = gen
        self.notebook = notebook
        self.title = title
        self.hints = hints
        self.forms = forms

    def __repr__(self):
        return f"<Kind {self.name}: {self.title}>"


KINDS = {k.name: k for k in [
    Kind("counters", gen_counters, "00-orientation", "the three counters and PageAnonExclusive", [
        "List every holder of the page at the end: page-table entries (in every process), pins, GUP "
        "references and pipe buffers. Which holders does each counter count?",
        "refcount: every holder, 1024 per FOLL_PIN (GUP_PIN_COUNTING_BIAS, mm/gup.c: try_grab_folio()). "
        "mapcount: page-table entries only (folio_mapcount()). pincount: FOLL_PIN pins only. PageAnonExclusive: "
        "set on a page created or reused by one process, cleared by fork(). The zero page counts nothing."]),
    Kind("fork", gen_fork, "01-fork", "what fork() shares, write-protects, skips or copies", [
        "What does fork() do with the parent's VMA: skip it (MADV_DONTFORK), give the child an empty one "
        "(MADV_WIPEONFORK), or copy its page table?",
        "dup_mmap() skips VM_DONTCOPY VMAs and copies no page table for VM_WIPEONFORK ones. "
        "copy_present_ptes() (mm/memory.c) shares an anon page: refcount+1, mapcount+1, PageAnonExclusive "
        "cleared, both PTEs write-protected; unless it may be pinned: then copy_present_page() gives the child "
        "a copy and leaves the parent's PTE writable. The zero page's PTE is copied as is."]),
    Kind("cow", gen_cow, "02-cow", "copy or reuse on a write fault", [
        "At the moment of the last write, is the writer's PTE writable? If not, who else holds that page: "
        "other page tables, a pipe?",
        "do_wp_page() (mm/memory.c) reuses a PageAnonExclusive page at once; otherwise "
        "wp_can_reuse_anon_folio() reuses only if the refcount is exactly 1, whatever the mapcount; the zero "
        "page and anything else go to wp_page_copy()."]),
    Kind("pin", gen_pin, "03-gup", "FOLL_GET, FOLL_PIN and fork with a pinned page", [
        "A pin holds a page, not an address. After each line, is the page the device holds still the page "
        "P maps at a?",
        "FOLL_PIN adds 1024 to a small page's refcount, FOLL_GET adds 1. fork() copies a maybe-pinned "
        "exclusive page for the child at once (copy_present_page()) and leaves the parent's PTE writable. "
        "A read-write pin needs a writable PTE, so on a shared page it breaks COW first."]),
    Kind("unshare", gen_unshare, "04-unshare", "FAULT_FLAG_UNSHARE for read-only pins", [
        "Does this GUP request need an exclusive page? Ask: FOLL_PIN or FOLL_GET? With FOLL_WRITE or "
        "without? Is the page PageAnonExclusive right now?",
        "gup_must_unshare() (mm/internal.h) is true only for FOLL_PIN without FOLL_WRITE: on an anon page "
        "that is not PageAnonExclusive, or (from 6.2) with FOLL_LONGTERM on a non-anon page such as the zero "
        "page. do_wp_page() with FAULT_FLAG_UNSHARE reuses (refcount 1) or copies, and leaves the PTE "
        "read-only. A read-write pin takes a write fault instead."]),
    Kind("migrate", gen_migrate, "05-migration", "migration, rmap walks and pinned pages", [
        "Migration replaces the PTEs found by the rmap walk and then needs the page to have no holder "
        "outside the page tables. Who holds P's page when k.migrate() runs?",
        "try_to_migrate_one() (mm/rmap.c) must clear PageAnonExclusive with folio_try_share_anon_rmap_pte(), "
        "which fails for a maybe-pinned page; __migrate_folio() (mm/migrate.c) fails unless refcount == "
        "folio_expected_ref_count() + 1. PageAnonExclusive travels in the migration entry and is set again "
        "on the new page; every process's PTE is pointed at the new page."]),
    Kind("truncate", gen_truncate, "06-truncation", "truncation, SIGBUS and the orphaned pinned page", [
        "After the truncation, which pages of the mapping lie beyond the new end of file? Who still holds "
        "the old pages?",
        "truncate_pagecache() (mm/truncate.c) zaps every PTE beyond the new EOF, private COW copies included "
        "(even_cows = 1), and removes those pages from the page cache; an access there gets SIGBUS "
        "(filemap_fault()). A pinned or spliced page is not freed: its holder keeps the old contents, and a "
        "regrown file gets new zero-filled pages. A long-term writable pin of a shared mapping of a file "
        "that needs dirty tracking (not shmem) is refused with EFAULT."],
         forms=("predict",)),
]}


# -- forms -------------------------------------------------------------------------
def _state(run, key=("P", "a", 0)):
    i = run.page(*key)
    return tuple(getattr(i, f) for f in FIELDS) if i.present else None


def _target(run):
    """The end state an inverse or build question asks for: P's page, not
    the zero page (whose own refcount is no one's business)."""
    i = run.page("P", "a")
    return None if i.zero_page else _state(run)


def _describe(field, value):
    if field in ("exclusive", "writable"):
        return {"exclusive": "PageAnonExclusive", "writable": "writable"}[field] + ("" if value else " (not)")
    return f"{field} {value}"


class InverseChecker:
    """Multiple choice: which program produces the state shown?"""

    form = 'q.check("A") -- the letter of the program that ends in this state'

    def __init__(self, target, letter, states):
        self.target = target
        self.letter = letter
        self.states = states          # letter -> state tuple

    def evaluate(self, q, answer):
        if answer is ...:
            return None, ["No answer yet: replace ... with a letter."]
        if not isinstance(answer, str) or answer.strip().upper() not in q.choices:
            return None, [f"Could not read the answer {answer!r}: answer with one of "
                          f"{', '.join(repr(x) for x in q.choices)}."]
        a = answer.strip().upper()
        if a == self.letter:
            return True, ["Correct."]
        st = self.states[a]
        msgs = [f"Not ({a})."]
        if st is None:
            msgs.append(f"Program ({a}) leaves no page mapped in P at a.")
            return False, msgs
        diffs = [f for f, x, y in zip(FIELDS, st, self.target) if x != y]
        desc = "; ".join(f"{f}: {_describe(f, x)} instead of the {y!r} shown" for f, x, y in
                         zip(FIELDS, st, self.target) if x != y)
        msgs.append(f"Program ({a}) ends differently -- {desc}.")
        from .misconceptions import diagnose
        from .question import _Context
        prog = q.choices[a]
        sub = Question(prog, [_counter("P", "a", f) for f in FIELDS], dict(q.params), "")
        seen = set()
        for f in diffs:
            part = next(p for p in sub.parts if p.name == f)
            m = diagnose(part, self.target[FIELDS.index(f)], st[FIELDS.index(f)], _Context(sub, part, sub.run))
            if m is not None and m.key not in seen:
                seen.add(m.key)
                msgs.append(f"{m.title}: {m.explain}")
        msgs.append("q.hint() gives a hint.")
        return False, msgs

    def hint3(self, q):
        wrong = [x for x in q.choices if x != self.letter and self.states[x] is not None]
        x = wrong[q.params.get("seed", 0) % len(wrong)] if wrong else None
        if x is None:
            return "Eliminate the programs that leave no page mapped."
        f = next(f for f, a, b in zip(FIELDS, self.states[x], self.target) if a != b)
        return f"Eliminate ({x}): it ends with a different {f} than the state shown."

    def solution_text(self, q):
        sub = Question(q.choices[self.letter], [_counter("P", "a", f) for f in FIELDS], dict(q.params), "")
        return f"Answer: {self.letter}\n" + "\n".join(sub._walkthrough_text())


class BuildChecker:
    """Write build(k) -> (process, address) reaching a target state."""

    form = "q.check(build) where build(k) returns (process, address)"

    def __init__(self, target, program):
        self.target = target
        self.program = program

    def evaluate(self, q, fn):
        if fn is ...:
            return None, ["No answer yet: define build(k) and call q.check(build)."]
        if not callable(fn):
            return None, [f"Pass the function itself: q.check(build), not {fn!r}."]
        k = Kernel(era=q.era)
        try:
            res = fn(k)
        except Exception as e:
            return False, [f"build(k) raised {type(e).__name__}: {e}"]
        try:
            proc, addr = res
            info = k.page(proc, addr)
        except Exception as e:
            return None, [f"build(k) must return (process, address); got {res!r} ({e})."]
        if not info.present:
            return False, ["No page is mapped at that address in that process at the end of build(k)."]
        got = tuple(getattr(info, f) for f in FIELDS)
        if got == self.target:
            return True, ["Correct: your program reaches the state."]
        msgs = ["Not yet: " + "; ".join(f"{f} is {g!r}, the target is {t!r}" for f, g, t in
                                        zip(FIELDS, got, self.target) if g != t) + "."]
        gd = dict(zip(FIELDS, got))
        td = dict(zip(FIELDS, self.target))
        if gd["refcount"] != td["refcount"]:
            diff = td["refcount"] - gd["refcount"]
            if diff and diff % 1023 == 0 or diff and diff % 1024 == 0:
                msgs.append("A FOLL_PIN adds 1024 to the refcount of a small page (GUP_PIN_COUNTING_BIAS), "
                            "a FOLL_GET reference or a pipe buffer adds 1.")
            else:
                msgs.append("refcount: " + GENERIC["refcount"])
        if gd["mapcount"] != td["mapcount"]:
            msgs.append("mapcount counts page-table entries: how many processes must map this very page?")
        if gd["pincount"] != td["pincount"]:
            msgs.append("pincount counts FOLL_PIN pins (p.pin()), not get_user_pages() or vmsplice() references.")
        if gd["exclusive"] != td["exclusive"]:
            msgs.append("exclusive: " + GENERIC["exclusive"])
        if gd["writable"] != td["writable"]:
            msgs.append("writable: " + GENERIC["writable"])
        msgs.append("q.hint() gives a hint.")
        return False, msgs

    def hint3(self, q):
        code = self.program.code().splitlines()
        return "One program that works starts like this:\n" + "\n".join(code[:max(3, len(code) // 2)])

    def solution_text(self, q):
        return ("One solution:\n\ndef build(k):\n" + "\n".join("    " + ln for ln in self.program.code().splitlines())
                + '\n    return P, a\n\n' + "\n".join(Question(self.program, [_counter("P", "a", f) for f in FIELDS],
                                                             dict(q.params), "")._walkthrough_text()))


def _draw(kind, seed, era):
    b = Builder(random.Random(seed), era)
    parts, text = KINDS[kind].gen(b)
    return b, parts, text


def _mutants(prog, setup=3):
    ops = prog.ops
    out = []
    for i in range(setup, len(ops)):
        out.append(Program(ops[:i] + ops[i + 1:]))
    for i in range(setup, len(ops) - 1):
        out.append(Program(ops[:i] + [ops[i + 1], ops[i]] + ops[i + 2:]))
    return out


def make_question(kind, seed, form="predict", era="6.18"):
    """Build the question of ``kind`` / ``seed`` / ``form`` / ``era``."""
    spec = KINDS[kind]
    params = {"kind": kind, "seed": seed, "form": form, "era": era}
    b, parts, text = _draw(kind, seed, era)
    hints = spec.hints
    if form == "predict":
        return Question(b.program(), parts, params, text, hints)
    rng = random.Random(f"{kind}-{seed}-{form}")
    # the program whose end state is the target: must leave P's page mapped
    prog = b.program()
    target = _target(prog.run(era))
    while target is None:
        b, parts, text = _draw(kind, rng.randrange(10 ** 9), era)
        prog = b.program()
        target = _target(prog.run(era))
    if form == "build":
        intro = ("Write a function build(k) that makes a page reach the state below, using k.spawn(), "
                 "p.mmap(), p.write(), p.fork(), p.pin() and the other verbs of mmkit, and returns "
                 "(process, address).")
        text = "Target: " + ", ".join(f"{f}={v!r}" for f, v in zip(FIELDS, target))
        return Question(prog, [], params, text, [
            "Start from the counters you need: which holders give that refcount, which processes must map "
            "the page for that mapcount, and which events set or clear PageAnonExclusive?",
            "Pins add 1024 each and pincount 1; fork() shares (mapcount 2, exclusive cleared, read-only) unless "
            "the page is pinned; a write fault on a shared page copies, on an unshared one reuses; munmap and "
            "exit remove mappings."], intro=intro, checker=BuildChecker(target, prog))
    if form != "inverse":
        raise ValueError(f"unknown form {form!r}")
    options = [prog]
    states = [target]
    candidates = _mutants(prog)
    rng.shuffle(candidates)
    for i in range(40):
        # mostly programs of the same kind; a few from the counters kind for variety
        other = kind if i < 30 or kind == "counters" else "counters"
        try:
            bb, _, _ = _draw(other, rng.randrange(10 ** 9), era)
            candidates.append(bb.program())
        except MMError:
            pass
    for cand in candidates:
        if len(options) == 4:
            break
        try:
            st = _state(cand.run(era))
        except Exception:
            continue
        if st is None or st in states:
            continue
        options.append(cand)
        states.append(st)
    order = list(range(len(options)))
    rng.shuffle(order)
    letters = "ABCD"
    choices = {letters[j]: options[i] for j, i in enumerate(order)}
    st_by = {letters[j]: states[i] for j, i in enumerate(order)}
    letter = letters[order.index(0)]
    text = ("Which program leaves the page P maps at a with " +
            ", ".join(f"{f}={v!r}" for f, v in zip(FIELDS, target)) + "?")
    return Question(prog, [], params, text, [
        "Do not run every program in your head: find the line where the programs differ and ask what that "
        "line does to the counters.",
        "Compare pins (1024 each), pipe buffers and GUP references (1 each), mappings (mapcount), and whether "
        "the last event on the page was a fork (clears PageAnonExclusive) or a fault that reused or copied "
        "(sets it)."], choices=choices, checker=InverseChecker(target, letter, st_by))
