"""Files for slides and handouts: SVG / PNG / PDF, animated GIF, frame strips.

A frame strip is the static fallback of the stepper: every step of a
scenario in one image, which survives publishing a notebook without a
kernel.

Examples
--------
>>> import tempfile, pathlib
>>> from mmkit.viz import draw, save
>>> from mmkit import Kernel
>>> k = Kernel(); _ = k.spawn("init")
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> save(draw(k), d / "state.svg").read_text()[:5]
'<?xml'
"""

import io
import pathlib

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..errors import InvalidArgument
from .view import LEGEND, GraphView
from ..scenario import format_outcome
from .captions import step_text
from .playback import Playback

__all__ = ["save", "save_gif", "frame_strip", "render_frames", "step_title", "step_caption", "displayable"]

_FORMATS = ("png", "svg", "pdf")


def save(fig, path, dpi=None):
    """Save a figure (or anything with a ``.figure``: a GraphView, a Stepper)
    as PNG, SVG or PDF, chosen by the file suffix.

    Files are reproducible: no creation date is written.

    Parameters
    ----------
    fig : matplotlib.figure.Figure or GraphView or Stepper
    path : str or pathlib.Path
        Ends in ``.png``, ``.svg`` or ``.pdf``.
    dpi : int, optional
        For PNG; default the figure's own.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    InvalidArgument
        For another suffix.
    """
    path = pathlib.Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in _FORMATS:
        raise InvalidArgument(f"save() writes {', '.join(_FORMATS)}, not {path.suffix!r}")
    figure = _figure(fig)
    meta = {"svg": {"Date": None}, "pdf": {"CreationDate": None}, "png": {}}[fmt]
    figure.savefig(path, format=fmt, dpi=dpi or figure.dpi, metadata=meta, facecolor="white")
    return path


def step_title(pb):
    """``"step 2/5 · fork"`` (or the scenario's title before the first step)."""
    if pb.index == 0:
        return f"{pb.scenario.title or pb.scenario.name} · {len(pb)} steps"
    return f"step {pb.index}/{len(pb)} · {pb.step_name}"


def step_caption(pb):
    """The explanation of the last step, true for the era ``pb`` runs
    (:func:`mmkit.viz.captions.step_text`), and its outcome when it
    returned one."""
    if pb.index == 0:
        return ""
    r = pb.results[-1]
    text = step_text(pb, long=True)[0]
    if r.outcome is not None:
        text += f"  → {format_outcome(r.outcome)}"
    return text


def _frames(scenario, era, preset, graph_options, legend=True):
    """Yield a GraphView drawn at every state of a run of ``scenario``."""
    pb = scenario if isinstance(scenario, Playback) else Playback(scenario, era, graph_options)
    pb.reset()
    view = GraphView(preset, legend=legend)
    view.layout.plan(pb.all_graphs())
    view.fit()
    prev = None
    while True:
        g = pb.graph()
        view.draw(g, prev=prev, title=step_title(pb), caption=step_caption(pb), era=pb.era.name)
        yield pb, view
        if pb.index >= len(pb):
            break
        prev = g
        pb.step()


def render_frames(scenario, era=None, preset="compact", **graph_options):
    """Every state of a run of ``scenario`` (step 0 = before the first step)
    as (H, W, 4) uint8 arrays."""
    return [view.rgba() for _, view in _frames(scenario, era, preset, graph_options)]


def save_gif(scenario, path, era=None, preset="compact", fps=0.8, **graph_options):
    """An animated GIF of a whole run, one frame per step, with
    matplotlib's PillowWriter.

    Parameters
    ----------
    scenario : Scenario or str or Playback
    path : str or pathlib.Path
    era : str, optional
    preset : {"compact", "lecture"}
    fps : float
        Frames per second (0.8: a step every 1.25 s).

    Returns
    -------
    pathlib.Path
    """
    from matplotlib.animation import PillowWriter
    path = pathlib.Path(path)
    writer = None
    for pb, view in _frames(scenario, era, preset, graph_options):
        if writer is None:
            writer = PillowWriter(fps=fps)
            writer.setup(view.figure, str(path), dpi=view.figure.dpi)
        writer.grab_frame(facecolor="white")
        if pb.index == len(pb):
            writer.grab_frame(facecolor="white")    # hold the last frame a little longer
    writer.finish()
    return path


def frame_strip(scenario, era=None, preset="compact", cols=2, **graph_options):
    """Every step of a run side by side in one Figure (a static fallback).

    Parameters
    ----------
    scenario : Scenario or str or Playback
    era : str, optional
    preset : {"compact", "lecture"}
    cols : int
        Frames per row.

    Returns
    -------
    matplotlib.figure.Figure
        Raster frames, each titled and captioned as in the stepper; the key
        is drawn once, under the last frame, and explains every symbol any
        frame draws.
    """
    if not isinstance(cols, int) or cols < 1:
        raise InvalidArgument(f"cols must be a positive int, not {cols!r}")
    frames = []
    key = None
    used = set()
    for pb, view in _frames(scenario, era, preset, graph_options):
        frames.append(view.rgba())
        used.update(view.legend_entries)
        dpi = view.figure.dpi
        key_px = int(round(view.preset.legend_h * dpi))
    if key_px:
        # one key for the strip: every symbol some frame draws
        view._set_legend(tuple(s for s in LEGEND if s in used))
        view.canvas.draw()
        key = view.rgba()[-key_px:]
    frames = [f[:-key_px] if key_px else f for f in frames]
    h, w = frames[0].shape[:2]
    rows = -(-len(frames) // cols)
    pad = 6
    H = rows * (h + pad) + (key.shape[0] if key is not None else 0)
    W = cols * (w + pad)
    canvas = np.full((H, W, 4), 255, np.uint8)
    for i, f in enumerate(frames):
        r, c = divmod(i, cols)
        canvas[r * (h + pad):r * (h + pad) + h, c * (w + pad):c * (w + pad) + w] = f
        canvas[r * (h + pad) + h:r * (h + pad) + h + 2, c * (w + pad):c * (w + pad) + w, :3] = 180
    if key is not None:
        canvas[H - key.shape[0]:, :key.shape[1]] = key
    fig = Figure(figsize=(W / dpi, H / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_axes([0, 0, 1, 1])
    ax.imshow(canvas, interpolation="nearest")
    ax.axis("off")
    return displayable(fig)


def displayable(fig):
    """Give ``fig`` a ``_repr_png_`` so that a notebook shows it even when
    pyplot (and its inline backend) was never imported; returns ``fig``."""
    def _repr_png_():
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=fig.dpi, facecolor="white")
        return buf.getvalue()
    fig._repr_png_ = _repr_png_
    return fig


def _figure(obj):
    if isinstance(obj, Figure):
        return obj
    fig = getattr(obj, "figure", None)
    if isinstance(fig, Figure):
        return fig
    view = getattr(obj, "view", None)
    if view is not None and isinstance(getattr(view, "figure", None), Figure):
        return view.figure
    raise InvalidArgument(f"save() needs a matplotlib Figure (or a GraphView / Stepper), not {type(obj).__name__}")
