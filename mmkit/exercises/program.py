"""Straight-line programs: the exercises' op sequences.

An exercise is a short program whose every line is real mmkit code, so a
learner can paste it into a cell and step through it.  A :class:`Program`
is a list of :class:`Op`; :meth:`Program.run` executes it on a fresh model
kernel of a given era and records, for every line, its outcome and the
state of the watched page before and after.

Conventions
-----------
* Processes are ``P`` (the first), ``C`` (its child), ``G`` (a grandchild).
* ``a`` is an anonymous page, ``m`` a file mapping, ``f`` the file.
* Each write stores one digit (``b"1"``, ``b"2"``...), so "which data does
  the pipe return" has a readable answer; reading untouched anonymous
  memory returns ``b"\\x00"``, written ``"zero"`` in answers.

Examples
--------
>>> prog = Program([Op("spawn", "P"), Op("mmap", "P", "a"), Op("write", "P", "a", "1"),
...                 Op("fork", "P", "C")])
>>> print(prog.code())
P = k.spawn("P")
a = P.mmap(1)
P.write(a, b"1")
C = P.fork("C")
>>> run = prog.run("6.18")
>>> run.page("P", "a").mapcount
2
"""

from dataclasses import dataclass

from ..errors import InvalidArgument, KernelError, MMError, Signal
from ..kernel import Kernel

__all__ = ["Op", "Program", "Run", "Line", "show_value"]


def show_value(v):
    """How an outcome is written in questions and answers."""
    if isinstance(v, (bytes, bytearray)):
        if v == b"\x00" * len(v):
            return "zero"
        return v.decode("ascii", "replace")
    if isinstance(v, (bool, int)):
        return str(v)
    return v


@dataclass(frozen=True)
class Op:
    """One line of a program: a verb and its arguments.

    Verbs (``X``/``Y`` processes, ``A`` an address name, ``H`` a handle name):

    ===============  ====================================  ==================================
    verb             args                                  code
    ===============  ====================================  ==================================
    spawn            X                                     ``X = k.spawn("X")``
    mmap             X, A                                  ``A = X.mmap(1)``
    open             F, npages, shmem                      ``F = k.open("F", n, shmem=...)``
    fwrite           F, page, digit                        ``F.write(page*4096, b"d")``
    fread            F, page                               ``F.read(page*4096, 1)``
    mmap_file        X, A, F, npages, shared               ``A = X.mmap(n, file=F, shared=.)``
    write            X, A, digit[, page]                   ``X.write(A, b"d")``
    read             X, A[, page]                          ``X.read(A, 1)``
    fork             X, Y                                  ``Y = X.fork("Y")``
    exit             X                                     ``X.exit()``
    munmap           X, A                                  ``X.munmap(A, 1)``
    mprotect         X, A, prot                            ``X.mprotect(A, 1, "r")``
    madvise          X, A, advice                          ``X.madvise(A, 1, "dontfork")``
    pin              X, A, H, write, longterm              ``H = X.pin(A, write=., longterm=.)``
    unpin            H                                     ``H.unpin()``
    dev_read         H                                     ``H.read(1)``
    gup              X, A, H                               ``H = X.get_user_pages(A)``
    put              H                                     ``H.put()``
    vmsplice         X, A, H                               ``H = X.vmsplice(A, 1)``
    pipe_read        H                                     ``H.read(1)``
    migrate          X, A                                  ``k.migrate(X, A)``
    truncate         F, npages                             ``F.truncate(n)``
    ===============  ====================================  ==================================
    """

    verb: str
    a1: object = None
    a2: object = None
    a3: object = None
    a4: object = None
    a5: object = None

    @property
    def args(self):
        return tuple(x for x in (self.a1, self.a2, self.a3, self.a4, self.a5) if x is not None)

    # -- rendering ---------------------------------------------------------
    def code(self):
        v, a = self.verb, self.args
        addr = (lambda name, page: name if not page else f"{name} + {page}*4096")
        if v == "spawn":
            return f'{a[0]} = k.spawn("{a[0]}")'
        if v == "mmap":
            return f"{a[1]} = {a[0]}.mmap(1)"
        if v == "open":
            return f'{a[0]} = k.open("{a[0]}", {a[1]}, shmem={a[2]})'
        if v == "fwrite":
            return f'{a[0]}.write({a[1] * 4096}, b"{a[2]}")'
        if v == "fread":
            return f"{a[0]}.read({a[1] * 4096}, 1)"
        if v == "mmap_file":
            return f"{a[1]} = {a[0]}.mmap({a[3]}, file={a[2]}, shared={a[4]})"
        if v == "write":
            return f'{a[0]}.write({addr(a[1], a[3] if len(a) > 3 else 0)}, b"{a[2]}")'
        if v == "read":
            return f"{a[0]}.read({addr(a[1], a[2] if len(a) > 2 else 0)}, 1)"
        if v == "fork":
            return f'{a[1]} = {a[0]}.fork("{a[1]}")'
        if v == "exit":
            return f"{a[0]}.exit()"
        if v == "munmap":
            return f"{a[0]}.munmap({a[1]}, 1)"
        if v == "mprotect":
            return f'{a[0]}.mprotect({a[1]}, 1, "{a[2]}")'
        if v == "madvise":
            return f'{a[0]}.madvise({a[1]}, 1, "{a[2]}")'
        if v == "pin":
            return f"{a[2]} = {a[0]}.pin({a[1]}, write={self.a4}, longterm={self.a5})"
        if v in ("unpin", "put"):
            return f"{a[0]}.{v}()"
        if v in ("dev_read", "pipe_read"):
            return f"{a[0]}.read(1)"
        if v == "gup":
            return f"{a[2]} = {a[0]}.get_user_pages({a[1]})"
        if v == "vmsplice":
            return f"{a[2]} = {a[0]}.vmsplice({a[1]}, 1)"
        if v == "migrate":
            return f"k.migrate({a[0]}, {a[1]})"
        if v == "truncate":
            return f"{a[0]}.truncate({a[1]})"
        raise InvalidArgument(f"unknown op verb {v!r}")

    # -- execution -----------------------------------------------------------
    def apply(self, k, env):
        """Run the line on kernel ``k``; names live in ``env``.  Returns the
        line's value (bytes read, ``"migrated"`` or the errno for migrate...)
        or ``None``."""
        v, a = self.verb, self.args
        P = 4096
        if v == "spawn":
            env[a[0]] = k.spawn(a[0])
        elif v == "mmap":
            env[a[1]] = env[a[0]].mmap(1)
        elif v == "open":
            env[a[0]] = k.open(a[0], a[1], shmem=a[2])
        elif v == "fwrite":
            env[a[0]].write(a[1] * P, a[2].encode())
        elif v == "fread":
            return env[a[0]].read(a[1] * P, 1)
        elif v == "mmap_file":
            env[a[1]] = env[a[0]].mmap(a[3], file=env[a[2]], shared=a[4])
        elif v == "write":
            env[a[0]].write(env[a[1]] + (a[3] if len(a) > 3 else 0) * P, a[2].encode())
        elif v == "read":
            return env[a[0]].read(env[a[1]] + (a[2] if len(a) > 2 else 0) * P, 1)
        elif v == "fork":
            env[a[1]] = env[a[0]].fork(a[1])
        elif v == "exit":
            env[a[0]].exit()
        elif v == "munmap":
            env[a[0]].munmap(env[a[1]], 1)
        elif v == "mprotect":
            env[a[0]].mprotect(env[a[1]], 1, a[2])
        elif v == "madvise":
            env[a[0]].madvise(env[a[1]], 1, a[2])
        elif v == "pin":
            env[a[2]] = env[a[0]].pin(env[a[1]], 1, write=self.a4, longterm=self.a5)
        elif v == "unpin":
            env[a[0]].unpin()
        elif v == "put":
            env[a[0]].put()
        elif v in ("dev_read", "pipe_read"):
            return env[a[0]].read(1)
        elif v == "gup":
            env[a[2]] = env[a[0]].get_user_pages(env[a[1]])
        elif v == "vmsplice":
            env[a[2]] = env[a[0]].vmsplice(env[a[1]], 1)
        elif v == "migrate":
            res = k.migrate(env[a[0]], env[a[1]], 1)
            if res.migrated:
                return "migrated"
            reason = next(iter(res.reasons.values()), "EAGAIN")
            return reason.split(":")[0].strip() or "EAGAIN"
        elif v == "truncate":
            env[a[0]].truncate(a[1])
        else:
            raise InvalidArgument(f"unknown op verb {v!r}")
        return None

    @property
    def target(self):
        """(process, address name, page) the line touches, or None."""
        v, a = self.verb, self.args
        if v in ("write",):
            return a[0], a[1], (a[3] if len(a) > 3 else 0)
        if v in ("read",):
            return a[0], a[1], (a[2] if len(a) > 2 else 0)
        if v in ("pin", "gup", "vmsplice", "migrate", "munmap", "mprotect"):
            return a[0], a[1], 0
        return None


@dataclass
class Line:
    """What one line did: its value (or signal / errno name) and, for an
    access, the PTE of the touched page before and after."""

    op: Op
    value: object
    before: object = None
    after: object = None

    @property
    def fault(self):
        """For a write: ``"no fault"``, ``"reuse"`` or ``"copy"`` (what
        do_wp_page() decided, seen from the page table)."""
        b, a = self.before, self.after
        if self.op.verb != "write" or a is None or not a.present:
            return None
        if b is None or not b.present:
            return "first touch"
        if b.writable:
            return "no fault"
        return "reuse" if a.pfn == b.pfn else "copy"


class Run:
    """A program executed on one kernel: the kernel, the names, the lines."""

    def __init__(self, program, kernel, env, lines, error=None):
        self.program = program
        self.kernel = kernel
        self.env = env
        self.lines = lines
        self.error = error

    def page(self, proc, addr, page=0):
        """``k.page()`` of process ``proc`` at address name ``addr`` now
        (a not-present PageInfo if the process is gone or unmapped it)."""
        from ..pageinfo import PageInfo
        p = self.env.get(proc)
        if p is None or not p.alive or addr not in self.env:
            return PageInfo()
        return self.kernel.page(p, self.env[addr] + page * 4096)

    def folio(self, proc, addr, page=0):
        """The model folio mapped there now, or None."""
        p = self.env.get(proc)
        if p is None or not p.alive or addr not in self.env:
            return None
        e = p.mm.pte(self.env[addr] + page * 4096)
        return e.folio if e is not None else None

    def holders(self, folio):
        """(pins, references) held on ``folio`` outside the page tables:
        FOLL_PIN pins, and FOLL_GET references (get_user_pages, pipe buffers)."""
        pins = refs = 0
        for h in self.kernel.holders.values():
            if h.released:
                continue
            for f in h.folios():
                if f is folio:
                    if h.kind == "pin":
                        pins += 1
                    else:
                        refs += 1
        return pins, refs


class Program:
    """A list of :class:`Op` (see the module docstring)."""

    def __init__(self, ops=()):
        self.ops = list(ops)

    def __len__(self):
        return len(self.ops)

    def __iter__(self):
        return iter(self.ops)

    def __add__(self, other):
        return Program(self.ops + list(other))

    def code(self, era=None):
        """The program as Python (with the ``Kernel`` line when ``era`` is given)."""
        head = [f'k = Kernel(era="{era}")'] if era is not None else []
        return "\n".join(head + [op.code() for op in self.ops])

    def run(self, era="6.18", check=True, upto=None, trace="events"):
        """Execute on a fresh ``Kernel(era)``; returns a :class:`Run`.

        A signal or a failed system call is recorded as the line's value
        (``"SIGBUS"``, ``"EFAULT"``); with ``check=False`` (used for the
        "what if the kernel did X" alternatives) an invariant violation
        stops the run and is kept in ``Run.error``.
        """
        k = Kernel(era=era, check=check, trace=trace)
        env, lines = {}, []
        ops = self.ops if upto is None else self.ops[:upto]
        for op in ops:
            t = op.target
            before = None
            if t is not None and t[0] in env and t[1] in env and env[t[0]].alive:
                before = k.page(env[t[0]], env[t[1]] + t[2] * 4096)
            try:
                value = op.apply(k, env)
            except Signal as e:
                value = e.signal
            except KernelError as e:
                value = e.errno
            except MMError as e:
                if check:
                    raise
                return Run(self, k, env, lines, error=e)
            after = None
            if t is not None and t[0] in env and t[1] in env and env[t[0]].alive:
                after = k.page(env[t[0]], env[t[1]] + t[2] * 4096)
            lines.append(Line(op, value, before, after))
        return Run(self, k, env, lines)
