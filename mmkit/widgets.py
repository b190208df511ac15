"""The stepper: walk through a scenario one kernel operation at a time.

``Stepper(scenario)`` shows, for the current step, the rmap graph (changes
since the previous step highlighted), the step's explanation and outcome,
the kernel functions that ran and what they decided, and the counters of
the watched pages.  Step, back (a snapshot restore, not a replay), reset,
play at a chosen speed, jump with the slider (focus it and use the arrow
keys), and switch the kernel era to see another outcome.  ``Compare`` runs
the same scenario under two eras side by side.

A scenario of your own takes three lines::

    sc = Scenario("mine", "fork then write", watch=[("parent", "p", "a")])
    sc.add("map", "...", lambda k, s: ...)
    Stepper(sc)

Everything works without a browser: the figure is an ``ipywidgets.Image``
whose ``value`` is the PNG, and the label with CSS class ``mm-status`` says
``"step 3/7 drawn"`` once a redraw is complete (it is set last).

Examples
--------
>>> from mmkit.widgets import Stepper
>>> w = Stepper("fork", era="6.18")
>>> w.step(); w.step()
>>> w.index, w.status.value
(2, 'step 2/3 drawn')
>>> w.results[-1].pages["child"].mapcount
2
>>> w.back(); w.index
1
>>> w.png[:4] == b"\\x89PNG"
True
"""

import base64
import html
import os

import ipywidgets as W

from .era import ERAS, era as _era
from .notation import key_for
from .errors import InvalidArgument
from .viz.captions import step_text
from .viz.export import frame_strip, save_gif, step_caption, step_title
from .viz.graph import GROUP_THRESHOLD
from .viz.layout import Layout
from .viz.playback import Playback
from .scenario import format_outcome
from .viz.style import preset as _preset


def default_preset():
    """The preset widgets use when none is given: ``$MMKIT_PRESET`` (``make
    present`` sets ``lecture``), else ``"compact"``."""
    return os.environ.get("MMKIT_PRESET", "compact")
from .viz.view import GraphView

__all__ = ["Stepper", "Compare", "trace_html", "pages_table"]

#: (PageInfo field, header in the kit's notation, notation symbols it uses)
_COLUMNS = (("pfn", "pfn", ()), ("present", "present", ()), ("writable", "W/RO", ("W", "RO")),
            ("anon", "anon", ()), ("exclusive", "AE", ("AE",)), ("refcount", "r", ("r",)),
            ("mapcount", "m", ("m",)), ("pincount", "p", ("p",)), ("maybe_pinned", "r ≥ 1024", ()),
            ("in_page_cache", "cache", ()))
_NOT_COUNTED = ("exclusive", "refcount", "mapcount", "pincount", "maybe_pinned")
_SPEEDS = (("slow", 2400), ("normal", 1400), ("fast", 600))


class Stepper(W.VBox):
    """A scenario player: figure, explanation, trace, counters, controls.

    Parameters
    ----------
    scenario : Scenario or str
        A scenario or the name of a shipped one (``mmkit.scenarios.names()``,
        or a cow.c case name).
    era : str or Era
        Kernel era to run under (``"5.7"`` ... ``"6.18"``).
    preset : {"compact", "lecture"}, optional
        ``"lecture"``: 16:9 figure, large fonts and buttons for a projector.
        Default: :func:`default_preset` (``$MMKIT_PRESET`` or ``"compact"``).
    group : int or None
        Group identical pages above this many folios (see ``rmap_graph``).
    controls : bool
        Show the control bar (``Compare`` builds its own).

    Attributes
    ----------
    playback : mmkit.viz.Playback
        The run: kernel, handles, results, trace logs, snapshots.
    view : mmkit.viz.GraphView
        The figure (``view.figure`` for :func:`mmkit.viz.save`).
    image : ipywidgets.Image
        Its ``value`` is the PNG of the current frame.
    status : ipywidgets.Label
        CSS class ``mm-status``; ``"step i/n drawn"`` after each redraw.
    """

    def __init__(self, scenario, era="6.18", preset=None, group=GROUP_THRESHOLD, controls=True):
        self.preset = _preset(preset or default_preset())
        self.playback = Playback(scenario, era, {"group": group})
        self.view = GraphView(self.preset)
        self._busy = False
        self.error = None
        lecture = self.preset.name == "lecture"
        fs = "17px" if lecture else "13px"
        self._fs = fs
        bl = W.Layout(height="48px" if lecture else "36px", min_width="110px" if lecture else "84px")
        bstyle = dict(font_size="18px" if lecture else "14px", font_weight="bold")
        self.reset_button = W.Button(description="↺ reset", tooltip="back to the start", layout=bl, style=bstyle)
        self.back_button = W.Button(description="◀ back", tooltip="undo the last step (restores a snapshot)",
                                    layout=bl, style=bstyle)
        self.step_button = W.Button(description="step ▶", tooltip="run the next step", button_style="primary",
                                    layout=bl, style=bstyle)
        n = len(self.playback)
        self.slider = W.IntSlider(value=0, min=0, max=n, description="step", continuous_update=False,
                                  tooltip="focus and use the arrow keys",
                                  layout=W.Layout(width="300px" if lecture else "230px"))
        self.play = W.Play(value=0, min=0, max=n, interval=_SPEEDS[1][1], repeat=False, show_repeat=False,
                           description="play", layout=W.Layout(height=bl.height))
        # the slider is the source: the link's first sync copies it to the Play
        self._link = W.jslink((self.slider, "value"), (self.play, "value"))
        self.speed = W.Dropdown(options=_SPEEDS, value=_SPEEDS[1][1], description="speed",
                                layout=W.Layout(width="170px"))
        self.era_select = W.Dropdown(options=list(ERAS), value=self.playback.era.name if
                                     self.playback.era.name in ERAS else None, description="era",
                                     layout=W.Layout(width="150px"))
        self.expand_select = W.Dropdown(options=[("expand a range…", None)], value=None,
                                        layout=W.Layout(width="260px", display="none"))
        self.header = W.HTML()
        self.image = W.Image(format="png", layout=W.Layout(width="100%", height="auto"))
        self.explain = W.HTML(layout=W.Layout(width="100%"))
        self.trace = W.HTML(layout=W.Layout(flex="1 1 55%", overflow="auto",
                                            max_height="420px" if lecture else "300px"))
        self.table = W.HTML(layout=W.Layout(flex="1 1 45%", overflow="auto", margin="0 0 0 12px"))
        self.status = W.Label(value="")
        self.status.add_class("mm-status")
        self.reset_button.on_click(lambda _: self.reset())
        self.back_button.on_click(lambda _: self.back())
        self.step_button.on_click(lambda _: self.step())
        self.slider.observe(self._on_slider, names="value")
        self.speed.observe(lambda c: setattr(self.play, "interval", c.new), names="value")
        self.era_select.observe(self._on_era, names="value")
        self.expand_select.observe(self._on_expand, names="value")
        self.controls = W.HBox([self.reset_button, self.back_button, self.step_button, self.play, self.slider,
                                self.speed, self.era_select, self.expand_select],
                               layout=W.Layout(flex_flow="row wrap", align_items="center"))
        children = [self.header] + ([self.controls] if controls else []) + [
            self.image, self.explain, W.HBox([self.trace, self.table]), self.status]
        super().__init__(children=children)
        self.add_class("mm-stepper")
        self._plan()
        self._show()

    def _repr_mimebundle_(self, **kwargs):
        # the current frame as a static fallback where widgets cannot run
        data = super()._repr_mimebundle_(**kwargs)
        if isinstance(data, dict) and self.png:
            data["image/png"] = base64.b64encode(self.png).decode("ascii")
        return data

    # -- the API -------------------------------------------------------------------------
    @property
    def index(self):
        """Steps done (0 = before the first)."""
        return self.playback.index

    @property
    def kernel(self):
        """The model kernel in its current state."""
        return self.playback.kernel

    @property
    def results(self):
        """StepResults of the steps done."""
        return self.playback.results

    @property
    def scenario(self):
        return self.playback.scenario

    @property
    def era(self):
        """The Era the scenario runs under."""
        return self.playback.era

    @property
    def png(self):
        """PNG bytes of the figure currently shown."""
        return self.image.value

    @property
    def figure(self):
        """The matplotlib Figure of the current frame (for ``mmkit.viz.save``)."""
        return self.view.figure

    def step(self):
        """Run the next step and redraw (nothing at the end)."""
        if self.index >= len(self.playback):
            return
        try:
            self.playback.step()
            self.error = None
        except Exception as e:           # a bug in a hand-written step: show it, stay put
            self.error = f"{type(e).__name__}: {e}"
        self._show()

    def back(self):
        """Undo the last step (restores the snapshot taken before it) and redraw."""
        self.error = None
        self.playback.back()
        self._show()

    def reset(self):
        """Back to step 0 (an empty kernel) and redraw."""
        self.error = None
        self.playback.goto(0)
        self._show()

    def goto(self, index):
        """Jump to ``index`` steps done (stepping forward or restoring snapshots)."""
        self.error = None
        try:
            self.playback.goto(index)
        except InvalidArgument:
            raise
        except Exception as e:
            self.error = f"{type(e).__name__}: {e}"
        self._show()

    def set_era(self, era):
        """Rerun the scenario under ``era`` up to the current step."""
        e = _era(era)
        if e == self.playback.era:
            return
        index = self.index
        self.playback = Playback(self.playback.scenario, e, self.playback.graph_options)
        self.view = GraphView(self.preset)
        self._plan()
        self.goto(index)
        if self.era_select.value != e.name and e.name in ERAS:
            self.era_select.value = e.name

    def expand(self, *ranges):
        """Show these grouped ranges page by page (group node ids, pfn ranges,
        ``("vma", id)``); with no argument, group everything again."""
        pb = self.playback
        expand = list(pb.graph_options.get("expand", ())) + list(ranges) if ranges else []
        pb.set_graph_options(expand=expand)
        self._show()

    def strip(self, cols=2):
        """The whole run as one static Figure (for published notebooks)."""
        return frame_strip(self.playback.scenario, self.era, self.preset, cols=cols,
                           **self.playback.graph_options)

    def save_gif(self, path, fps=0.8):
        """The whole run as an animated GIF."""
        return save_gif(self.playback.scenario, path, self.era, self.preset, fps=fps,
                        **self.playback.graph_options)

    # -- drawing -------------------------------------------------------------------------------
    def _plan(self):
        self.view.layout = Layout(self.preset)
        self.view.layout.plan(self.playback.all_graphs())
        self.view.fit()

    def _show(self):
        pb = self.playback
        i, n = pb.index, len(pb)
        self.status.value = f"step {i}/{n} drawing…"
        g = pb.graph()
        prev = pb.graph(i - 1) if i else None
        self.view.draw(g, prev=prev, title=step_title(pb), caption=step_caption(pb), era=pb.era.name)
        self.image.value = self.view.png()
        self._busy = True
        try:
            self.slider.value = i
            if self.play.value != i:
                self.play.value = i
        finally:
            self._busy = False
        self.step_button.disabled = i >= n
        self.back_button.disabled = i == 0
        self.header.value = (f"<div style='font-size:{self._fs};font-weight:bold'>"
                             f"{html.escape(pb.scenario.title or pb.scenario.name)}</div>")
        self.explain.value = self._explain_html()
        self.trace.value = trace_html(pb.logs[-1] if i else [], self._fs)
        prev_pages = pb.results[-2].pages if i >= 2 else None
        self.table.value = pages_table(pb.results[-1].pages if i else {}, prev_pages, self._fs)
        self._update_expand(g)
        self.status.value = f"step {i}/{n} error" if self.error else f"step {i}/{n} drawn"

    def _explain_html(self):
        pb = self.playback
        fs = self._fs
        if self.error:
            return (f"<div style='font-size:{fs};color:#D55E00'><b>the step failed:</b> "
                    f"{html.escape(self.error)}</div>")
        if pb.index == 0:
            return (f"<div style='font-size:{fs};color:#555'>{len(pb)} steps. Press <b>step ▶</b> "
                    f"(or focus the slider and use →).</div>")
        r = pb.results[-1]
        out = ""
        if r.outcome is not None:
            out = (f"<div style='margin-top:2px'>outcome: <code style='font-size:{fs}'>"
                   f"{html.escape(format_outcome(r.outcome))}</code></div>")
        text, how = step_text(pb, long=True)
        return (f"<div class='mm-explain' data-caption='{how}' style='font-size:{fs}'><b>{r.index + 1}. "
                f"{html.escape(r.step.name)}</b> — {html.escape(text)}{out}</div>")

    def _update_expand(self, g):
        groups = sorted((n for n, a in g.nodes(data=True) if a.get("group") and a["kind"] == "folio"), key=repr)
        expanded = self.playback.graph_options.get("expand", ())
        options = [("expand a range…", None)]
        options += [(g.nodes[n]["label"].replace("\n", " · "), n) for n in groups]
        if expanded:
            options.append(("group everything again", "collapse"))
        self._busy = True
        try:
            self.expand_select.options = options
            self.expand_select.value = None
        finally:
            self._busy = False
        self.expand_select.layout.display = "" if len(options) > 1 else "none"

    # -- control callbacks ----------------------------------------------------------------------
    def _on_slider(self, change):
        if not self._busy and change.new != self.index:
            self.goto(change.new)

    def _on_era(self, change):
        if not self._busy and change.new is not None:
            self.set_era(change.new)

    def _on_expand(self, change):
        if self._busy or change.new is None:
            return
        if change.new == "collapse":
            self.expand()
        else:
            self.expand(change.new)


class Compare(W.VBox):
    """One scenario under several eras, side by side, with one set of controls.

    Parameters
    ----------
    scenario : Scenario or str
    eras : sequence of str
        Two (or more) era names, e.g. ``("5.7", "6.18")``.
    preset : {"compact", "lecture"}

    Attributes
    ----------
    steppers : list of Stepper
        One per era (their own control bars hidden).
    status : ipywidgets.Label
        ``"step i/n drawn"`` once every panel is redrawn (CSS class ``mm-status``).

    Examples
    --------
    >>> from mmkit.widgets import Compare
    >>> c = Compare("vmsplice_child", eras=("5.7", "6.18"))
    >>> c.goto(6)
    >>> [s.results[-1].outcome for s in c.steppers]
    [b'NEW DATA', b'old data']
    >>> c.differs
    True
    """

    def __init__(self, scenario, eras=("5.7", "6.18"), preset=None, group=GROUP_THRESHOLD):
        if len(eras) < 2:
            raise InvalidArgument("Compare needs at least two eras")
        self.steppers = [Stepper(scenario, era=e, preset=preset, group=group, controls=False) for e in eras]
        first = self.steppers[0]
        lecture = first.preset.name == "lecture"
        bl = W.Layout(height="48px" if lecture else "36px", min_width="110px" if lecture else "84px")
        bstyle = dict(font_size="18px" if lecture else "14px", font_weight="bold")
        n = len(first.playback)
        self.reset_button = W.Button(description="↺ reset", layout=bl, style=bstyle)
        self.back_button = W.Button(description="◀ back", layout=bl, style=bstyle)
        self.step_button = W.Button(description="step ▶", button_style="primary", layout=bl, style=bstyle)
        self.slider = W.IntSlider(value=0, min=0, max=n, description="step", continuous_update=False)
        self.play = W.Play(value=0, min=0, max=n, interval=_SPEEDS[1][1], repeat=False, show_repeat=False)
        # the slider is the source: the link's first sync copies it to the Play
        self._link = W.jslink((self.slider, "value"), (self.play, "value"))
        self.header = W.HTML(f"<div style='font-size:{first._fs};font-weight:bold'>"
                             f"{html.escape(first.scenario.title or first.scenario.name)} — eras "
                             f"{' vs '.join(s.era.name for s in self.steppers)}</div>")
        self.verdict = W.HTML()
        self.status = W.Label(value="")
        self.status.add_class("mm-status")
        self._busy = False
        self.reset_button.on_click(lambda _: self.reset())
        self.back_button.on_click(lambda _: self.back())
        self.step_button.on_click(lambda _: self.step())
        self.slider.observe(lambda c: None if self._busy else self.goto(c.new), names="value")
        panels = [W.VBox([s.image, s.explain, s.trace], layout=W.Layout(flex="1 1 0", min_width="0",
                                                                        margin="0 6px"))
                  for s in self.steppers]
        controls = W.HBox([self.reset_button, self.back_button, self.step_button, self.play, self.slider],
                          layout=W.Layout(align_items="center"))
        self.table = W.HTML()
        super().__init__(children=[self.header, controls, W.HBox(panels),
                                   self.verdict, self.table, self.status])
        self.add_class("mm-compare")
        self._sync()

    def _repr_mimebundle_(self, **kwargs):
        data = super()._repr_mimebundle_(**kwargs)
        if isinstance(data, dict) and self.steppers[0].png:
            data["image/png"] = base64.b64encode(self.steppers[0].png).decode("ascii")
        return data

    @property
    def index(self):
        """Steps done (0 = before the first)."""
        return self.steppers[0].index

    @property
    def differs(self):
        """The current step's outcome is not the same under every era."""
        outs = [s.results[-1].outcome if s.index else None for s in self.steppers]
        return any(o != outs[0] for o in outs[1:])

    def step(self):
        """Step every era."""
        self._each(lambda s: s.step())

    def back(self):
        """Step every era back."""
        self._each(lambda s: s.back())

    def reset(self):
        """Every era back to step 0."""
        self._each(lambda s: s.reset())

    def goto(self, index):
        """Every era to ``index`` steps done."""
        self._each(lambda s: s.goto(index))

    def _each(self, fn):
        self.status.value = f"step {self.index}/{len(self.steppers[0].playback)} drawing…"
        for s in self.steppers:
            fn(s)
        self._sync()

    def _sync(self):
        i, n = self.index, len(self.steppers[0].playback)
        self._busy = True
        try:
            self.slider.value = i
            self.play.value = i
        finally:
            self._busy = False
        self.step_button.disabled = i >= n
        self.back_button.disabled = i == 0
        fs = self.steppers[0]._fs
        if i and self.differs:
            outs = " vs ".join(f"{s.era.name}: <code>{html.escape(format_outcome(s.results[-1].outcome))}</code>"
                               for s in self.steppers)
            self.verdict.value = (f"<div class='mm-differs' style='font-size:{fs};border:3px solid #D55E00;"
                                  f"padding:4px 8px'><b>the eras disagree</b> — {outs}</div>")
        else:
            self.verdict.value = ""
        tables = []
        for s in self.steppers:
            pages = s.results[-1].pages if s.index else {}
            tables.append(f"<div style='flex:1'><b style='font-size:{fs}'>era {s.era.name}</b>"
                          f"{pages_table(pages, None, fs)}</div>")
        self.table.value = f"<div style='display:flex;gap:16px'>{''.join(tables)}</div>"
        self.status.value = f"step {i}/{n} drawn"


def trace_html(log, font_size="13px"):
    """HTML of one step's trace: each user operation, then the kernel
    functions it ran with the decision each took.

    Parameters
    ----------
    log : list of (str, list of TraceEvent)
        As in :attr:`mmkit.viz.Playback.logs`.
    """
    if not log:
        return f"<div class='mm-trace' style='font-size:{font_size};color:#777'>no kernel activity</div>"
    rows = []
    shown = 0
    for op, events in log:
        if op:
            rows.append(f"<div style='margin-top:4px'><b><code>{html.escape(op)}</code></b></div>")
        if not events and op:
            rows.append("<div style='margin-left:1.2em;color:#777'>(no kernel decision: no fault)</div>")
        for e in events:
            shown += 1
            if shown > 60:
                continue
            decision = f" → <b>{html.escape(e.decision)}</b>" if e.decision else ""
            reason = html.escape(e.reason) if e.reason else ""
            rows.append(f"<div style='margin-left:1.2em'><code style='color:#0072B2'>{html.escape(e.func)}</code>"
                        f"{': ' + reason if reason else ''}{decision}</div>")
    if shown > 60:
        rows.append(f"<div style='margin-left:1.2em;color:#777'>… {shown - 60} more events</div>")
    return f"<div class='mm-trace' style='font-size:{font_size};line-height:1.35'>{''.join(rows)}</div>"


def pages_table(pages, prev=None, font_size="13px"):
    """HTML table of the watched pages' counters (PageInfo per label), headed
    in the kit's notation with its key underneath; cells that changed since
    ``prev`` (the previous step's pages) are bold on an orange background.
    The zero page is not counted: its row says "zero page" and shows no
    counters."""
    if not pages:
        return ""
    head = "".join(f"<th style='padding:2px 6px'>{h}</th>" for _, h, _ in _COLUMNS)
    rows = []
    zero = False
    for label, info in pages.items():
        old = (prev or {}).get(label)
        cells = []
        for attr, _, _ in _COLUMNS:
            text, o_text = _cell(info, attr), _cell(old, attr)
            changed = prev is not None and (info is None) != (old is None) or (
                prev is not None and info is not None and old is not None and text != o_text)
            style = "padding:2px 6px;text-align:center"
            if changed:
                style += ";background:#fbd9bf;font-weight:bold"
            cells.append(f"<td style='{style}'>{html.escape(text)}</td>")
        zero |= bool(info is not None and info.present and info.zero_page)
        rows.append(f"<tr><th style='text-align:left;padding:2px 6px'>{html.escape(label)}</th>{''.join(cells)}</tr>")
    key = key_for([s for _, _, syms in _COLUMNS for s in syms] + (["zero page"] if zero else []))
    return (f"<table class='mm-pages' style='border-collapse:collapse;font-size:{font_size}'>"
            f"<tr><th></th>{head}</tr>{''.join(rows)}</table>"
            f"<div class='mm-key' style='font-size:85%;color:#444'>{html.escape(key)}</div>")


def _cell(info, attr):
    """One cell of pages_table: ``W``/``RO``, ✔/·, a number, ``zero page``, or — (nothing there or not counted)."""
    if info is None or not info.present and attr != "present":
        return "—"
    v = getattr(info, attr)
    if info.zero_page and attr in _NOT_COUNTED:
        return "—"
    if info.zero_page and attr == "pfn":
        return "zero page"
    if attr == "writable":
        return "W" if v else "RO"
    return "—" if v is None else "✔" if v is True else "·" if v is False else str(v)
