"""The kernel's state as a graph: who uses each page, and how to find them back.

:func:`rmap_graph` turns a :class:`~mmkit.Kernel` into a networkx
``MultiDiGraph`` with one node per process, VMA, page-table entry, folio,
anon_vma, file and holder (pin, GUP reference, pipe).  Forward edges follow
the page tables down (task -> VMA -> PTE -> folio); the reverse-mapping side
follows the kernel's rmap walk from a folio back to the VMAs (folio ->
anon_vma -> VMA through the anon_vma_chain, folio <- file -> VMA through the
page cache and i_mmap).

Node ids are stable across steps, so a layout can keep every node where it
was: ``("task", pid)``, ``("vma", vma.id)``, ``("pte", pid, addr)``,
``("folio", pfn)``, ``("anon_vma", id)``, ``("file", id)``,
``("holder", id)``; grouped ranges of a large state are ``("ptes", pid,
first_addr, last_addr)`` and ``("folios", first_pfn, last_pfn)``.

Examples
--------
>>> from mmkit import Kernel
>>> from mmkit.viz import rmap_graph
>>> k = Kernel()
>>> p = k.spawn("parent")
>>> a = p.mmap(1)
>>> p.write(a, b"x")
>>> c = p.fork("child")
>>> g = rmap_graph(k)
>>> f = g.nodes[("folio", k.page(p, a).pfn)]
>>> f["refcount"], f["mapcount"], f["exclusive"], f["label"]
(2, 2, False, 'pfn 2\\nr2 m2 p0')
>>> g.nodes[("pte", c.pid, a)]["write"]
False
"""

from collections import defaultdict
from dataclasses import dataclass, field

import networkx as nx

from ..gup import FOLL_LONGTERM, FOLL_WRITE
from ..notation import counters
from ..pageinfo import GUP_PIN_COUNTING_BIAS, PAGE_SIZE
from .folio import large_node_attrs

__all__ = ["rmap_graph", "graph_diff", "GraphDiff", "folio_label", "GROUP_THRESHOLD", "KINDS"]

#: Above this many folios, pages in identical state are grouped into one node.
GROUP_THRESHOLD = 60
#: Node kinds, from the top of the drawing down, then the rmap side.
KINDS = ("task", "vma", "pte", "folio", "holder", "anon_vma", "file")



def rmap_graph(kernel, *, group=GROUP_THRESHOLD, expand=(), names=None):
    """Build the graph of everything that uses a page in ``kernel``.

    Parameters
    ----------
    kernel : mmkit.Kernel
    group : int or None
        When the state holds more than ``group`` folios, more than four
        times as many PTEs, or a large folio, runs of pages in identical
        state (same counters and flags, same mappers, consecutive pages)
        become one node, and so do runs of PTEs mapping them.  None or 0:
        never group.
    expand : iterable
        Ranges to keep page by page even when grouping: pfns (int),
        ``range`` of pfns, ``("vma", id)``, or the id of a group node
        (``("folios", a, b)``, ``("ptes", pid, a0, a1)``).
    names : dict, optional
        ``{address: name}``; a VMA starting at a named address gets the
        name in its label (the widgets pass a scenario's ``s.a``, ``s.b``).

    Returns
    -------
    networkx.MultiDiGraph
        Node attributes: ``kind`` (one of :data:`KINDS`), ``label`` (what a
        card shows), ``group`` (a range node), and per kind:

        - task: ``pid``, ``name``, ``alive``
        - vma: ``pid``, ``start``, ``end``, ``npages``, ``prot``, ``shared``,
          ``anon``, ``file``, ``dontcopy``, ``wipeonfork``
        - pte: ``pid``, ``addr``, ``write`` (else write-protected),
          ``dirty``, ``migration``, ``pfn``, ``count``
        - folio: ``pfn``, ``refcount``, ``mapcount``, ``pincount``, ``anon``,
          ``exclusive`` (PageAnonExclusive), ``pinned`` (pincount > 0),
          ``maybe_pinned`` (refcount >= 1024), ``zero``, ``in_page_cache``,
          ``orphan`` (left the page cache by truncation but still held),
          ``dirty``, ``index``, ``page`` (page number in its VMA or file),
          ``count``, ``pfns``
        - anon_vma: ``id``, ``root``, ``parent``, ``nchains``
        - file: ``id``, ``name``, ``npages``, ``shmem``, ``cached``
        - holder: ``id``, ``holder_kind`` ("pin", "ref", "pipe"),
          ``write``, ``longterm``, ``owner``, ``pending``

        Edge attributes: ``kind`` -- ``"mm"`` (task -> VMA),
        ``"page_table"`` (VMA -> PTE), ``"pte"`` (PTE -> folio, with
        ``write``), ``"hold"`` (holder -> folio, one edge per buffer, with
        ``holder_kind``), ``"mapping"`` (folio -> its anon_vma or file),
        ``"avc"`` (anon_vma -> VMA, with ``own``: the VMA's own anon_vma),
        ``"parent"`` (anon_vma -> its parent), ``"page_cache"`` (file ->
        folio, with ``index``), ``"i_mmap"`` (file -> VMA); grouped edges
        carry ``count``.

    Examples
    --------
    >>> from mmkit import Kernel
    >>> k = Kernel()
    >>> p = k.spawn("p")
    >>> a = p.mmap(100)
    >>> p.write(a, bytes(1) + b"x" * (100 * 4096 - 1))
    >>> g = rmap_graph(k)
    >>> [n for n in g if n[0] == "folios"]
    [('folios', 2, 101)]
    >>> g.nodes[("folios", 2, 101)]["label"]
    'pages 0–99 (100)\\nAE r1 m1 p0'
    """
    k = kernel
    g = nx.MultiDiGraph(era=k.era.name, grouped=False)
    names = names or {}
    folios = {}
    mappers = defaultdict(list)            # pfn -> [(pid, vma, addr, entry)]
    ptes = []                              # (pid, vma, addr, entry)
    for pid in sorted(k.tasks):
        t = k.tasks[pid]
        g.add_node(("task", pid), kind="task", group=False, pid=pid, name=t.name, alive=t.alive,
                   label=f"{t.name}\npid {pid}" if t.alive else f"{t.name}\nexited")
        if not t.alive:
            continue
        for vma in t.mm.vmas:
            _add_vma(g, vma, pid, names)
            g.add_edge(("task", pid), ("vma", vma.id), key="mm", kind="mm")
            for addr, e in t.mm.ptes(vma.start, vma.end):
                ptes.append((pid, vma, addr, e))
                folios[e.folio.pfn] = e.folio
                mappers[e.folio.pfn].append((pid, vma, addr, e))
    for fid in sorted(k.files):
        for f in k.files[fid].pages.values():
            folios[f.pfn] = f
    holders = [h for _, h in sorted(k.holders.items()) if not h.released]
    held = defaultdict(list)
    for h in holders:
        for b in h.buffers:
            folios[b[0].pfn] = b[0]
            held[b[0].pfn].append(h.id)

    # -- folio nodes (maybe grouped) --------------------------------------------
    target = {}                            # pfn -> folio node id
    # a large folio is one node, with its pages in a strip (mmkit.viz.folio)
    for pfn, f in folios.items():
        if getattr(f, "huge_zero", False):
            # the huge zero folio (a PMD maps it read-only): one card, not counted
            hz = f.folio
            if ("folio", hz.pfn) not in g:
                g.add_node(("folio", hz.pfn), **_huge_zero_attrs(hz))
            target[pfn] = ("folio", hz.pfn)
            continue
        lf = getattr(f, "folio", None) if getattr(f, "large", False) else None
        if lf is not None:
            if ("folio", lf.pfn) not in g:
                g.add_node(("folio", lf.pfn), **large_node_attrs(lf))
            target[pfn] = ("folio", lf.pfn)
    small = {pfn: f for pfn, f in folios.items() if pfn not in target}
    # group when there are many pages, very many PTEs (a split THP: 256 or
    # 512 PTEs of small pages or of the zero page) or a large folio
    if group and (len(folios) > group or len(ptes) > 4 * group or len(small) < len(folios)):
        g.graph["grouped"] = True
        keep, keep_ptes, keep_vmas = _expansion(expand, ptes)
        target.update(_group_folios(g, small, mappers, held, keep))
    for pfn in sorted(small):
        if pfn not in target:
            target[pfn] = ("folio", pfn)
            _add_folio(g, small[pfn], mappers.get(pfn, ()))

    # -- PTEs ------------------------------------------------------------------
    if g.graph["grouped"]:
        _add_grouped_ptes(g, ptes, target, keep_ptes, keep_vmas)
    else:
        for pid, vma, addr, e in ptes:
            _add_pte(g, pid, vma, addr, e, target[e.folio.pfn])

    # -- holders ----------------------------------------------------------------
    for h in holders:
        hid = ("holder", h.id)
        pending = sum(b[2] for b in h.buffers)
        if h.kind == "pin":
            label = f"pin {'R/W' if h.flags & FOLL_WRITE else 'R/O'}" + (" LT" if h.flags & FOLL_LONGTERM else "")
        elif h.kind == "pipe":
            label = f"pipe\n{pending} B"
        else:
            label = "GUP ref"
        g.add_node(hid, kind="holder", group=False, id=h.id, holder_kind=h.kind,
                   write=bool(h.flags & FOLL_WRITE), longterm=bool(h.flags & FOLL_LONGTERM),
                   owner=h.owner, pending=pending, label=label)
        seen = {}
        for i, b in enumerate(h.buffers):
            t = target[b[0].pfn]
            if g.graph["grouped"] and t in seen:
                g.edges[hid, t, seen[t]]["count"] += 1
                continue
            seen[t] = i
            g.add_edge(hid, t, key=i, kind="hold", holder_kind=h.kind, count=1)

    # -- rmap side: anon_vmas and files ----------------------------------------------
    avs = {}
    for n, d in list(g.nodes(data=True)):
        if d["kind"] == "vma":
            vma = d["_vma"]
            for avc in vma.anon_vma_chain:
                avs[avc.anon_vma.id] = avc.anon_vma
    for pfn, f in folios.items():
        if f.anon and f.mapping is not None:
            avs[f.mapping.id] = f.mapping
    todo = list(avs.values())
    while todo:
        av = todo.pop()
        if av.parent.id not in avs:
            avs[av.parent.id] = av.parent
            todo.append(av.parent)
    for aid in sorted(avs):
        av = avs[aid]
        g.add_node(("anon_vma", aid), kind="anon_vma", group=False, id=aid, root=av.root.id,
                   parent=av.parent.id, nchains=len(av.chains),
                   label=f"anon_vma {aid}\n{len(av.chains)} AVC{'s' if len(av.chains) != 1 else ''}")
    for aid in sorted(avs):
        av = avs[aid]
        if av.parent is not av:
            g.add_edge(("anon_vma", aid), ("anon_vma", av.parent.id), key="parent", kind="parent")
        for avc in av.chains:
            if ("vma", avc.vma.id) in g:
                g.add_edge(("anon_vma", aid), ("vma", avc.vma.id), key="avc", kind="avc",
                           own=avc.vma.anon_vma is av)
    for fid in sorted(k.files):
        f = k.files[fid]
        g.add_node(("file", fid), kind="file", group=False, id=fid, name=f.name, npages=f.npages,
                   shmem=f.shmem, cached=len(f.pages),
                   label=f"{f.name}\n{'shmem' if f.shmem else 'file'} {f.npages}p")
        for index in sorted(f.pages):
            t = target[f.pages[index].pfn]
            if not g.has_edge(("file", fid), t, "page_cache"):
                g.add_edge(("file", fid), t, key="page_cache", kind="page_cache", index=index)
        for vma in f.i_mmap:
            if ("vma", vma.id) in g:
                g.add_edge(("file", fid), ("vma", vma.id), key="i_mmap", kind="i_mmap")
    for pfn, f in sorted(folios.items()):
        t = target[pfn]
        if f.mapping is None or g.has_edge(t, _mapping_node(f), "mapping"):
            continue
        g.add_edge(t, _mapping_node(f), key="mapping", kind="mapping")
    for n, d in g.nodes(data=True):
        d.pop("_vma", None)
    return g


@dataclass
class GraphDiff:
    """What changed between two graphs of the same run.

    Attributes
    ----------
    new, gone : set
        Nodes only in the newer, only in the older graph.
    changed : dict
        node -> list of short descriptions (``"r 2→1"``, ``"W→RO"``,
        ``"AE cleared"``) for nodes in both whose watched attributes differ.
    new_edges, gone_edges : set
        ``(u, v, key)`` triples.
    """

    new: set = field(default_factory=set)
    gone: set = field(default_factory=set)
    changed: dict = field(default_factory=dict)
    new_edges: set = field(default_factory=set)
    gone_edges: set = field(default_factory=set)

    def state(self, node):
        """``"new"``, ``"changed"``, ``"gone"`` or ``"same"``."""
        if node in self.new:
            return "new"
        if node in self.gone:
            return "gone"
        return "changed" if node in self.changed else "same"


def graph_diff(prev, cur):
    """The :class:`GraphDiff` from graph ``prev`` to graph ``cur``.

    ``prev`` may be None (nothing before: every node is new).  In grouped
    graphs a range that was only cut differently (the same pages, now in
    other groups) is not new: it is compared with the node that held its
    first page before, and the old group is not reported gone.

    Examples
    --------
    >>> from mmkit import Kernel
    >>> k = Kernel()
    >>> p = k.spawn("p")
    >>> a = p.mmap(1)
    >>> p.write(a, b"x")
    >>> g0 = rmap_graph(k)
    >>> c = p.fork("c")
    >>> d = graph_diff(g0, rmap_graph(k))
    >>> d.changed[("folio", 2)], d.changed[("pte", p.pid, a)]
    (['r 1→2', 'm 1→2', 'AE cleared'], ['W→RO'])
    """
    d = GraphDiff()
    if prev is None:
        d.new = set(cur)
        d.new_edges = set(cur.edges(keys=True))
        return d
    twin = {n: n for n in cur if n in prev}
    old_members = _members(prev)
    new_members = _members(cur)
    for n in cur:
        if n not in prev:
            first = next(iter(_node_members(n, cur.nodes[n])), None)
            t = old_members.get(first)
            if t is not None:
                twin[n] = t
    for n in cur:
        if n not in twin:
            d.new.add(n)
    regrouped = set()
    for n, a in prev.nodes(data=True):
        members = _node_members(n, a)
        if n not in cur and members and all(m in new_members for m in members):
            regrouped.add(n)
    d.gone = {n for n in prev if n not in cur} - regrouped
    for n, a in cur.nodes(data=True):
        if n in twin:
            ch = _changes(prev.nodes[twin[n]], a)
            if ch:
                d.changed[n] = ch
    prev_e = set(prev.edges(keys=True))
    mapped = set()
    for u, v, k in cur.edges(keys=True):
        m = (twin.get(u, u), twin.get(v, v), k)
        mapped.add(m)
        if m not in prev_e:
            d.new_edges.add((u, v, k))
    d.gone_edges = {(u, v, k) for u, v, k in prev_e - mapped if u not in regrouped and v not in regrouped}
    # A PTE now mapping another page: say so on the PTE.
    for u, v, key in d.new_edges:
        if u[0] in ("pte", "ptes") and u not in d.new and cur.edges[u, v, key]["kind"] == "pte":
            d.changed.setdefault(u, []).append(f"→{_short(cur.nodes[v])}")
    return d


def _node_members(n, a):
    """The pages a folio node stands for (pfns), or the (pid, addr) of a PTE node."""
    if a["kind"] == "folio":
        return a.get("pfns", ())
    if a["kind"] == "pte":
        last = a.get("last_addr", a["addr"])
        return [(a["pid"], x) for x in range(a["addr"], last + 1, PAGE_SIZE)]
    return ()


def _members(g):
    out = {}
    for n, a in g.nodes(data=True):
        for m in _node_members(n, a):
            out[m] = n
    return out


def folio_label(pfn, refcount, mapcount, pincount, exclusive, zero=False, orphan=False):
    """The compact two-line label of a folio card, in the kit's notation
    (:mod:`mmkit.notation`).

    Line one names the page (``pfn 7``, ``orphan 7``) and carries ``AE``
    when PageAnonExclusive is set; line two is ``r`` refcount, ``m``
    mapcount, ``p`` pins.  The zero page is not counted (its PTEs are
    special): its card says ``zero page`` and nothing else.

    >>> print(folio_label(7, 1025, 1, 1, True))
    pfn 7 AE
    r1025 m1 p1
    >>> folio_label(1, 1, 0, 0, False, zero=True)
    'zero page'
    """
    if zero:
        return "zero page"
    head = f"orphan {pfn}" if orphan else f"pfn {pfn}"
    return f"{head}{' AE' if exclusive else ''}\n{counters(refcount, mapcount, pincount, False)}"


# -- helpers --------------------------------------------------------------------------
def _perms(vma):
    return f"{'r' if vma.read else '-'}{'w' if vma.write else '-'}-{'s' if vma.shared else 'p'}"


def _add_vma(g, vma, pid, names):
    what = vma.file.name if vma.file is not None else "anon"
    name = names.get(vma.start)
    head = f"{name}: " if name else ""
    flags = " DONTFORK" if vma.dontcopy else ""
    flags += " WIPEONFORK" if vma.wipeonfork else ""
    line2 = f"{vma.npages} page{'s' if vma.npages != 1 else ''}{flags}"
    g.add_node(("vma", vma.id), kind="vma", group=False, pid=pid, id=vma.id, start=vma.start, end=vma.end,
               npages=vma.npages, prot=vma.prot, shared=vma.shared, anon=vma.file is None,
               file=vma.file.id if vma.file is not None else None, dontcopy=vma.dontcopy,
               wipeonfork=vma.wipeonfork, name=name, label=f"{head}{_perms(vma)} {what}\n{line2}", _vma=vma)


def _add_pte(g, pid, vma, addr, e, t):
    node = ("pte", pid, addr)
    mig = not e.present
    write = bool(getattr(e, "write", False))
    g.add_node(node, kind="pte", group=False, pid=pid, addr=addr, write=write, dirty=e.dirty,
               migration=mig, pfn=e.folio.pfn, count=1, label="mig" if mig else "W" if write else "RO")
    g.add_edge(("vma", vma.id), node, key="page_table", kind="page_table")
    g.add_edge(node, t, key="pte", kind="pte", write=write, migration=mig, count=1, **_subpages(g, t, e, 1))


def _subpages(g, t, e, n):
    """For a PTE edge to a large folio: which of its pages the PTE node maps
    (``page``, ``last_page``) and the folio's ``nr`` of pages, so that a
    drawing can end the edge at that part of the card."""
    a = g.nodes[t]
    if not a.get("large"):
        return {}
    first = e.folio.pfn - a["pfn"]
    return dict(page=first, last_page=min(a["nr"] - 1, first + n - 1), nr=a["nr"])


def _page_no(f, mappers):
    """Page number shown for a folio: its offset in the first VMA mapping
    it (anon), or its index in the file."""
    if f.anon and mappers:
        _, vma, addr, _ = mappers[0]
        return (addr - vma.start) // PAGE_SIZE
    return f.index


def _folio_attrs(f, mappers):
    orphan = not f.zero and not f.anon and f.mapping is None
    return dict(kind="folio", refcount=f.refcount, mapcount=f.mapcount, pincount=f.pincount,
                anon=f.anon, exclusive=f.anon_exclusive, pinned=f.pincount > 0,
                maybe_pinned=not f.zero and f.refcount >= GUP_PIN_COUNTING_BIAS, zero=f.zero,
                in_page_cache=f.in_page_cache, orphan=orphan, dirty=f.dirty, index=f.index,
                page=_page_no(f, mappers))


def _add_folio(g, f, mappers):
    a = _folio_attrs(f, mappers)
    g.add_node(("folio", f.pfn), group=False, pfn=f.pfn, pfns=(f.pfn,), count=1,
               label=folio_label(f.pfn, f.refcount, f.mapcount, f.pincount, f.anon_exclusive, f.zero,
                                 a["orphan"]), **a)


def _huge_zero_attrs(hz):
    """Node attributes of the huge zero folio: a zero page (not counted) of
    2 MiB, drawn as one card whatever the number of its pages mapped."""
    nr = 1 << getattr(hz, "order", 9)
    size = nr * 4
    size_s = f"{size // 1024} MiB" if size >= 1024 else f"{size} KiB"
    return dict(kind="folio", group=False, pfn=hz.pfn, pfns=tuple(range(hz.pfn, hz.pfn + nr)), count=1,
                refcount=hz.refcount, mapcount=0, pincount=0, anon=False, exclusive=False, pinned=False,
                maybe_pinned=False, zero=True, in_page_cache=False, orphan=False, dirty=False, index=0, page=0,
                label=f"huge zero page\n{size_s}, not counted")


def _mapping_node(f):
    return ("anon_vma", f.mapping.id) if f.anon else ("file", f.mapping.id)


def _expansion(expand, ptes):
    """Normalise ``expand`` to (pfns, pte ranges, vma ids) kept page by page."""
    pfns, ranges, vmas = set(), [], set()
    for x in expand or ():
        if isinstance(x, bool):
            continue
        if isinstance(x, int):
            pfns.add(x)
        elif isinstance(x, range):
            pfns.update(x)
        elif isinstance(x, tuple) and x and x[0] in ("folio", "folios"):
            pfns.update(range(x[1], x[-1] + 1))
        elif isinstance(x, tuple) and x and x[0] == "vma":
            vmas.add(x[1])
        elif isinstance(x, tuple) and x and x[0] in ("pte", "ptes"):
            ranges.append((x[1], x[2], x[-1]))
    for pid, vma, addr, e in ptes:
        if vma.id in vmas or any(pid == r[0] and r[1] <= addr <= r[2] for r in ranges):
            pfns.add(e.folio.pfn)
    return pfns, ranges, vmas


def _group_folios(g, folios, mappers, held, keep):
    """Add group nodes for runs of folios in identical state; returns pfn -> node."""
    target = {}
    keyed = []
    for pfn, f in folios.items():
        if f.zero or pfn in keep:
            continue
        who = tuple(sorted((pid, vma.id, bool(getattr(e, "write", False)), e.present)
                           for pid, vma, _, e in mappers.get(pfn, ())))
        mapping = _mapping_node(f) if f.mapping is not None else None
        sig = (f.anon, f.in_page_cache, f.mapping is None, f.refcount, f.mapcount, f.pincount,
               f.anon_exclusive, str(mapping), who, tuple(sorted(held.get(pfn, ()))))
        keyed.append((sig, f.index, pfn))
    keyed.sort()
    runs, run = [], []
    for sig, index, pfn in keyed:
        if run and run[-1][0] == sig and run[-1][1] == index - 1:
            run.append((sig, index, pfn))
        else:
            if run:
                runs.append(run)
            run = [(sig, index, pfn)]
    if run:
        runs.append(run)
    for run in runs:
        if len(run) < 2:
            continue
        pfns = tuple(p for _, _, p in run)
        node = ("folios", min(pfns), max(pfns))
        f = folios[pfns[0]]
        a = _folio_attrs(f, mappers.get(pfns[0], ()))
        first, last = a["page"], a["page"] + len(run) - 1
        state = "AE " if f.anon_exclusive else "shared " if f.mapcount > 1 else \
            "orphans " if a["orphan"] else ""
        label = (f"pages {first}–{last} ({len(run)})\n"
                 f"{state}r{f.refcount} m{f.mapcount} p{f.pincount}")
        g.add_node(node, group=True, pfn=pfns[0], pfns=pfns, count=len(run), label=label, **a)
        for p in pfns:
            target[p] = node
    return target


def _add_grouped_ptes(g, ptes, target, keep_ranges, keep_vmas):
    """PTE nodes for a grouped graph: runs of consecutive PTEs of one VMA
    mapping the same group node with the same permissions become one node."""
    runs = []
    for pid, vma, addr, e in ptes:
        t = target[e.folio.pfn]
        key = (pid, vma.id, t, bool(getattr(e, "write", False)), not e.present, hasattr(e, "pmd"))
        single = vma.id in keep_vmas or any(pid == r[0] and r[1] <= addr <= r[2] for r in keep_ranges)
        if runs and not single and runs[-1][0] == key and runs[-1][-1][-1] == addr - PAGE_SIZE \
                and not runs[-1][1]:
            runs[-1][-1].append(addr)
            continue
        runs.append([key, single, vma, e, [addr]])
    for key, _, vma, e, addrs in runs:
        pid, _, t, write, mig, pmd = key
        if len(addrs) == 1:
            _add_pte(g, pid, vma, addrs[0], e, t)
            continue
        node = ("ptes", pid, addrs[0], addrs[-1])
        n = len(addrs)
        g.add_node(node, kind="pte", group=True, pid=pid, addr=addrs[0], last_addr=addrs[-1], write=write,
                   dirty=e.dirty, migration=mig, pfn=e.folio.pfn, count=n, pmd=pmd,
                   label=f"{'PMD' if pmd else f'{n}×'}\n{'mig' if mig else 'W' if write else 'RO'}")
        g.add_edge(("vma", vma.id), node, key="page_table", kind="page_table")
        g.add_edge(node, t, key="pte", kind="pte", write=write, migration=mig, count=n, **_subpages(g, t, e, n))


_WATCH = {
    "folio": (("refcount", "r"), ("mapcount", "m"), ("pincount", "p")),
    "holder": (("pending", "bytes"),),
    "anon_vma": (("nchains", "AVCs"),),
    "file": (("cached", "cached"), ("npages", "pages")),
}


def _changes(a, b):
    kind = b["kind"]
    out = []
    if kind == "folio" and b["zero"]:
        return out                      # not counted: nothing to report
    for attr, short in _WATCH.get(kind, ()):
        if a.get(attr) != b.get(attr):
            out.append(f"{short} {a.get(attr)}→{b.get(attr)}")
    if kind == "folio":
        if a["exclusive"] != b["exclusive"]:
            out.append("AE set" if b["exclusive"] else "AE cleared")
        if b["orphan"] and not a["orphan"]:
            out.append("orphaned")
        if not b["orphan"] and a["in_page_cache"] != b["in_page_cache"]:
            out.append("cached" if b["in_page_cache"] else "left cache")
    elif kind == "pte":
        if a["write"] != b["write"] or a["migration"] != b["migration"]:
            out.append(f"{a['label'].split()[-1]}→{b['label'].split()[-1]}")
    elif kind == "vma":
        if a["prot"] != b["prot"]:
            out.append(f"{a['prot']}→{b['prot']}")
        if a["dontcopy"] != b["dontcopy"] or a["wipeonfork"] != b["wipeonfork"]:
            out.append("madvise")
    elif kind == "task" and a["alive"] != b["alive"]:
        out.append("exited")
    return out


def _short(attrs):
    if attrs["kind"] == "folio":
        return "zero page" if attrs["zero"] else f"pfn {attrs['pfn']}"
    return attrs["label"].split("\n")[0]
