"""Pictures of who uses a page: the rmap graph, its layout, drawing and export.

- :func:`rmap_graph` -- the kernel state as a networkx graph (processes,
  VMAs, PTEs, folios, anon_vmas, files, pins and pipes);
- :class:`Layout` -- layered positions that never move once given;
- :class:`GraphView` / :func:`draw` -- matplotlib drawing, fast redraws,
  changes since the previous step highlighted;
- :class:`Playback` -- a scenario run step by step with snapshots;
- :func:`save`, :func:`save_gif`, :func:`frame_strip` -- files for slides
  and handouts, and a static fallback for published notebooks.

Examples
--------
>>> from mmkit import Kernel
>>> from mmkit.viz import rmap_graph
>>> k = Kernel()
>>> p = k.spawn("parent")
>>> sorted(rmap_graph(k).nodes)
[('task', 1)]
"""

from .view import GraphView, draw
from .export import frame_strip, render_frames, save, save_gif
from .graph import GROUP_THRESHOLD, GraphDiff, folio_label, graph_diff, rmap_graph
from .layout import Layout
from .playback import Playback
from .style import PRESETS, Preset, preset

__all__ = ["rmap_graph", "graph_diff", "GraphDiff", "folio_label", "GROUP_THRESHOLD", "Layout",
           "GraphView", "draw", "Playback", "save", "save_gif", "frame_strip", "render_frames",
           "PRESETS", "Preset", "preset"]
