"""What each notebook has taught: the operation alphabet of its exercises.

``generate(kind, seed, upto="00")`` draws only questions whose programs use
operations the notebooks up to ``upto`` have taught (the seed's own draw if
it fits, else the next fitting draw of a stream derived from the seed), so
that notebook 00's ``counters`` exercise never needs FAULT_FLAG_UNSHARE
(notebook 04) or a FOLL_GET reference (notebook 03).

An operation is a program verb (``fork``, ``write``, ``gup``...), with a
pin split into ``pin_rw`` / ``pin_ro`` and one derived operation:
``unshare``, a GUP request that had to unshare the page (the kernel trace
says ``gup_must_unshare()``), taught in notebook 04.  Kernel eras other
than 6.18 are taught from notebook 01 (fork under 5.7).
"""

__all__ = ["TAUGHT", "taught", "operations", "fits", "NOTEBOOKS"]

_BASE = {"spawn", "mmap", "write", "fork", "pin_rw", "vmsplice", "mprotect", "munmap"}

#: notebook -> the operations it adds (notebook 00's cells use these verbs)
_ADDS = {
    "00": _BASE,
    "01": {"read", "madvise", "era"},
    "02": {"exit", "pipe_read"},
    "03": {"gup", "put", "pin_ro", "unpin"},
    "04": {"unshare"},
    "05": {"migrate"},
    "06": {"truncate", "open", "fwrite", "fread", "mmap_file", "dev_read"},
    "09": {"munmap_half", "dontneed", "thp_enabled", "thp_set", "mmap_n"},
}
NOTEBOOKS = tuple(_ADDS)


def taught(upto):
    """The operations notebooks 00 to ``upto`` have taught."""
    upto = str(upto)[:2]
    if upto not in _ADDS:
        from ..errors import InvalidArgument
        raise InvalidArgument(f"upto must be a notebook number such as '00' or '04' "
                              f"({', '.join(NOTEBOOKS)}), not {upto!r}")
    out = set()
    for nb in NOTEBOOKS:
        if nb <= upto:
            out |= _ADDS[nb]
    return out


TAUGHT = {nb: frozenset(taught(nb)) for nb in NOTEBOOKS}


def _program_ops(prog, era):
    out = set()
    for op in getattr(prog, "ops", ()):
        if op.verb == "pin":
            out.add("pin_rw" if op.a4 else "pin_ro")
        else:
            out.add(op.verb)
    if str(era) != "6.18":
        out.add("era")
    if getattr(prog, "ops", None):
        try:
            run = prog.run(era, check=False)
            k = getattr(run, "kernel", None)
            if k is not None and any("gup_must_unshare" in str(e) for e in k.trace):
                out.add("unshare")
        except Exception:
            pass
    return out


def operations(q):
    """The operations of every program a question shows or accepts (its
    program, its choices, a build question's model solution)."""
    from .. import release
    with release._internal():
        era = q.params.get("era") or "6.18"
        progs = [q._source] + list((q.choices or {}).values())
        out = set()
        for p in progs:
            out |= _program_ops(p, era)
        return out


def fits(q, upto):
    """Does question ``q`` use only operations taught up to notebook ``upto``?"""
    return operations(q) <= taught(upto)
