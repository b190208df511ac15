"""Speed of the drawings: the stepper against a bare matplotlib floor.

:func:`viz_timings` measures, in one run on this machine:

- ``floor_ms``: a 46-node layered graph drawn the plain way (a new Figure,
  one ``plot`` per edge, ``scatter`` per layer, ``text`` per node,
  ``savefig`` to PNG at 80 dpi), the cost of any redraw done naively;
- ``step_ms``: one :class:`~mmkit.widgets.Stepper` step (model step,
  snapshot, graph, redraw, PNG) for a 3-process, 8-page lecture scenario in
  the compact preset (80 dpi); median over the steps of a second pass
  (card images cached), ``step_cold_ms`` the same for the first pass;
- ``big_ms``: a redraw + PNG of a 200-node graph (4 processes x 40 pages);
- ``step_ratio``: ``step_ms / floor_ms`` (target <= 1.2; ``step_cold_ratio``
  the same for the first pass) and ``big_ms`` (target <= 150 ms).

Run ``python -m mmkit.bench_viz`` to print them.
"""

import io
import statistics
import time

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .kernel import Kernel
from .scenario import Scenario

__all__ = ["viz_timings", "lecture_scenario", "floor_once", "big_state"]


def lecture_scenario():
    """Three processes sharing eight anonymous pages: fork twice, COW, pin, exit."""
    sc = Scenario("lecture8", "Three processes and eight pages",
                  watch=[("parent 0", "p", "a", 0), ("child1 0", "c1", "a", 0), ("child2 0", "c2", "a", 0),
                         ("parent 5", "p", "a", 5)])

    @sc.step("parent writes", "The parent writes eight pages: eight exclusive pages.")
    def _(k, s):
        s.p = k.spawn("parent")
        s.a = s.p.mmap(8)
        s.p.write(s.a, b"x" * (8 * k.PAGE_SIZE))

    sc.add("fork child1", "All eight pages shared, read-only.", lambda k, s: setattr(s, "c1", s.p.fork("child1")))
    sc.add("fork child2", "Three mappings of each page.", lambda k, s: setattr(s, "c2", s.p.fork("child2")))
    sc.add("child1 writes 0-3", "Four copies for child1.", lambda k, s: s.c1.write(s.a, b"y" * (4 * k.PAGE_SIZE)))
    sc.add("child2 writes 0", "One copy for child2.", lambda k, s: s.c2.write(s.a, b"z"))
    sc.add("parent pins 5", "A long-term R/W pin breaks COW on page 5.",
           lambda k, s: setattr(s, "pin", s.p.pin(s.a + 5 * k.PAGE_SIZE, 1, write=True)))
    sc.add("parent writes 4-7", "Copies or reuses, page by page.",
           lambda k, s: s.p.write(s.a + 4 * k.PAGE_SIZE, b"w" * (4 * k.PAGE_SIZE)))
    sc.add("child1 exits", "Its mappings go; some pages are exclusive again.", lambda k, s: s.c1.exit())
    return sc


def floor_once(n_layers=(3, 6, 22, 15), figsize=(10, 5.8), dpi=80):
    """Draw a 46-node layered graph the plain way and return the PNG bytes."""
    xs, ys, labels = [], [], []
    for r, cnt in enumerate(n_layers):
        for i in range(cnt):
            xs.append((i + 0.5) * 24 / cnt)
            ys.append(3 - r)
            labels.append(f"n{r}.{i}")
    edges = [(i, (i * 7 + 3) % len(xs)) for i in range(len(xs))]
    fig = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for a, b in edges:
        ax.plot([xs[a], xs[b]], [ys[a], ys[b]], color="grey", lw=1, zorder=1)
    start = 0
    for cnt in n_layers:
        ax.scatter(xs[start:start + cnt], ys[start:start + cnt], s=300, zorder=2)
        start += cnt
    for x, y, t in zip(xs, ys, labels):
        ax.text(x, y, t, ha="center", va="center", fontsize=8, zorder=3)
    ax.axis("off")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def big_state(procs=4, pages=40, writes=6):
    """A kernel with about 200 graph nodes: a parent with ``pages`` written
    pages and ``procs - 1`` children; returns (kernel, graph before, graph
    after the last child wrote ``writes`` pages)."""
    from .viz import rmap_graph
    k = Kernel()
    p = k.spawn("parent")
    a = p.mmap(pages)
    p.write(a, b"x" * (pages * k.PAGE_SIZE))
    kids = [p.fork(f"child{i}") for i in range(1, procs)]
    g0 = rmap_graph(k)
    kids[-1].write(a, b"y" * (writes * k.PAGE_SIZE))
    return k, g0, rmap_graph(k)


def _ms(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return times


def viz_timings(repeat=7):
    """Measure the drawing costs (see the module docstring); returns a dict of ms and ratios."""
    from .viz import GraphView
    from .widgets import Stepper
    floor_once()                                      # warm fonts and caches
    floor = statistics.median(_ms(floor_once, repeat))

    sc = lecture_scenario()
    w = Stepper(sc, preset="compact")
    cold = _ms(w.step, len(sc))
    w.reset()
    warm = _ms(w.step, len(sc))
    nodes = w.playback.graph().number_of_nodes()

    _, g0, g1 = big_state()
    view = GraphView("compact")
    view.layout.plan([g0, g1])
    view.fit()
    view.draw(g0).png()

    def big():
        view.draw(g1, prev=g0).png()
    big_ms = statistics.median(_ms(big, repeat))
    step = statistics.median(warm)
    return {
        "floor_ms": round(floor, 1),
        "step_ms": round(step, 1),
        "step_cold_ms": round(statistics.median(cold), 1),
        "step_ratio": round(step / floor, 2),
        "step_cold_ratio": round(statistics.median(cold) / floor, 2),
        "lecture_nodes": nodes,
        "big_ms": round(big_ms, 1),
        "big_nodes": g1.number_of_nodes(),
        "targets": "step_ratio <= 1.2, big_ms <= 150",
    }


if __name__ == "__main__":
    for key, value in viz_timings().items():
        print(f"{key:14} {value}")
