"""Widgets as static HTML, for the book (``make book``, ``book/build.py``).

A page without a kernel cannot run a widget: a Stepper would show only its
first frame.  Here a widget is drawn once per step, with the widget's own
methods (``goto(i)``, as the slide decks do), and each drawing is turned
into plain HTML: its images (the PNG of the frame), its explanation, trace
and page table; buttons, sliders and drop-downs are left out.  The frames
go into one ``<div class="mm-frames">`` that ``book/book.js`` (a few lines
of plain JavaScript) steps through; without JavaScript every frame shows,
one under the other.

:func:`install` runs in the kernel that executes a notebook for the book:
it makes IPython display every widget this way and, after each cell,
appends the folded solution of every exercise the cell created, marked so
that the student build can drop it.

>>> from mmkit.widgets import Stepper
>>> html = frames_html(Stepper("fork"), eras=["6.18"])
>>> html.count('class="mm-frame"') == len(Stepper("fork").playback) + 1
True
"""

import base64
import html as _html

__all__ = ["snapshot_html", "frames_html", "static_bundle", "live_html", "install", "SOLUTION_MARK"]

#: output metadata key marking what only the instructor build shows
SOLUTION_MARK = "mmkit_book_solution"

_SKIP = ("Button", "IntSlider", "FloatSlider", "Play", "Dropdown", "ToggleButtons", "Checkbox", "Text",
         "IntText", "FloatText", "SelectionSlider", "RadioButtons", "Select", "SelectMultiple", "ToggleButton",
         "Textarea", "BoundedIntText", "BoundedFloatText", "IntRangeSlider", "FloatRangeSlider", "Combobox")


def _output_html(out):
    """One captured output (an ipywidgets Output's entry) as HTML."""
    data = out.get("data", {})
    if out.get("output_type") == "stream":
        return f"<pre>{_html.escape(out.get('text', ''))}</pre>"
    if "text/html" in data:
        return data["text/html"]
    if "image/png" in data:
        return f'<img alt="figure" src="data:image/png;base64,{data["image/png"]}">'
    if "text/plain" in data:
        return f"<pre>{_html.escape(data['text/plain'])}</pre>"
    return ""


def snapshot_html(w):
    """The current state of widget ``w`` (and its children) as static HTML:
    what a reader sees, without the controls."""
    import ipywidgets as W
    if isinstance(w, W.Image):
        if not w.value:
            return ""
        fmt = w.format or "png"
        b64 = base64.b64encode(w.value).decode("ascii")
        return f'<img class="mm-frame-img" alt="figure" src="data:image/{fmt};base64,{b64}">'
    if isinstance(w, (W.HTML, W.HTMLMath)):
        return f"<div>{w.value}</div>" if w.value else ""
    if isinstance(w, W.Label):
        cls = " ".join(w._dom_classes)
        return f'<div class="{_html.escape(cls)}">{_html.escape(w.value)}</div>' if w.value else ""
    if isinstance(w, W.Output):
        return "".join(_output_html(o) for o in w.outputs)
    if isinstance(w, W.Box):
        if getattr(w.layout, "display", None) == "none":
            return ""
        inner = [snapshot_html(c) for c in w.children]
        inner = [s for s in inner if s]
        if not inner:
            return ""
        kind = "row" if isinstance(w, W.HBox) else "col"
        return f'<div class="mm-static-{kind}">{"".join(inner)}</div>'
    if type(w).__name__ in _SKIP or isinstance(w, W.Widget):
        return ""
    return ""


def _frames_container(frames, title, interactive_note=None):
    """``frames``: [(era name, step, html)]."""
    n = max(step for _, step, _ in frames)
    items = "".join(f'<div class="mm-frame" data-step="{i}" data-era="{_html.escape(era)}">{f}</div>'
                    for era, i, f in frames)
    note = f'<div class="mm-frames-note">{_html.escape(interactive_note)}</div>' if interactive_note else ""
    return (f'<div class="mm-frames" data-steps="{n}" tabindex="0" aria-label="{_html.escape(title)}">'
            f'<div class="mm-frames-title">{_html.escape(title)}</div>{note}{items}</div>')


#: the eras a Stepper's frames are drawn in besides its own: the book has no
#: era drop-down to rerun it, so the pre-PageAnonExclusive era the notebooks
#: contrast with 6.18 is drawn ahead (the book's era switch)
BOOK_ERAS = ("6.18", "5.7")


def frames_html(widget, eras=None):
    """Every step of a Stepper or Compare (step 0 to the end) as one frame
    sequence; a Stepper also in ``eras`` (default: its own era, then the
    others of :data:`BOOK_ERAS`).  The widget is left as it was."""
    from .widgets import Compare, Stepper
    frames = []
    if isinstance(widget, Compare):
        first = widget.steppers[0]
        n = len(first.playback)
        title = (f"{first.scenario.title or first.scenario.name}: eras "
                 f"{' vs '.join(s.era.name for s in widget.steppers)}, side by side")
        parts = [widget.children[2], widget.verdict, widget.table]
        at = widget.index
        try:
            for i in range(n + 1):
                widget.goto(i)
                frames.append(("", i, "".join(snapshot_html(p) for p in parts)))
        finally:
            widget.goto(at)
        return _frames_container(frames, title)
    if not isinstance(widget, Stepper):
        raise TypeError(f"frames_html() draws a Stepper or Compare, not {type(widget).__name__}")
    own_era = widget.era
    own = own_era.name
    if eras is None:
        eras = [own] + [e for e in BOOK_ERAS if e != own]
    n = len(widget.playback)
    title = f"{widget.scenario.title or widget.scenario.name}"
    skip = (widget.controls, widget.status, widget.header)
    parts = [c for c in widget.children if all(c is not x for x in skip)]
    at = widget.index
    try:
        for era in eras:
            widget.set_era(own_era if era == own else era)
            for i in range(n + 1):
                widget.goto(i)
                frames.append((widget.era.name, i, "".join(snapshot_html(p) for p in parts)))
    finally:
        widget.set_era(own_era)
        widget.goto(at)
    return _frames_container(frames, title)


def static_bundle(widget, include=None, exclude=None):
    """IPython mimebundle for ``widget`` in a book: frames for a Stepper or
    Compare, a snapshot (marked as such) for any other widget."""
    from .widgets import Compare, Stepper
    if isinstance(widget, (Stepper, Compare)):
        body = frames_html(widget)
    else:
        snap = snapshot_html(widget)
        body = (f'<div class="mm-snapshot"><div class="mm-frames-note">A snapshot: in Jupyter this is an '
                f"interactive widget.</div>{snap}</div>")
    return {"text/html": body, "text/plain": f"<{type(widget).__name__}: static in the book>"}


def live_html(result):
    """A live cell's result in a book: as in a notebook, plus which machine
    ran it (a book outlives the machine it was built on)."""
    import datetime
    import platform
    body = result._repr_html_()
    if getattr(result, "ran", False):
        when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
        body += (f'<div class="mm-live-where">run on Linux {_html.escape(platform.release())} '
                 f"({_html.escape(platform.machine())}, {when}) while this book was built</div>")
    return body


def _has_solution(obj):
    """An exercise of the kit: an mmkit object (not a class or module) with a ``solution()`` method."""
    t = type(obj)
    return (t.__module__.startswith("mmkit.") and not isinstance(obj, type)
            and callable(getattr(t, "solution", None)))


def _solution_outputs(obj):
    """The folded solution ``obj.solution()`` displays, captured (empty if it has none)."""
    from IPython.utils.capture import capture_output
    fn = getattr(obj, "solution", None)
    if not callable(fn):
        return []
    try:
        with capture_output(stdout=False, stderr=False, display=True) as cap:
            fn()
    except Exception:                   # release mode on, or a question without a solution
        return []
    return cap.outputs


def install(solutions=True):
    """Set up the running IPython kernel for the book: widgets display as
    static HTML, and (``solutions=True``) every exercise a cell creates is
    followed by its folded solution, in an output marked
    :data:`SOLUTION_MARK` (the student build leaves those out)."""
    import ipywidgets as W
    from IPython import get_ipython
    from IPython.display import display
    ip = get_ipython()
    ip.display_formatter.mimebundle_formatter.for_type(W.Widget, static_bundle)
    try:
        from .notebook import LiveResult
        ip.display_formatter.formatters["text/html"].for_type(LiveResult, live_html)
    except ImportError:
        pass
    if not solutions:
        return
    seen = set()

    def after(result=None):
        for name, obj in list(ip.user_ns.items()):
            if name.startswith("_") or id(obj) in seen or not _has_solution(obj):
                continue
            seen.add(id(obj))
            for out in _solution_outputs(obj):
                display(dict(out.data), raw=True, metadata={SOLUTION_MARK: name})
    ip.events.register("post_run_cell", after)
