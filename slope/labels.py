"""Placing point labels where they cover no other label, point or line.

matplotlib draws a text where it is told, however crowded. :class:`LabelPlacer`
tries a few places around each point, nearest first, measuring each with the
figure's renderer against what is already drawn (texts, markers, lines and
error bars), and takes the first that covers nothing, else the one that covers
least; a label pushed far off gets a thin leader line to its point. Every
label it places becomes an obstacle for the next one.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

LABEL_GAP = 5  # points between a point (or its error bar) and its label
LEADER_FROM = 2 * LABEL_GAP  # points: a label farther off gets a leader line
LEADER = {"arrowstyle": "-", "color": "#aaaaaa", "linewidth": 0.6, "shrinkB": 4}


class LabelPlacer:
    """Labels the points of one axes, each clear of what is drawn before it.

    Make it after everything but the labels is drawn, and before the legend,
    which matplotlib then places clear of the labels.
    """

    def __init__(self, ax: Any) -> None:
        self.ax = ax
        self.renderer = ax.figure.canvas.get_renderer()
        self.blocked = obstacles(ax, self.renderer)

    def place(self, text: str, xy: tuple, spread: float = 0.0, **style: Any) -> Any:
        """Annotate ``xy`` with ``text``, clear of its error bar of ``spread``."""
        probe = self.ax.annotate(text, xy, (0, 0), textcoords="offset points", **style)
        bar = _bar_points(self.ax, xy[1], spread, self.renderer)
        dx, dy, ha, va = _free_spot(probe, bar, self.blocked, self.renderer)
        probe.remove()
        far = abs(dy) > LEADER_FROM
        label = self.ax.annotate(
            text,
            xy,
            (dx, dy),
            textcoords="offset points",
            ha=ha,
            va=va,
            arrowprops=LEADER if far else None,
            **style,
        )
        _block(label, far, self.blocked, self.renderer)
        return label


def _free_spot(probe, bar: float, blocked: dict[str, list], renderer) -> tuple:
    """The first place for ``probe`` that covers nothing, else the least."""
    inside = probe.axes.get_window_extent(renderer)
    costs = []
    for order, spot in enumerate(_label_spots(bar)):
        dx, dy, ha, va = spot
        probe.xyann = (dx, dy)
        probe.set(ha=ha, va=va)
        box = probe.get_window_extent(renderer).padded(2)
        costs.append((cover(box, inside, blocked), order, spot))
        if costs[-1][0] == 0:
            break
    return min(costs)[2]


def _block(label, far: bool, blocked: dict[str, list], renderer) -> None:
    """Keep later labels off ``label``, and off its leader line."""
    from matplotlib.path import Path as Line

    box = label.get_window_extent(renderer)
    blocked["texts"].append(box)
    if far:
        point = label.axes.transData.transform(label.xy)
        blocked["lines"].append(Line([point, ((box.x0 + box.x1) / 2, box.y0)]))
        blocked["lines"].append(Line([point, ((box.x0 + box.x1) / 2, box.y1)]))


def _label_spots(bar: float) -> list[tuple[float, float, str, str]]:
    """Places to try for a label, nearest first, as offsets in points.

    ``bar`` is how far the error bar reaches above and below the point; the
    places beside the point keep ``LABEL_GAP`` clear of it sideways, the
    places above and below it clear its caps.
    """
    gap = LABEL_GAP
    spots = [
        (gap, gap, "left", "bottom"),
        (gap, -gap, "left", "top"),
        (gap + 1, 0, "left", "center"),
        (-gap, gap, "right", "bottom"),
        (-gap, -gap, "right", "top"),
        (-gap - 1, 0, "right", "center"),
        (0, bar + 2, "center", "bottom"),
        (0, -bar - 2, "center", "top"),
    ]
    for reach in (2.5, 4, 6, 8):
        up = max(reach * gap, bar + 2)
        spots += [
            (gap, up, "left", "bottom"),
            (gap, -up, "left", "top"),
            (-gap, up, "right", "bottom"),
            (-gap, -up, "right", "top"),
            (0, up + bar, "center", "bottom"),
            (0, -up - bar, "center", "top"),
        ]
    return spots


def _bar_points(ax, y: float, spread: float, renderer) -> float:
    """How far, in points, an error bar of ``spread`` at ``y`` (or a marker) reaches."""
    low, high = ax.transData.transform([(0, y), (0, y + spread)])
    return max(abs(high[1] - low[1]) / renderer.points_to_pixels(1), 4.0)


def obstacles(ax, renderer) -> dict[str, list]:
    """What a label should not cover, in pixels: texts, points and lines.

    Lines are the drawn ones (baseline, frontier, trend) and the error bars;
    markers without a line (caps, hover targets) are not obstacles.
    """
    from matplotlib.collections import LineCollection, PathCollection
    from matplotlib.transforms import Bbox

    blocked = {
        "texts": [text.get_window_extent(renderer) for text in ax.texts],
        "points": [],
        "lines": [
            line.get_transform().transform_path(line.get_path())
            for line in ax.lines
            if line.get_linestyle() not in ("None", "none", "", " ")
        ],
    }
    for artist in ax.collections:
        if isinstance(artist, LineCollection):
            to_pixels = artist.get_transform()
            blocked["lines"] += [
                to_pixels.transform_path(p) for p in artist.get_paths()
            ]
        elif isinstance(artist, PathCollection) and len(artist.get_offsets()):
            size = float(np.max(artist.get_sizes()))
            half = math.sqrt(size) * renderer.points_to_pixels(1) / 2
            centres = artist.get_offset_transform().transform(artist.get_offsets())
            blocked["points"] += [
                Bbox.from_bounds(x - half, y - half, 2 * half, 2 * half)
                for x, y in centres
            ]
    return blocked


def cover(box, inside, blocked: dict[str, list]) -> float:
    """How badly a label's box sits: out of the axes, on texts, points, lines.

    A label on a label is the worst, as neither can be read; one across a
    line can still be.
    """
    out = not (
        inside.x0 <= box.x0
        and box.x1 <= inside.x1
        and inside.y0 <= box.y0
        and box.y1 <= inside.y1
    )
    return (
        100 * out
        + 30 * sum(box.overlaps(other) for other in blocked.get("texts", []))
        + 10 * sum(box.overlaps(other) for other in blocked.get("points", []))
        + 2
        * sum(
            line.intersects_bbox(box, filled=False) for line in blocked.get("lines", [])
        )
    )
