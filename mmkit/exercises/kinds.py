"""Seeded exercise generators: kinds are data, programs are drawn.

A kind (:class:`Kind`) is data: the setup lines, an *operation alphabet*
with weights (the moves of :data:`MOVES`: fork, write, read, exit,
munmap, an mprotect round trip, madvise, R/O and R/W pins, get_user_pages,
vmsplice, releases, migration...), a program length per difficulty, and a
list of *asks* -- what the question is about, each with a finishing line
and the parts it may ask.  One generator serves every kind:

1. **Independent streams.**  Each form draws from its own stream,
   ``random.Random(f"{kind}:{form}:{difficulty}:{seed}")``, so the
   predict program of a seed is not the inverse question's right choice,
   and the build target is not the predict answer.
2. **Balanced answers.**  An ask has a *primary* part and a list of answer
   buckets; the generator draws a bucket first, then draws programs from
   the alphabet (each line run on a live model, so every line is valid)
   until the model's answer falls into that bucket.  No answer dominates
   by construction.
3. **Informative parts only.**  A secondary part is asked only when its
   answer could go either way: it differs under one of the named
   misconceptions' kernels (:data:`~mmkit.exercises.misconceptions.ALTERNATIVES`)
   or when one middle line of the program is left out.  A part whose
   answer is fixed by the question (a writer's page is exclusive after its
   own write fault) is never asked.
4. **Difficulty.**  ``difficulty=1`` draws 1-2 operations and asks 1-2
   parts; ``2`` (default) 2-4 operations and up to 3 parts; ``3`` 3-6
   operations, a grandchild, and (unless an era is given) an era drawn from
   5.7 to 6.18.

Answers are whatever the model computes; nothing is written by hand.
Forms: ``predict`` (predict values), ``inverse`` (pick the program, of
four, that produces a state), ``build`` (write ``build(k)`` that produces
a state).
"""

import random
import zlib

from .. import release
from ..errors import MMError
from ..kernel import Kernel
from .program import Op, Program, show_value
from .question import GENERIC, Part, Question, line_no

__all__ = ["KINDS", "Kind", "Ask", "MOVES", "make_question", "Builder", "DIFFICULTIES"]

FIELDS = ("refcount", "mapcount", "pincount", "exclusive", "writable")
PROCS = ("P", "C", "G")
DIFFICULTIES = (1, 2, 3)
#: eras a difficulty-3 question may be drawn under (when no era is given)
DRAW_ERAS = ("5.7", "5.9", "5.19", "6.2", "6.18")
#: per difficulty: (min ops, max ops) of the drawn middle, and the most parts asked
LENGTH = {1: (1, 2), 2: (2, 4), 3: (3, 6)}
MAX_PARTS = {1: 2, 2: 3, 3: 4}
TRIES = 80


class Builder:
    """Draws a program line by line, running each line on a live model."""

    def __init__(self, rng, era, difficulty=2):
        self.rng = rng
        self.era = era
        self.difficulty = difficulty
        self.k = Kernel(era=era, trace="off")
        self.env = {}
        self.ops = []
        self.values = []
        self.digit = 1
        self.madvised = False

    #: the class of the lines this builder writes (a subclass swaps in its own)
    op_class = Op

    def do(self, verb, *args):
        op = self.op_class(verb, *args)
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
        d = str(self.digit % 10)
        self.digit += 1
        if page:
            return self.do("write", X, A, d, page)
        return self.do("write", X, A, d)

    def alive(self, X):
        return X in self.env and self.env[X].alive

    def maps(self, X, A="a"):
        return self.alive(X) and A in self.env and self.env[X].mm.find_vma(self.env[A]) is not None

    def active(self, H):
        return H in self.env and getattr(self.env[H], "active", False)

    def page(self, X, A="a"):
        return self.k.page(self.env[X], self.env[A])

    def mappers(self):
        return [x for x in PROCS if self.maps(x)]

    def program(self):
        return Program(self.ops)

    @property
    def n(self):
        return len(self.ops)


# -- the operation alphabet ------------------------------------------------------------
def _pick(b, xs):
    return b.rng.choice(xs) if xs else None


def _m_fork(b):
    if "C" not in b.env and b.maps("P"):
        b.do("fork", "P", "C")
        return True
    if b.difficulty >= 3 and "C" in b.env and "G" not in b.env and b.maps("C"):
        b.do("fork", "C", "G")
        return True
    return False


def _m_write(b):
    x = _pick(b, b.mappers())
    if x is None:
        return False
    b.write(x)
    return True


def _m_read(b):
    x = _pick(b, b.mappers())
    if x is None:
        return False
    b.do("read", x, "a")
    return True


def _m_exit(b):
    x = _pick(b, [x for x in ("C", "G") if b.alive(x)])
    if x is None:
        return False
    b.do("exit", x)
    return True


def _m_munmap(b):
    x = _pick(b, [x for x in ("C", "G") if b.maps(x)])
    if x is None:
        return False
    b.do("munmap", x, "a")
    return True


def _m_mprotect(b):
    x = _pick(b, b.mappers())
    if x is None:
        return False
    b.do("mprotect", x, "a", "r")
    b.do("mprotect", x, "a", "rw")
    return True


def _m_madvise(b):
    if "C" in b.env or b.madvised or not b.maps("P"):
        return False
    b.madvised = True
    b.do("madvise", "P", "a", b.rng.choice(["dontfork", "wipeonfork"]))
    return True


def _pin_slot(b):
    for h in ("pin", "pin2"):
        if h not in b.env:
            return h
    return None


def _m_pin(write):
    def move(b):
        h = _pin_slot(b)
        x = _pick(b, b.mappers())
        if h is None or x is None:
            return False
        b.do("pin", x, "a", h, write, b.rng.random() < 0.7)
        return True
    return move


def _m_unpin(b):
    h = _pick(b, [h for h in ("pin", "pin2") if b.active(h)])
    if h is None:
        return False
    b.do("unpin", h)
    return True


def _m_gup(b):
    x = _pick(b, b.mappers())
    if "ref" in b.env or x is None:
        return False
    b.do("gup", x, "a", "ref")
    return True


def _m_put(b):
    if not b.active("ref"):
        return False
    b.do("put", "ref")
    return True


def _m_vmsplice(b):
    x = _pick(b, b.mappers())
    if "pipe" in b.env or x is None:
        return False
    b.do("vmsplice", x, "a", "pipe")
    return True


def _m_pipe_read(b):
    if not b.active("pipe"):
        return False
    b.do("pipe_read", "pipe")
    return True


def _m_migrate(b):
    if not b.maps("P"):
        return False
    b.do("migrate", "P", "a")
    return True


#: The operation alphabet: name -> move(builder) -> bool (False: not possible now).
MOVES = {
    "fork": _m_fork, "write": _m_write, "read": _m_read, "exit": _m_exit, "munmap": _m_munmap,
    "mprotect": _m_mprotect, "madvise": _m_madvise, "pin_rw": _m_pin(True), "pin_ro": _m_pin(False),
    "unpin": _m_unpin, "gup": _m_gup, "put": _m_put, "vmsplice": _m_vmsplice, "pipe_read": _m_pipe_read,
    "migrate": _m_migrate,
}


def _draw_moves(b, weights, n):
    names = list(weights)
    w = [weights[x] for x in names]
    for _ in range(n):
        for _ in range(12):
            m = b.rng.choices(names, w)[0]
            if MOVES[m](b):
                break


# -- parts ------------------------------------------------------------------------------
def _pname(X, field):
    return field if X == "P" else f"{X}_{field}"


def _counter(X, A, field, name=None, page=0):
    """A part asking ``field`` of the page ``X`` maps at ``A``."""
    who = f"{X}'s page at {A}" + (f" + {page}*4096" if page else "")
    prompts = {"refcount": f"refcount of {who}", "mapcount": f"mapcount of {who}",
               "pincount": f"pincount of {who}", "exclusive": f"is {who} PageAnonExclusive?",
               "writable": f"is {X}'s PTE for {A} writable?", "present": f"is a page mapped in {X} at {A}?"}
    return Part(name or _pname(X, field), field, _field_fn(X, A, page, field), key=(X, A, page),
                prompt=prompts[field])


def _field_fn(X, A, page, field):
    def fn(run):
        info = run.page(X, A, page)
        if field in ("refcount", "mapcount", "pincount") and info.zero_page:
            return "zero page"
        return getattr(info, field)
    return fn


def _fault(b, i, X, A="a", name="fault"):
    """What the write on op ``i`` (negative: from the end of what ``b`` drew so far) did."""
    n = i % b.n
    code = b.ops[n].code()
    return Part(name, "fault", lambda run: run.lines[n].fault, key=(X, A, 0),
                prompt=f"what does {X}'s write on line {line_no(n)} (`{code}`) do: first touch, no fault, "
                       f"reuse or copy?", line=n)


def _value(b, i, name, prompt, reader=None, key=None, type="data"):
    """The value of op ``i`` (negative: from the end of what ``b`` drew so far)."""
    n = i % b.n
    code = b.ops[n].code()
    return Part(name, type, lambda run: show_value(run.lines[n].value), key=key,
                prompt=prompt.replace("{line}", f"line {line_no(n)} (`{code}`)"), reader=reader, line=n)


def _after(b, i, field, X="P"):
    """``field`` of the page the line ``i`` touched, right after that line."""
    n = i % b.n
    words = {"writable": f"is {X}'s PTE for a writable", "exclusive": f"is {X}'s page at a PageAnonExclusive"}
    return Part(field, field, lambda run: getattr(run.lines[n].after, field), key=(X, "a", 0), line=n,
                prompt=f"{words[field]} right after line {line_no(n)}?")


def _migrated(b, i):
    n = i % b.n
    code = b.ops[n].code()
    return Part("result", "migrated", lambda run: run.lines[n].value, key=("P", "a", 0),
                prompt=f"what does line {line_no(n)} (`{code}`) report: migrated, or the errno it fails with?",
                line=n)


# -- asks ---------------------------------------------------------------------------------
class Ask:
    """What a question is about.

    ``finish(b)`` appends the closing lines and returns ``(primary, others,
    text)``: the primary part (its answer is balanced over ``buckets``),
    candidate secondary parts (asked only when informative) and the
    question's sentence; or ``None`` when the drawn program does not suit
    this ask.
    """

    def __init__(self, name, finish, buckets):
        self.name = name
        self.finish = finish
        self.buckets = buckets

    def bucket_of(self, value):
        for i, bk in enumerate(self.buckets):
            if (bk(value) if callable(bk) else value == bk):
                return i
        return None


def _rc_buckets():
    return [1, 2, lambda v: isinstance(v, int) and 3 <= v < 1024, lambda v: isinstance(v, int) and v >= 1024]


def _ask_counters(b):
    if not b.maps("P") or b.page("P").zero_page:
        return None
    order = list(FIELDS[:4])
    b.rng.shuffle(order)
    parts = [_counter("P", "a", f) for f in order]
    return parts[0], parts[1:], "After the last line, what are the counters of the page P maps at a?"


def _ask_counters_field(field):
    def finish(b):
        r = _ask_counters(b)
        if r is None:
            return None
        parts = [r[0]] + r[1]
        prim = next(p for p in parts if p.type == field)
        return prim, [p for p in parts if p is not prim], r[2]
    return finish


def _ask_write_fault(b):
    xs = b.mappers()
    if not xs:
        return None
    w = b.rng.choice(xs)
    b.write(w)
    prim = _fault(b, -1, w)
    others = []
    for x in PROCS:
        if x != w and b.maps(x) and not b.page(x).zero_page:
            others += [_counter(x, "a", "refcount"), _counter(x, "a", "mapcount")]
    others.append(_counter(w, "a", "refcount"))
    if b.active("pipe"):
        b.do("pipe_read", "pipe")
        others.append(_value(b, -1, "pipe", "what does the pipe read on {line} return?", reader="pipe",
                             key=("P", "a", 0)))
    if b.active("pin"):
        b.do("dev_read", "pin")
        others.append(_value(b, -1, "device", "what does the device read through the pin on {line}?", reader="pin",
                             key=("P", "a", 0)))
    return prim, others, f"What does {w}'s write do, and what follows from it?"


def _ask_holder_read(b):
    holders = [h for h in ("pipe", "pin", "pin2", "ref") if b.active(h) and h != "ref"]
    if not holders or not b.mappers():
        return None
    w = b.rng.choice(b.mappers())
    b.write(w)
    h = b.rng.choice(holders)
    b.do("pipe_read" if h == "pipe" else "dev_read", h)
    what = "the pipe read" if h == "pipe" else "the device read through " + h
    prim = _value(b, -1, "pipe" if h == "pipe" else "device", f"what does {what} on {{line}} return?",
                  reader="pipe" if h == "pipe" else "pin", key=("P", "a", 0))
    prim.hint_from = b.n - 2          # hint 3: the state before the write, not after it
    return prim, [_fault(b, -2, w)], f"{w} writes, then a holder of the page reads it. What does it see?"


def _ask_fork_child(b):
    if not b.alive("C"):
        return None
    parts = [_counter("C", "a", "present")]
    if b.maps("C") and b.k.page(b.env["C"], b.env["a"]).present and not b.page("C").zero_page:
        parts += [_counter("C", "a", f) for f in ("mapcount", "exclusive", "writable")]
    return parts[0], parts[1:], "After the last line, what does the child's page table show at a?"


def _ask_fork_parent(field):
    def finish(b):
        if not b.maps("P") or b.page("P").zero_page or "C" not in b.env:
            return None
        parts = [_counter("P", "a", f) for f in ("refcount", "mapcount", "exclusive", "writable")]
        prim = next(p for p in parts if p.type == field)
        return prim, [p for p in parts if p is not prim], \
            "After the last line, what does the page P maps at a look like?"
    return finish


def _ask_child_read(b):
    if not b.alive("C"):
        return None
    b.do("read", "C", "a")
    return _value(b, -1, "value", "what does C's read on {line} return?", key=("C", "a", 0)), [], \
        "What does the child's read return?"


def _ask_pin_fork(b):
    held = [h for h in ("pin", "pin2", "ref", "pipe") if h in b.env]
    if "C" in b.env or not held or not b.maps("P"):
        return None
    b.do("fork", "P", "C")
    n = b.n - 1
    shared = Part("fork", "shared",
                  lambda run: "shared" if run.page("P", "a").pfn == run.page("C", "a").pfn else "copied",
                  key=("P", "a", 0), line=n,
                  prompt=f"does fork() on line {line_no(n)} share P's page with C, or give C a copy?")
    return shared, [_counter("P", "a", f) for f in ("writable", "exclusive", "refcount")], \
        "Someone holds or held a reference to P's page when P forks. What does fork() do with it?"


def _ask_gup(b):
    xs = b.mappers()
    if "P" not in xs:
        return None
    how = b.rng.choice(["ro_short", "ro_long", "get", "rw", "ro_long"])
    before = b.k.page(b.env["P"], b.env["a"])
    if how == "get":
        b.do("gup", "P", "a", "ref")
        h = "ref"
    else:
        h = _pin_slot(b)
        if h is None:
            return None
        b.do("pin", "P", "a", h, how == "rw", how != "ro_short")
    gi = b.n - 1
    if not before.present:
        return None
    copied = Part("request", "copied",
                  lambda run: "copied" if run.lines[gi].after.pfn != run.lines[gi].before.pfn else "same page",
                  key=("P", "a", 0), line=gi,
                  prompt=f"does line {line_no(gi)} (`{b.ops[gi].code()}`) leave P on a new page (copied) "
                         f"or on the same page?")
    others = [_after(b, gi, "writable"), _after(b, gi, "exclusive")]
    if b.rng.random() < 0.5 and b.env.get(h) is not None and not isinstance(b.values[-1], str):
        b.write("P")
        others.append(_fault(b, -1, "P"))
        b.do("dev_read" if h != "ref" else "put", h)
        if h != "ref":
            others.append(_value(b, -1, "device", "what does the holder read on {line}?", reader="pin",
                                 key=("P", "a", 0)))
    return copied, others, f"What does the GUP request on line {line_no(gi)} do to P's page, and what follows?"


def _ask_migrate(b):
    if not b.maps("P"):
        return None
    b.do("migrate", "P", "a")
    prim = _migrated(b, -1)
    others = [_counter("P", "a", "mapcount"), _counter("P", "a", "exclusive")]
    for x in ("C", "G"):
        if b.maps(x):
            others.append(Part(f"{x}_same", "present",
                               (lambda x: lambda run: run.page("P", "a").pfn == run.page(x, "a").pfn)(x),
                               key=("P", "a", 0), prompt=f"do P and {x} map the same page afterwards?"))
    return prim, others, "k.migrate() tries to move P's page (as memory offlining or move_pages() would). " \
                         "What happens?"


# -- truncation: its own setup (a file, a mapping of 2-3 pages) -------------------------------
def _truncate_setup(b):
    rng = b.rng
    npages = rng.choice([2, 3]) if b.difficulty > 1 else 2
    shmem = rng.random() < 0.5
    shared = rng.random() < 0.5
    b.do("open", "f", npages, shmem)
    for pg in range(npages):
        if rng.random() < 0.8:
            b.do("fwrite", "f", pg, str(b.digit % 10))
            b.digit += 1
    b.do("spawn", "P")
    b.do("mmap_file", "P", "m", "f", npages, shared)
    b.file = (npages, shmem, shared)


def _ask_truncate_pin(b):
    return _ask_truncate(b, pin_first=True)


def _ask_truncate(b, pin_first=False):
    rng = b.rng
    npages, shmem, shared = b.file
    for pg in range(npages):
        c = rng.random()
        if c < 0.45:
            b.write("P", "m", pg)
        elif c < 0.8:
            b.do("read", "P", "m", pg)
    holder = "pin" if pin_first else rng.choice([None, "pin", "pin", "pipe"])
    others = []
    if holder == "pin":
        wr = rng.random() < 0.7
        b.do("pin", "P", "m", "pin", wr, rng.random() < 0.7)
        pi = b.n - 1
        others.append(Part("pin_result", "pin_result",
                           lambda run: "ok" if run.lines[pi].value is None else run.lines[pi].value,
                           key=("P", "m", 0), line=pi,
                           prompt=f'what does the pin on line {line_no(pi)} (`{b.ops[pi].code()}`) return: "ok" or an '
                                  f"errno name?", always=pin_first))
        if b.values[-1] is not None:
            holder = None
    elif holder == "pipe":
        b.do("vmsplice", "P", "m", "pipe")
    newsize = rng.randrange(0, npages)
    b.do("truncate", "f", newsize)
    ti = b.n - 1
    page = rng.randrange(0, npages)
    b.do("read", "P", "m", page)
    prim = _value(b, -1, "access", f"what does P's read of page {page} of the mapping on {{line}} return?",
                  reader="mapping", key=("P", "m", page))
    prim.hint_from = ti               # hint 3: the state before the truncation
    if holder is not None:
        if rng.random() < 0.4:
            b.do("truncate", "f", npages)
            b.do("fwrite", "f", 0, str(b.digit % 10))
            b.digit += 1
        b.do("dev_read" if holder == "pin" else "pipe_read", holder)
        others.append(_value(b, -1, holder, f"what does the {'device read through the pin' if holder == 'pin' else 'pipe read'} "
                             "on {line} return?", reader=holder, key=("P", "m", 0)))
    kind = ("a memfd (shmem)" if shmem else "an ext4-like file") + (", mapped shared" if shared else ", mapped private")
    text = f"The file is {kind}, and it is truncated. What do the accesses return?"
    if pin_first:
        return others[0], [prim] + others[1:], text
    return prim, others, text


# -- kinds ----------------------------------------------------------------------------------
def _std_setup(b):
    b.do("spawn", "P")
    b.do("mmap", "P", "a")
    r = b.rng.random()
    if r < 0.8:
        b.write("P")
    elif r < 0.9:
        b.do("read", "P", "a")


class Kind:
    """One exercise kind, as data: setup, alphabet weights, asks, notebook, hints."""

    def __init__(self, name, notebook, title, hints, asks, moves=None, setup=_std_setup,
                 forms=("predict", "inverse", "build"), length=None, before=None):
        self.name = name
        self.notebook = notebook
        self.title = title
        self.hints = hints
        self.asks = asks
        self.moves = moves or {}
        self.setup = setup
        self.forms = forms
        self.length = length or LENGTH
        self.before = before

    def __repr__(self):
        return f"<Kind {self.name}: {self.title}>"

    def draw(self, rng, era, difficulty, ask):
        """One program and its parts, or None when the draw does not suit ``ask``."""
        b = Builder(rng, era, difficulty)
        self.setup(b)
        lo, hi = self.length[difficulty]
        if self.before is not None:
            self.before(b)
        _draw_moves(b, self.moves, rng.randint(lo, hi))
        got = ask.finish(b)
        if got is None:
            return None
        return b, got


_HOLDERS = dict(pin_rw=2, pin_ro=1, unpin=1, gup=2, put=1, vmsplice=2, pipe_read=1)


def _fork_first(b):
    """fork: one or two lines before fork(), then fork()."""
    pre = dict(pin_rw=2, pin_ro=1, gup=1, vmsplice=1, madvise=3, write=1, mprotect=1, read=1)
    _draw_moves(b, pre, b.rng.randint(0, 3))
    if b.maps("P"):
        b.do("fork", "P", "C")


def _cow_first(b):
    if b.rng.random() < 0.85:
        _draw_moves(b, dict(vmsplice=1, gup=1, pin_ro=1, mprotect=1), b.rng.randint(0, 1))
        b.do("fork", "P", "C")


def _unshare_first(b):
    r = b.rng.random()
    if r < 0.6:
        b.do("fork", "P", "C")


KINDS = {k.name: k for k in [
    Kind("counters", "00-orientation", "the three counters and PageAnonExclusive", [
        "List every holder of the page at the end: page-table entries (in every process), pins, GUP "
        "references and pipe buffers. Which holders does each counter count?",
        "refcount: every holder, 1024 per FOLL_PIN (GUP_PIN_COUNTING_BIAS, mm/gup.c: try_grab_folio()). "
        "mapcount: page-table entries only (folio_mapcount()). pincount: FOLL_PIN pins only. PageAnonExclusive: "
        "set on a page created or reused by one process, cleared by fork(). The zero page is not counted: its "
        "PTE is special and vm_normal_page() returns NULL for it."],
         asks=[Ask("refcount", _ask_counters_field("refcount"), _rc_buckets()),
               Ask("mapcount", _ask_counters_field("mapcount"), [1, 2, lambda v: isinstance(v, int) and v >= 3]),
               Ask("pincount", _ask_counters_field("pincount"), [0, 1, 2]),
               Ask("exclusive", _ask_counters_field("exclusive"), [True, False])],
         moves=dict(fork=3, write=2, read=1, exit=1, munmap=1, mprotect=1, **_HOLDERS)),
    Kind("fork", "01-fork", "what fork() shares, write-protects, skips or copies", [
        "What does fork() do with the parent's VMA: skip it (MADV_DONTFORK), give the child an empty one "
        "(MADV_WIPEONFORK), or copy its page table? And is the page maybe pinned?",
        "dup_mmap() skips VM_DONTCOPY VMAs and copies no page table for VM_WIPEONFORK ones. "
        "copy_present_ptes() (mm/memory.c) shares an anon page: refcount+1, mapcount+1, PageAnonExclusive "
        "cleared, both PTEs write-protected; unless it may be pinned: then copy_present_page() gives the child "
        "a copy and leaves the parent's PTE writable. The zero page's PTE is copied as is."],
         asks=[Ask("child", _ask_fork_child, [True, False]),
               Ask("parent_excl", _ask_fork_parent("exclusive"), [True, False]),
               Ask("parent_w", _ask_fork_parent("writable"), [True, False]),
               Ask("child_read", _ask_child_read, ["zero", "SIGSEGV", lambda v: v not in ("zero", "SIGSEGV")])],
         moves=dict(write=2, read=1, exit=1, munmap=1, fork=1, unpin=1, put=1, pipe_read=1), before=_fork_first,
         length={1: (0, 1), 2: (0, 2), 3: (1, 3)}),
    Kind("cow", "02-cow", "copy or reuse on a write fault", [
        "At the moment of the write, is the writer's PTE writable? If not, who else holds that page: "
        "other page tables, a pipe, a pin?",
        "do_wp_page() (mm/memory.c) reuses a PageAnonExclusive page at once; otherwise "
        "wp_can_reuse_anon_folio() reuses only if the refcount is exactly 1, whatever the mapcount; the zero "
        "page and anything else go to wp_page_copy(). Up to 5.8 the rule was the mapcount (reuse_swap_page())."],
         asks=[Ask("fault", _ask_write_fault, ["no fault", "reuse", "copy"]),
               Ask("holder", _ask_holder_read, [lambda v: True])],
         moves=dict(write=3, read=1, exit=2, munmap=2, fork=1, mprotect=1, vmsplice=2, pipe_read=1, gup=1, put=1,
                    pin_ro=1),
         before=_cow_first),
    Kind("pin", "03-gup", "FOLL_GET, FOLL_PIN and fork with a pinned page", [
        "A pin holds a page, not an address. After each line, is the page the device holds still the page "
        "P maps at a?",
        "FOLL_PIN adds 1024 to a small page's refcount, FOLL_GET adds 1. fork() copies a maybe-pinned "
        "exclusive page for the child at once (copy_present_page()) and leaves the parent's PTE writable. "
        "A read-write pin needs a writable PTE, so on a shared page it breaks COW first."],
         asks=[Ask("fork", _ask_pin_fork, ["shared", "copied"]),
               Ask("refcount", _ask_counters_field("refcount"), _rc_buckets()),
               Ask("pincount", _ask_counters_field("pincount"), [0, 1, 2]),
               Ask("device", _ask_holder_read, [lambda v: True])],
         moves=dict(pin_rw=3, pin_ro=3, gup=2, vmsplice=1, unpin=1, put=1, fork=2, write=2, mprotect=1, exit=1)),
    Kind("unshare", "04-unshare", "FAULT_FLAG_UNSHARE for read-only pins", [
        "Does this GUP request need an exclusive page? Ask: FOLL_PIN or FOLL_GET? With FOLL_WRITE or "
        "without? Is the page PageAnonExclusive right now?",
        "gup_must_unshare() (mm/internal.h) is true only for FOLL_PIN without FOLL_WRITE: on an anon page "
        "that is not PageAnonExclusive, or (from 6.2) with FOLL_LONGTERM on a non-anon page such as the zero "
        "page. do_wp_page() with FAULT_FLAG_UNSHARE reuses (refcount 1) or copies, and leaves the PTE "
        "read-only. A read-write pin takes a write fault instead."],
         asks=[Ask("request", _ask_gup, ["copied", "same page"])],
         moves=dict(exit=2, munmap=1, write=2, mprotect=2, vmsplice=1, pipe_read=1, gup=1, fork=1, read=1),
         before=_unshare_first, length={1: (0, 1), 2: (1, 3), 3: (2, 4)}),
    Kind("migrate", "05-migration", "migration, rmap walks and pinned pages", [
        "Migration replaces the PTEs found by the rmap walk and then needs the page to have no holder "
        "outside the page tables. Who holds P's page when k.migrate() runs?",
        "try_to_migrate_one() (mm/rmap.c) must clear PageAnonExclusive with folio_try_share_anon_rmap_pte(), "
        "which fails for a maybe-pinned page; the move then fails unless the refcount is what the page "
        "tables and the migration itself explain (folio_expected_ref_count()). PageAnonExclusive travels in "
        "the migration entry and is set again on the new page; every process's PTE is pointed at the new page."],
         asks=[Ask("result", _ask_migrate, ["migrated", lambda v: v != "migrated"])],
         moves=dict(fork=3, write=2, exit=1, munmap=1, pin_rw=1, pin_ro=1, unpin=2, gup=1, put=1, vmsplice=1,
                    pipe_read=1, mprotect=1)),
    Kind("truncate", "06-truncation", "truncation, SIGBUS and the orphaned pinned page", [
        "After the truncation, which pages of the mapping lie beyond the new end of file? Who still holds "
        "the old pages?",
        "truncation zaps every PTE beyond the new EOF, private COW copies included (unmap_mapping_range() "
        "with even_cows = 1), and removes those pages from the page cache; an access there gets SIGBUS. A "
        "pinned or spliced page is not freed: its holder keeps the old contents, and a regrown file gets new "
        "zero-filled pages. Since 6.5 a long-term writable pin of a shared mapping of a file that needs "
        "dirty tracking (not shmem) is refused with EFAULT."],
         asks=[Ask("access", _ask_truncate, ["SIGBUS", lambda v: v != "SIGBUS"]),
               Ask("pin", _ask_truncate_pin, ["ok", "EFAULT"])],
         setup=_truncate_setup, forms=("predict",), length={1: (0, 0), 2: (0, 0), 3: (0, 0)}),
]}


# -- drawing a question -------------------------------------------------------------------
def _informative(q, part, truth, prog, era):
    """Could this part's answer go either way?  Yes if a misconception's kernel
    or leaving out one middle line of the program changes it."""
    from .misconceptions import ALTERNATIVES
    for key in ALTERNATIVES:
        try:
            v = q._alt_value(key, part)
        except Exception:
            v = None
        if v is not None and v != truth:
            return True
    ops = prog.ops
    last = part.line if part.line is not None else len(ops)
    for i in range(3, min(last, len(ops))):
        mut = Program(ops[:i] + ops[i + 1:])
        try:
            run = mut.run(era, check=False, trace="off")
            if run.error is not None:
                continue
            v = part.fn(_GapRun(run, i))
        except Exception:
            continue
        if v is not None and v != truth:
            return True
    return False


class _GapRun:
    """A run of a program with line ``gap`` left out, indexed like the full
    program (so a part that reads ``run.lines[n]`` still finds its line)."""

    def __init__(self, run, gap):
        self._run = run
        self.lines = run.lines[:gap] + [None] + run.lines[gap:]

    def __getattr__(self, name):
        return getattr(self._run, name)


def _rng(kind, form, difficulty, seed, attempt=0):
    return random.Random(f"{kind}:{form}:{difficulty}:{seed}" + (f":{attempt}" if attempt else ""))


def _draw(kind, rng, era, difficulty):
    """Draw (builder, parts, text) for ``kind`` with a balanced primary answer."""
    spec = KINDS[kind]
    ask = rng.choice(spec.asks)
    bucket = rng.randrange(len(ask.buckets))
    fallback = None
    for t in range(TRIES):
        got = spec.draw(rng, era, difficulty, ask)
        if got is None:
            continue
        b, (prim, others, text) = got
        try:
            v = prim.fn(b.program().run(era, trace="off"))
        except Exception:
            continue
        if v is None:
            continue
        if fallback is None:
            fallback = (b, prim, others, text)
        if ask.bucket_of(v) == bucket:
            return b, prim, others, text
    if fallback is None:
        raise RuntimeError(f"could not draw a {kind} exercise")
    return fallback


def _candidates(b, prim, others, params, era):
    """(part, truth) for every secondary part that is informative here."""
    prog = b.program()
    q = Question(prog, [prim] + others, params, "")
    run = q._model_run()
    out, seen = [], {prim.name}
    for p in others:
        if p.name in seen:
            continue
        try:
            truth = p.fn(run)
        except Exception:
            continue
        if truth is None or truth == "zero page":
            continue
        if p.always or _informative(q, p, truth, prog, era):
            out.append((p, truth))
            seen.add(p.name)
    return out


_STATS = {}
STATS_DRAWS = 120


def _part_stats(kind, era, difficulty):
    """How often each informative secondary part takes each value, over a
    fixed sample of draws: {part name: {value: share}}.  Used to ask a part
    less often when its answer is the usual one, so that no answer of a
    part dominates; a part that showed one value only is never asked."""
    key = (kind, str(era), difficulty)
    if key not in _STATS:
        from collections import Counter, defaultdict
        counts = defaultdict(Counter)
        for i in range(STATS_DRAWS):
            rng = _rng(kind, "stats", difficulty, i)
            e = _era_for(rng, era, difficulty)
            try:
                b, prim, others, _ = _draw(kind, rng, e, difficulty)
            except RuntimeError:
                continue
            for p, truth in _candidates(b, prim, others, {"era": e}, e):
                counts[p.name][truth] += 1
        _STATS[key] = {name: {v: n / sum(c.values()) for v, n in c.items()} for name, c in counts.items()}
    return _STATS[key]


def _choose_parts(kind, b, prim, others, text, params, era, difficulty, rng, stats_era=None):
    stats = _part_stats(kind, stats_era, difficulty)
    chosen = [prim]
    cands = _candidates(b, prim, others, params, era)
    rng.shuffle(cands)
    if getattr(KINDS.get(kind), "rare_first", False):
        # a part whose answer is rare here goes first, so that the part cap does not crowd it out
        cands.sort(key=lambda pt: stats.get(pt[0].name, {}).get(pt[1], 0.0))
    for p, truth in cands:
        if len(chosen) >= MAX_PARTS[difficulty]:
            break
        st = stats.get(p.name, {})
        if not p.always:
            common = [x for x in st.values() if x >= 0.08]
            if len(common) < 2:
                continue
            if rng.random() > min(common) / max(st.get(truth, 0.0), min(common)):
                continue
        chosen.append(p)
    return chosen


def _era_for(rng, era, difficulty):
    if era is not None:
        return str(era)
    if difficulty >= 3:
        return rng.choice(DRAW_ERAS)
    return "6.18"


def _predict_draw(kind, seed, era, difficulty, attempt=0):
    rng = _rng(kind, "predict", difficulty, seed, attempt)
    e = _era_for(rng, era, difficulty)
    b, prim, others, text = _draw(kind, rng, e, difficulty)
    return b, prim, others, text, e


_BLOCKS = {}
#: redraws a seed gets before it keeps a program an earlier seed of its block has
DISTINCT_ATTEMPTS = 40


def _predict_parts(kind, seed, era, difficulty):
    """The seed's draw.  For a kind with ``distinct_block`` = N, the seeds
    of one block (N*j ... N*j + N-1) draw distinct programs: a seed whose
    draw repeats an earlier seed's program of its block redraws (attempt
    1, 2, ...) from a stream of its own, so that a new seed is a new
    exercise.  Deterministic: the block's draws are made in seed order."""
    n = getattr(KINDS[kind], "distinct_block", None)
    if not n:
        return _predict_draw(kind, seed, era, difficulty)
    first = seed - seed % n
    key = (kind, None if era is None else str(era), difficulty, first)
    blk = _BLOCKS.setdefault(key, {"seen": set(), "draws": {}})
    for s in range(first + len(blk["draws"]), seed + 1):
        keep = 0
        for attempt in range(DISTINCT_ATTEMPTS):
            d = _predict_draw(kind, s, era, difficulty, attempt)
            if d[0].program().code() not in blk["seen"]:
                keep = attempt
                break
        d = _predict_draw(kind, s, era, difficulty, keep) if keep != attempt else d
        blk["seen"].add(d[0].program().code())
        blk["draws"][s] = keep
    return _predict_draw(kind, seed, era, difficulty, blk["draws"][seed])


# -- forms ----------------------------------------------------------------------------------
def _state(run, key=("P", "a", 0)):
    i = run.page(*key)
    return tuple(getattr(i, f) for f in FIELDS) if i.present else None


def _target(run):
    """The end state an inverse or build question asks for: P's page, not
    the zero page (which is not counted)."""
    i = run.page("P", "a")
    return None if (not i.present or i.zero_page) else _state(run)


def _describe(field, value):
    if field in ("exclusive", "writable"):
        return {"exclusive": "PageAnonExclusive", "writable": "writable"}[field] + ("" if value else " (not)")
    return f"{field} {value}"


def _full(prog, params):
    return Question(prog, [_counter("P", "a", f, name=f) for f in FIELDS], dict(params), "")


class InverseChecker:
    """Multiple choice: which program produces the state shown?"""

    form = 'q.check("A") -- the letter of the program that ends in this state'

    _letter = release.Secret("The answer of a multiple-choice question (_letter)")
    _states = release.Secret("The end states of the choices (_states)")

    def __init__(self, target, letter, states):
        self.target = target
        self._letter = letter
        self._states = states          # letter -> state tuple

    @property
    def letter(self):
        """The right letter (hidden in release mode)."""
        release.guard("The answer of a multiple-choice question")
        return self._letter

    @property
    def states(self):
        """letter -> the state that program ends in (hidden in release mode: it gives the letter away)."""
        release.guard("The end states of the choices")
        return self._states

    @release.private("The answer of a multiple-choice question (key())")
    def key(self):
        return self._letter

    @release.private("The checker's evaluate() (per-choice feedback; use q.check())")
    def evaluate(self, q, answer):
        if answer is ...:
            return None, ["No answer yet: replace ... with a letter."]
        if not isinstance(answer, str) or answer.strip().upper() not in q.choices:
            return None, [f"Could not read the answer {answer!r}: answer with one of "
                          f"{', '.join(repr(x) for x in q.choices)}."]
        a = answer.strip().upper()
        if a == self._letter:
            return True, ["Correct."]
        st = self._states[a]
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
        sub = _full(q.choices[a], q.params)
        seen = set()
        for f in diffs:
            part = next(p for p in sub.parts if p.name == f)
            ctx = _Context(sub, part, sub._model_run())
            ctx.answer = dict(zip(FIELDS, self.target))     # the state shown, as the whole answer
            m = diagnose(part, self.target[FIELDS.index(f)], st[FIELDS.index(f)], ctx)
            if m is not None and m.key not in seen:
                seen.add(m.key)
                msgs.append(f"{m.title}: {m.explain}")
        msgs.append("q.hint() gives a hint.")
        return False, msgs

    @release.private("Hint 3 (hint3())")
    def hint3(self, q):
        wrong = [x for x in q.choices if x != self._letter and self._states[x] is not None]
        x = wrong[q.params.get("seed", 0) % len(wrong)] if wrong else None
        if x is None:
            return "Eliminate the programs that leave no page mapped."
        f = next(f for f, a, b in zip(FIELDS, self._states[x], self.target) if a != b)
        return f"Eliminate ({x}): it ends with a different {f} than the state shown."

    @release.private("The solution (solution_text())")
    def solution_text(self, q):
        sub = _full(q.choices[self._letter], q.params)
        return f"Answer: {self._letter}\n" + "\n".join(sub._walkthrough_text())


class BuildChecker:
    """Write build(k) -> (process, address) reaching a target state."""

    form = "q.check(build) where build(k) returns (process, address)"

    _program = release.Secret("The model solution of a build question (_program)")

    def __init__(self, target, program):
        self.target = target
        self._program = program

    @property
    def program(self):
        """A program that reaches the target (hidden in release mode)."""
        release.guard("The model solution of a build question")
        return self._program

    @release.private("The model solution of a build question (key())")
    def key(self):
        return self._program

    @release.private("The checker's evaluate() (per-part feedback; use q.check())")
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
        if info.zero_page:
            return False, ["That address maps the shared zero page, which is not counted: write to the page "
                           "first so that a page of its own is allocated."]
        got = tuple(getattr(info, f) for f in FIELDS)
        if got == self.target:
            return True, ["Correct: your program reaches the state."]
        msgs = ["Not yet: " + "; ".join(f"{f} is {g!r}, the target is {t!r}" for f, g, t in
                                        zip(FIELDS, got, self.target) if g != t) + "."]
        gd = dict(zip(FIELDS, got))
        td = dict(zip(FIELDS, self.target))
        if gd["refcount"] != td["refcount"]:
            diff = td["refcount"] - gd["refcount"]
            if diff and (diff % 1023 == 0 or diff % 1024 == 0):
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

    @release.private("Hint 3 (hint3())")
    def hint3(self, q):
        code = self._program.code().splitlines()
        return "One program that works starts like this:\n" + "\n".join(code[:max(3, len(code) // 2)])

    @release.private("The solution (solution_text())")
    def solution_text(self, q):
        return ("One solution:\n\ndef build(k):\n" + "\n".join("    " + ln for ln in self._program.code().splitlines())
                + '\n    return P, a\n\n' + "\n".join(_full(self._program, q.params)._walkthrough_text()))


def _mutants(prog, setup=3):
    ops = prog.ops
    out = []
    for i in range(setup, len(ops)):
        out.append(Program(ops[:i] + ops[i + 1:]))
    for i in range(setup, len(ops) - 1):
        out.append(Program(ops[:i] + [ops[i + 1], ops[i]] + ops[i + 2:]))
    return out


def _state_program(kind, seed, form, era, difficulty, avoid):
    """A program for an inverse/build question: its own stream, a mapped,
    counted end page, and neither the predict program nor its end state.

    A build target must need the kind's concept (:func:`_needs_concept`), and
    among the drawn programs that qualify the one whose target hashes highest
    for this seed is taken, so rare end states come up as often as common
    ones (without it, "write" alone or "write + pin" reached a fifth of the
    targets)."""
    found, plain = [], None
    for attempt in range(BUILD_ATTEMPTS if form == "build" else 50):
        rng = _rng(kind, form, difficulty, seed, attempt)
        e = _era_for(rng, era, difficulty)
        try:
            b, _, _, _ = _draw(kind, rng, e, difficulty)
        except RuntimeError:
            continue
        if form == "build":
            _draw_moves(b, BUILD_TAIL, rng.randint(0, 2))
        prog = b.program()
        run = prog.run(e)
        target = _target(run)
        if target is None or prog.code() in avoid[0] or target in avoid[1]:
            continue
        if form != "build":
            return prog, target, e
        plain = plain or (prog, target, e)
        if _needs_concept(kind, prog, run, target, e):
            found.append((prog, target, e))
            if len(found) >= BUILD_CANDIDATES:
                break
    if found:
        return max(found, key=lambda c: zlib.crc32(repr((kind, seed, difficulty, c[1])).encode()))
    if plain is not None:           # no drawn program needed the concept (not met in seeds 0-299)
        return plain
    raise RuntimeError(f"could not draw a {kind} {form} exercise for seed {seed}")


#: a build question draws up to BUILD_ATTEMPTS programs and chooses among the
#: first BUILD_CANDIDATES whose target needs the kind's concept
BUILD_ATTEMPTS = 400
BUILD_CANDIDATES = 10
#: lines a build program may end with, so that targets vary in their holders
BUILD_TAIL = dict(gup=1, vmsplice=1, pin_rw=1, pin_ro=1, fork=1, exit=1, munmap=1, write=1)

_TRIVIAL_CACHE = {}


def _fork_free_states(era, depth=3):
    """End states of a page P wrote to, reachable without fork(): the first
    write, then up to ``depth`` lines of write, R/W or R/O pin,
    get_user_pages(), vmsplice() and an mprotect() to read-only or back (every
    order)."""
    if (era, depth) in _TRIVIAL_CACHE:
        return _TRIVIAL_CACHE[era, depth]
    steps = {
        "write": lambda P, a: P.write(a, b"2"),
        "pin_rw": lambda P, a: P.pin(a, write=True),
        "pin_ro": lambda P, a: P.pin(a, write=False),
        "gup": lambda P, a: P.get_user_pages(a),
        "vmsplice": lambda P, a: P.vmsplice(a, 1),
        "ro": lambda P, a: P.mprotect(a, 1, "r"),
        "rw": lambda P, a: P.mprotect(a, 1, "rw"),
    }
    out = set()
    seqs = [()]
    for n in range(depth):
        seqs += [s + (v,) for s in seqs if len(s) == n for v in steps]
    for seq in seqs:
        k = Kernel(era=era, check=False, trace="off")
        P = k.spawn("P")
        a = P.mmap(1)
        try:
            P.write(a, b"1")
            for v in seq:
                steps[v](P, a)
        except Exception:
            continue
        i = k.page(P, a)
        if i.present and not i.zero_page:
            out.add(tuple(getattr(i, f) for f in FIELDS))
    _TRIVIAL_CACHE[era, depth] = frozenset(out)
    return _TRIVIAL_CACHE[era, depth]


def _unshares(run):
    """Did a read-only pin of the run take an unshare fault (find a page that
    was not PageAnonExclusive, and leave one that is)?"""
    for ln in run.lines:
        op = ln.op
        if op.verb == "pin" and not op.a4 and ln.before is not None and ln.after is not None:
            if ln.before.present and not ln.before.exclusive and ln.after.exclusive:
                return True
    return False


def _needs_concept(kind, prog, run, target, era):
    """Does reaching ``target`` need what ``kind`` teaches?  fork and cow: the
    page is shared or not PageAnonExclusive, which only fork() makes (and,
    in eras without the flag, no short fork-free program reaches it); unshare: the same, and the program itself
    unshares with a read-only pin; pin: the page is pinned; counters: the
    state is not that of "write" followed by at most one line such as a pin."""
    verbs = {op.verb for op in prog.ops}
    trivial = _fork_free_states(era)
    if kind in ("fork", "cow"):
        shared = not target[FIELDS.index("exclusive")] or target[FIELDS.index("mapcount")] > 1
        from ..era import era as _era
        return "fork" in verbs and target not in trivial and (shared or not _era(era).anon_exclusive)
    easy = _fork_free_states(era, 1)
    if kind == "unshare":
        return target not in easy and _unshares(run)
    if kind == "pin":
        return target[FIELDS.index("pincount")] >= 1 and target not in easy
    return target not in easy


@release.internal
def make_question(kind, seed, form="predict", era=None, difficulty=2):
    """Build the question of ``kind`` / ``seed`` / ``form`` / ``era`` / ``difficulty``."""
    spec = KINDS[kind]
    b, prim, others, text, e = _predict_parts(kind, seed, era, difficulty)
    params = {"kind": kind, "seed": seed, "form": form, "era": e, "difficulty": difficulty}
    if form == "predict":
        rng = _rng(kind, "parts", difficulty, seed)
        parts = _choose_parts(kind, b, prim, others, text, params, e, difficulty, rng, stats_era=era)
        if isinstance(text, tuple):     # (one part asked, several parts asked)
            text = text[0] if len(parts) == 1 else text[1]
        q = Question(b.program(), parts, params, text, spec.hints)
        if getattr(spec, "hints_for", None) is not None:
            q._hints = spec.hints_for(q)
        return q
    pprog = b.program()
    avoid = ({pprog.code()}, {_state(pprog.run(e))})
    prog, target, e = _state_program(kind, seed, form, era, difficulty, avoid)
    params["era"] = e
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
    rng = _rng(kind, "inverse-choices", difficulty, seed)
    options = [prog]
    states = [target]
    candidates = _mutants(prog)
    rng.shuffle(candidates)
    for i in range(30):
        try:
            bb, _, _, _ = _draw(kind, random.Random(rng.randrange(10 ** 9)), e, difficulty)
            candidates.append(bb.program())
        except (MMError, RuntimeError):
            pass
        if i >= 6 and len(candidates) > 12:
            break
    for cand in candidates:
        if len(options) == 4:
            break
        try:
            st = _state(cand.run(e))
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
