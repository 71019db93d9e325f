"""The learning-rate plot, and the arithmetic behind it.

Choices, so that the numbers in the report can be checked by hand:

- The *frontier* marks the attempts that beat every earlier score strictly;
  the first score is a record. Missing scores never are.
- The *learning rate* is the least-squares slope of the primary metric against
  time, in metric units per week, fitted over every attempt that ran ``ok``
  and has a finite score. The baseline is included (it is the history's first
  point); no attempt is left out as an outlier, so that the number cannot be
  tuned by choosing what to drop. Fewer than two points, or all of them at
  the same instant, give NaN. The sign is the metric's: for a
  lower-is-better metric, a negative rate is progress.
- The *recent rate* is the same slope over the last RECENT_DAYS days, up to
  the latest scored attempt, so that a plateau after an early leap shows:
  the whole history's fit keeps rising long after the scores stopped. It is
  NaN where the history is no longer than that (the learning rate says it all)
  or the window holds fewer than two times.
- The *effort rate* is the number of attempts divided by the weeks between
  the first and the last; a span shorter than one week counts as one week, so
  an afternoon of five attempts reads "5 per week", not thousands.

The figure is drawn on a bare :class:`matplotlib.figure.Figure` (no pyplot, so
no display and no global figure list) in a seaborn theme. Attempts that ran
without a score are red crosses in a strip under the scores, never among
them; attempts with no date (and pending ones) are not on the time axis, and
the caption names those without a date. Labels are placed one by one, each
where it covers the fewest labels, points and lines, measured with the
figure's renderer. Every attempt on the time axis gets an invisible marker
with the SVG id ``slope-point-<row>``; :func:`save_plot` puts each attempt's
tooltip text in a ``<title>`` there, so the SVG shows it on hover without any
script.

matplotlib and seaborn are imported by the drawing functions only, so that the
report's kernel, which needs the arithmetic, starts without them.
"""

from __future__ import annotations

import html
import logging
import math
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

logger = logging.getLogger(__name__)

WEEK = pd.Timedelta(weeks=1)
FIGSIZE = (12, 6.75)
DPI = 150
LABEL_ALL_UP_TO = 20
LABEL_CHARS = 40
LABEL_SIZE = 7  # points
LABEL_GAP = 5  # points between a point (or its error bar) and its label
LEADER_FROM = 2 * LABEL_GAP  # points: a label farther off gets a leader line
LEADER = {"arrowstyle": "-", "color": "#aaaaaa", "linewidth": 0.6, "shrinkB": 4}
CAPTION_ITEMS = 6
CAPTION_WIDTH = 170
POINT_ID = "slope-point-{}"
CROSS_LEVELS = 4  # rows of crosses in the strip under the data
CROSS_APART = 1 / 25  # of the time span: closer crosses go one row up
STRIP_ROW = 0.2  # inches per row of crosses
SCORED = "ok"
RECENT_DAYS = 14

COLORS = {
    "attempt": "#4c72b0",
    "record": "#dd8452",
    "baseline": "#555555",
    "trend": "#55a868",
    "unscored": "#c44e52",
}


def frontier(values: Iterable[float], greater_is_better: bool = True) -> list[bool]:
    """Say which values beat every earlier one: the attempts that set a record.

    Parameters
    ----------
    values
        Scores in date order; NaN for an attempt without a score.
    greater_is_better
        The metric's direction.

    Returns
    -------
    list of bool
        True where the value is finite and strictly better than all the
        finite values before it.
    """
    records, best = [], math.nan
    for value in _floats(values):
        better = math.isfinite(value) and (
            math.isnan(best) or (value > best if greater_is_better else value < best)
        )
        records.append(better)
        best = value if better else best
    return records


def best_so_far(values: Iterable[float], greater_is_better: bool = True) -> np.ndarray:
    """Return the best finite value up to each position (NaN before the first)."""
    values = _floats(values)
    out, best = [], math.nan
    for value, record in zip(values, frontier(values, greater_is_better), strict=True):
        best = value if record else best
        out.append(best)
    return np.array(out, dtype=float)


def learning_rate(dates: Sequence, values: Iterable[float]) -> float:
    """Return the least-squares slope of ``values`` over ``dates``, per week.

    Pass the scored attempts only; pairs with a NaN value or a missing date
    are left out. NaN when fewer than two points remain or when they all
    share one instant.
    """
    return _slope(*_scored_weeks(dates, values))


def recent_rate(
    dates: Sequence, values: Iterable[float], days: float = RECENT_DAYS
) -> float:
    """Return the learning rate over the last ``days`` days of scored attempts.

    The window ends at the latest attempt with a score. NaN when the scored
    history spans no more than ``days``, or as :func:`learning_rate` gives.
    """
    weeks, y = _scored_weeks(dates, values)
    window = days / 7
    if len(y) < 2 or np.ptp(weeks) <= window:
        return math.nan
    recent = weeks >= weeks.max() - window
    return _slope(weeks[recent], y[recent])


def _scored_weeks(dates: Sequence, values: Iterable[float]) -> tuple[np.ndarray, ...]:
    """Weeks since the first date, and values, where both are known."""
    weeks = _weeks(dates)
    y = np.array(list(_floats(values)), dtype=float)
    keep = np.isfinite(weeks) & np.isfinite(y)
    return weeks[keep], y[keep]


def _slope(weeks: np.ndarray, y: np.ndarray) -> float:
    """The least-squares slope of y over weeks; NaN under two distinct times."""
    if len(y) < 2 or np.ptp(weeks) == 0:
        return math.nan
    dx = weeks - weeks.mean()
    slope = float((dx * (y - y.mean())).sum() / (dx * dx).sum())
    # a flat history gives rounding noise (1e-32), which would print as a rate
    noise = 1e-12 * max(float(np.abs(y).max()), 1.0) / float(np.ptp(weeks))
    return 0.0 if abs(slope) < noise else slope


def effort_rate(dates: Sequence) -> float:
    """Return attempts per week: their count over their span, at least a week."""
    weeks = _weeks(dates)
    weeks = weeks[np.isfinite(weeks)]
    if len(weeks) == 0:
        return 0.0
    return len(weeks) / max(float(np.ptp(weeks)), 1.0)


def scored_attempts(progress: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Return the rows that ran ``ok`` and have a finite primary score."""
    if metric not in progress or progress.empty:
        return progress.iloc[0:0]
    score = pd.to_numeric(progress[metric], errors="coerce")
    keep = (progress["status"] == SCORED) & np.isfinite(score.to_numpy(float))
    return progress[keep.to_numpy(bool)]


def plot_learning_rate(
    progress: pd.DataFrame,
    metric: str,
    greater_is_better: bool = True,
    baseline: str | None = None,
    *,
    timezone: str = "UTC",
) -> Figure:
    """Draw the team's progress: one point per attempt over time.

    Parameters
    ----------
    progress
        The progress table, one row per attempt in date order.
    metric
        The primary score's column.
    greater_is_better
        The metric's direction; the frontier steps up or down accordingly.
    baseline
        The baseline attempt's id, drawn as a dashed line when it has a score.
    timezone
        The zone the date axis is shown in.

    Returns
    -------
    matplotlib.figure.Figure
        A slide-sized figure; save it with :func:`save_plot`.
    """
    import seaborn as sns
    from matplotlib.figure import Figure

    data = _plot_frame(progress, metric, greater_is_better, timezone)
    ok = data[data["ok"]]
    placed = data[data["placed"]]
    crossed = placed[~placed["ok"]]
    rate = learning_rate(ok["date"], ok["score"])
    recent = recent_rate(ok["date"], ok["score"])

    with sns.axes_style("whitegrid"), sns.plotting_context("notebook"):
        fig = Figure(figsize=FIGSIZE, dpi=DPI)
        ax, strip = _add_axes(fig, crossed)
        _draw_baseline(ax, data, metric, baseline)
        _draw_frontier(ax, ok, placed["when"].max())
        _draw_points(ax, ok)
        _draw_trend(ax, ok, rate)
        _format_axes(ax, strip, data, metric, greater_is_better, timezone)
        _label_points(ax, ok)
        _draw_legend(ax)
        _draw_unscored(strip, crossed)
        _draw_hover_targets(ax, strip, placed)
        _write_caption(strip or ax, data)
        _write_titles(ax, data, metric, greater_is_better, rate, recent)
    return fig


def point_tooltips(
    progress: pd.DataFrame, metric: str, *, timezone: str = "UTC"
) -> dict[str, str]:
    """Return each attempt's hover text by SVG id.

    Its lines: id, date (and author, where known), score, status unless
    ``ok``, how it differs from the best attempt before it, and the notes.
    """
    when = _local_times(progress["date"], timezone)
    tips = {}
    for row, (stamp, (_, attempt)) in enumerate(
        zip(when, progress.iterrows(), strict=True)
    ):
        lines = [str(attempt["attempt"]), _format_time(stamp) + _by(attempt)]
        lines.append(f"{metric}: {_format_score(attempt, metric)}")
        if attempt.get("status") != SCORED:
            lines.append(f"status: {attempt.get('status')}")
        lines += _changes_lines(attempt.get("changes"))
        notes = attempt.get("notes")
        if isinstance(notes, str) and notes.strip():
            lines.append(notes.strip())
        tips[POINT_ID.format(row)] = "\n".join(lines)
    return tips


def save_plot(
    fig: Figure,
    reports_dir: str | Path,
    tooltips: Mapping[str, str] | None = None,
) -> tuple[Path, Path]:
    """Write ``learning_rate.png`` and ``learning_rate.svg`` into ``reports_dir``.

    ``tooltips`` (from :func:`point_tooltips`) become ``<title>`` elements in
    the SVG, shown by a browser on hover.

    Returns
    -------
    tuple of Path
        The PNG's path and the SVG's path.
    """
    folder = Path(reports_dir)
    folder.mkdir(parents=True, exist_ok=True)
    png, svg = folder / "learning_rate.png", folder / "learning_rate.svg"

    fig.savefig(png, dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    svg.write_text(svg_text(fig, tooltips), encoding="utf-8")
    logger.info("wrote %s and %s", png, svg)
    return png, svg


def svg_text(fig: Figure, tooltips: Mapping[str, str] | None = None) -> str:
    """Render ``fig`` as SVG text with a ``<title>`` in each tooltip's group."""
    import io

    import matplotlib as mpl

    buffer = io.StringIO()
    with mpl.rc_context({"svg.hashsalt": "slope", "svg.fonttype": "path"}):
        fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buffer.getvalue()
    for gid, tip in (tooltips or {}).items():
        opening = f'<g id="{gid}">'
        text = text.replace(
            opening,
            f'<g id="{gid}" class="slope-point"><title>{html.escape(tip)}</title>',
            1,
        )
    return text


def _floats(values: Iterable[float]) -> list[float]:
    return [float(v) if v is not None and not pd.isna(v) else math.nan for v in values]


def _weeks(dates: Sequence) -> np.ndarray:
    stamps = pd.to_datetime(pd.Series(list(dates), dtype=object), utc=True)
    if stamps.empty or stamps.isna().all():
        return np.full(len(stamps), np.nan)
    return ((stamps - stamps.min()) / WEEK).to_numpy(dtype=float, na_value=np.nan)


def _local_times(dates: pd.Series, timezone: str) -> pd.Series:
    stamps = pd.to_datetime(pd.Series(list(dates), dtype=object), utc=True)
    return stamps.dt.tz_convert(timezone).dt.tz_localize(None)


def _format_time(stamp: pd.Timestamp) -> str:
    return "no date" if pd.isna(stamp) else stamp.strftime("%Y-%m-%d %H:%M")


def _by(attempt: pd.Series) -> str:
    author = attempt.get("author")
    return f" by {author}" if isinstance(author, str) and author else ""


def _changes_lines(changes: object) -> list[str]:
    """The changes text, one change a line under its reference."""
    if not isinstance(changes, str) or not changes:
        return []
    if not changes.startswith("vs ") or ": " not in changes:
        return [changes]
    reference, items = changes.split(": ", 1)
    return [f"{reference}:", *(f"  {item}" for item in items.split("; "))]


def _format_score(attempt: pd.Series, metric: str) -> str:
    value = pd.to_numeric(attempt.get(metric), errors="coerce")
    if pd.isna(value):
        return "no score"
    spread = pd.to_numeric(attempt.get(f"{metric}_std"), errors="coerce")
    return f"{value:.4g}" + ("" if pd.isna(spread) else f" ± {spread:.2g}")


def _plot_frame(
    progress: pd.DataFrame, metric: str, greater_is_better: bool, timezone: str
) -> pd.DataFrame:
    import matplotlib.dates as mdates

    n = len(progress)
    score = pd.to_numeric(progress.get(metric, pd.Series([np.nan] * n)), "coerce")
    std_col = progress.get(f"{metric}_std", pd.Series([np.nan] * n))
    data = pd.DataFrame(
        {
            "row": np.arange(n),
            "attempt": progress["attempt"].astype(str).to_numpy(),
            "status": progress["status"].astype(str).to_numpy(),
            "date": pd.to_datetime(progress["date"], utc=True).to_numpy(),
            "when": mdates.date2num(_local_times(progress["date"], timezone)),
            "score": score.to_numpy(dtype=float),
            "std": pd.to_numeric(std_col, errors="coerce").to_numpy(dtype=float),
        }
    )
    data["ok"] = (data["status"] == SCORED) & np.isfinite(data["score"])
    data["score"] = data["score"].where(data["ok"])
    data["record"] = frontier(data["score"], greater_is_better)
    data["best"] = best_so_far(data["score"], greater_is_better)
    # an attempt without a date has no place in time; a pending one has not run
    data["placed"] = np.isfinite(data["when"]) & (data["status"] != "pending")
    data["cross_level"] = _cross_levels(
        data["when"].where(data["placed"]), data["placed"] & ~data["ok"]
    )
    return data


def _cross_levels(when: pd.Series, crossed: pd.Series) -> np.ndarray:
    """Rows of the crosses in the strip: one up where dates nearly meet.

    Crosses closer than ``CROSS_APART`` of the time axis's span would touch,
    or their labels would, so each goes into the lowest row free of near ones.
    """
    levels = np.zeros(len(when), dtype=int)
    span = float(when.max() - when.min()) if when.notna().any() else 0.0
    near = max(span * CROSS_APART, 1e-9)
    for index in np.flatnonzero(crossed.to_numpy(bool)):
        taken = {
            levels[other]
            for other in np.flatnonzero(crossed.to_numpy(bool)[:index])
            if abs(when.iloc[index] - when.iloc[other]) < near
        }
        free = [level for level in range(CROSS_LEVELS) if level not in taken]
        levels[index] = free[0] if free else CROSS_LEVELS - 1
    return levels


def _add_axes(fig: Figure, crossed: pd.DataFrame):
    """The data's axes and, when attempts went unscored, a strip under them.

    The strip keeps the red crosses out of the scores' range, so that they
    never read as scores nor cover a point, the baseline or its label.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)  # a renderer, to measure labels before saving
    if crossed.empty:
        return fig.add_subplot(), None
    rows = int(crossed["cross_level"].max()) + 1
    grid = fig.add_gridspec(
        2, 1, height_ratios=[FIGSIZE[1] * 0.7, STRIP_ROW * rows + 0.1], hspace=0.04
    )
    ax = fig.add_subplot(grid[0])
    return ax, fig.add_subplot(grid[1], sharex=ax)


def _draw_baseline(ax, data: pd.DataFrame, metric: str, baseline: str | None) -> None:
    row = data[(data["attempt"] == baseline) & data["ok"]]
    if baseline is None or row.empty:
        return
    value = float(row["score"].iloc[0])
    ax.axhline(
        value,
        color=COLORS["baseline"],
        linestyle="--",
        linewidth=1.2,
        label=f"baseline {_short(baseline)}: {value:.4g}",
        zorder=1,
    )
    ax.annotate(
        f"baseline {value:.4g}",
        (1, value),
        xycoords=ax.get_yaxis_transform(),
        xytext=(-4, 3),
        textcoords="offset points",
        ha="right",
        va="bottom",
        fontsize=8,
        color=COLORS["baseline"],
    )


def _draw_frontier(ax, ok: pd.DataFrame, last_when) -> None:
    if ok.empty:
        return
    x = np.append(ok["when"].to_numpy(), last_when)
    y = np.append(ok["best"].to_numpy(), ok["best"].iloc[-1])
    ax.step(
        x,
        y,
        where="post",
        color=COLORS["record"],
        linewidth=1.6,
        alpha=0.8,
        label="best so far",
        zorder=2,
    )


def _draw_points(ax, ok: pd.DataFrame) -> None:
    import seaborn as sns

    spread = ok[np.isfinite(ok["std"])]
    if not spread.empty:
        ax.errorbar(
            spread["when"],
            spread["score"],
            yerr=spread["std"],
            fmt="none",
            ecolor="#8c8c8c",
            elinewidth=1,
            capsize=3,
            zorder=2,
            label="CV spread (± std)",
        )
    for kind, part in (("attempt", ok[~ok["record"]]), ("record", ok[ok["record"]])):
        if part.empty:
            continue
        sns.scatterplot(
            data=part,
            x="when",
            y="score",
            ax=ax,
            color=COLORS[kind],
            s=60 if kind == "record" else 40,
            edgecolor="white",
            zorder=4,
            label="new record" if kind == "record" else "attempt",
        )


def _label_points(ax, ok: pd.DataFrame) -> None:
    """Name each point; past ``LABEL_ALL_UP_TO`` points, number them instead.

    Numbers are rows of the progress table (``#1`` is its first row); the
    best attempt keeps its name either way. A label takes the first of a few
    places around its point that covers no other label, point, line or error
    bar, else the place that covers least; a far place gets a leader line.
    """
    if ok.empty:
        return
    every = len(ok) <= LABEL_ALL_UP_TO
    best = ok["score"].eq(ok["best"].iloc[-1]) & ok["record"]
    renderer = ax.figure.canvas.get_renderer()
    blocked = _obstacles(ax, renderer)
    for point, is_best in zip(ok.itertuples(), best, strict=True):
        number = f"#{point.row + 1}"
        if every:
            text = _short(point.attempt)
        else:
            text = f"{number} {_short(point.attempt)}" if is_best else number
        style = {
            "textcoords": "offset points",
            "fontsize": LABEL_SIZE if every else LABEL_SIZE - 0.5,
            "color": "#333333",
            "zorder": 5,
        }
        probe = ax.annotate(text, (point.when, point.score), (0, 0), **style)
        bar = _bar_points(ax, point, renderer)
        dx, dy, ha, va = _free_spot(probe, bar, blocked, renderer)
        probe.remove()
        far = abs(dy) > LEADER_FROM
        label = ax.annotate(
            text,
            (point.when, point.score),
            (dx, dy),
            ha=ha,
            va=va,
            arrowprops=LEADER if far else None,
            **style,
        )
        _block(label, far, blocked, renderer)


def _free_spot(probe, bar: float, blocked: dict[str, list], renderer) -> tuple:
    """The first place for ``probe`` that covers nothing, else the least."""
    inside = probe.axes.get_window_extent(renderer)
    costs = []
    for order, spot in enumerate(_label_spots(bar)):
        dx, dy, ha, va = spot
        probe.xyann = (dx, dy)
        probe.set(ha=ha, va=va)
        box = probe.get_window_extent(renderer).padded(2)
        costs.append((_cover(box, inside, blocked), order, spot))
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


def _bar_points(ax, point, renderer) -> float:
    """How far, in points, the point's error bar (or its marker) reaches."""
    spread = point.std if np.isfinite(point.std) else 0.0
    low, high = ax.transData.transform([(0, point.score), (0, point.score + spread)])
    return max(abs(high[1] - low[1]) / renderer.points_to_pixels(1), 4.0)


def _obstacles(ax, renderer) -> dict[str, list]:
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


def _cover(box, inside, blocked: dict[str, list]) -> float:
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


def _draw_trend(ax, ok: pd.DataFrame, rate: float) -> None:
    if not math.isfinite(rate):
        return
    weeks = _weeks(ok["date"])
    intercept = ok["score"].mean() - rate * weeks.mean()
    ends = [0, -1]
    ax.plot(
        ok["when"].to_numpy()[ends],
        intercept + rate * weeks[ends],
        color=COLORS["trend"],
        linewidth=1.4,
        linestyle="-.",
        label=f"trend: {rate:+.3g} per week",
        zorder=2,
    )


def _draw_unscored(strip, crossed: pd.DataFrame) -> None:
    """Cross the unscored attempts in their strip, one row up where they meet."""
    if strip is None:
        return
    strip.set_ylim(0, int(crossed["cross_level"].max()) + 1)
    strip.set_yticks([])
    strip.grid(axis="y", visible=False)
    strip.set_facecolor("#fbf3f3")
    strip.set_ylabel(
        "not\nscored",
        rotation=0,
        ha="right",
        va="center",
        fontsize=8,
        color=COLORS["unscored"],
    )
    strip.scatter(
        crossed["when"],
        crossed["cross_level"] + 0.5,
        marker="x",
        s=40,
        linewidths=2,
        color=COLORS["unscored"],
        zorder=5,
        label="not scored (failed, invalid, …)",
    )
    _number_crosses(strip, crossed)


def _number_crosses(strip, crossed: pd.DataFrame) -> None:
    """Number each cross on its right, where that covers no number nor cross.

    The caption names the unscored attempts, so a number with no room is
    left out rather than stacked on another.
    """
    from matplotlib.transforms import Bbox

    renderer = strip.figure.canvas.get_renderer()
    inside = strip.get_window_extent(renderer)
    half = 4 * renderer.points_to_pixels(1)
    centres = strip.transData.transform(
        np.column_stack([crossed["when"], crossed["cross_level"] + 0.5])
    )
    taken = [
        Bbox.from_bounds(x - half, y - half, 2 * half, 2 * half) for x, y in centres
    ]
    for point in crossed.itertuples():
        label = strip.annotate(
            f"#{point.row + 1}",
            (point.when, point.cross_level + 0.5),
            xytext=(6, 0),
            textcoords="offset points",
            va="center",
            fontsize=6.5,
            color=COLORS["unscored"],
        )
        box = label.get_window_extent(renderer)
        if _cover(box, inside, {"texts": taken}):
            label.remove()
        else:
            taken.append(box)


def _draw_hover_targets(ax, strip, placed: pd.DataFrame) -> None:
    """An invisible marker per attempt on the time axis, for its tooltip."""
    for point in placed.itertuples():
        if point.ok:
            axes, y = ax, point.score
        else:
            axes, y = strip, point.cross_level + 0.5
        axes.plot(
            [point.when],
            [y],
            marker="o",
            markersize=11,
            alpha=0.0,
            linestyle="none",
            gid=POINT_ID.format(point.row),
            zorder=6,
        )


def _format_axes(
    ax,
    strip,
    data: pd.DataFrame,
    metric: str,
    greater_is_better: bool,
    timezone: str,
) -> None:
    import matplotlib.dates as mdates

    when = data.loc[data["placed"], "when"]
    ax.xaxis_date()
    locator = mdates.AutoDateLocator(minticks=3, maxticks=9)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(
        mdates.ConciseDateFormatter(locator, offset_formats=_offset_formats(when))
    )
    ax.set_xlim(*_time_limits(when))
    if not data["ok"].any():
        ax.set_ylim(0, 1)
        ax.text(
            0.5,
            0.5,
            "no scored attempt yet",
            transform=ax.transAxes,
            ha="center",
            va="center",
            fontsize=14,
            color="#888888",
        )
    ax.margins(y=0.12)
    arrow = "higher is better" if greater_is_better else "lower is better"
    ax.set_ylabel(f"{metric} ({arrow})")
    if strip is not None:
        ax.tick_params(axis="x", labelbottom=False)
        ax.set_xlabel("")
    (strip or ax).set_xlabel(f"date ({timezone})")


def _draw_legend(ax) -> None:
    # after the labels, so that "best" finds the emptiest corner
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best", fontsize=8, framealpha=0.9)


def _offset_formats(when: pd.Series) -> list[str]:
    """The date axis's corner label: the span of the attempts, not a tick's month.

    ConciseDateFormatter names the last tick's month, which can be past the
    last attempt ("2026-Dec" over a November); the span's own text replaces
    each level's format (strftime leaves text without a ``%`` as it is).
    """
    import matplotlib.dates as mdates

    if when.empty:
        return ["", "%Y", "%Y-%b", "%Y-%b-%d", "%Y-%b-%d", "%Y-%b-%d %H:%M"]
    first, last = mdates.num2date(when.min()), mdates.num2date(when.max())
    if first.date() == last.date():
        span = f"{first.day} {first:%b %Y}"
    elif (first.year, first.month) == (last.year, last.month):
        span = f"{first:%b %Y}"
    elif first.year == last.year:
        span = f"{first:%b}–{last:%b %Y}"
    else:
        span = f"{first:%b %Y}–{last:%b %Y}"
    return ["", span, span, span, span, span]


def _time_limits(when: pd.Series) -> tuple[float, float]:
    """Pad the span by 4%, and by at least half an hour (days are units here)."""
    import matplotlib.dates as mdates

    first, last = when.min(), when.max()
    if not np.isfinite(first):
        first = last = mdates.date2num(pd.Timestamp("2000-01-01"))
    pad = max((last - first) * 0.04, 1 / 48)
    return first - pad, last + pad


def _write_titles(
    ax,
    data: pd.DataFrame,
    metric: str,
    greater_is_better: bool,
    rate: float,
    recent: float,
) -> None:
    if math.isfinite(rate):
        good = (rate > 0) == greater_is_better or rate == 0
        verdict = "improving" if good else "getting worse"
        title = f"Learning rate: {rate:+.3g} {metric} per week ({verdict})"
    else:
        title = "Learning rate: needs two scored attempts at different times"
    ax.set_title(title, loc="left", fontsize=14, fontweight="bold")
    n_ok = int(data["ok"].sum())
    counts = f"{n_ok} scored of {len(data)} attempts"
    if math.isfinite(recent):
        counts += f"\nlast {RECENT_DAYS} days: {recent:+.3g} per week"
    ax.set_title(
        counts,
        loc="right",
        fontsize=9,
        color="#555555",
    )


def _write_caption(bottom, data: pd.DataFrame) -> None:
    """List the unscored attempts under the date axis, and those with no date."""
    crossed = data[data["placed"] & ~data["ok"]]
    undated = data[~np.isfinite(data["when"])]
    parts = [_caption("Not scored", crossed), _caption("No date, not shown", undated)]
    text = "\n".join(part for part in parts if part)
    if not text:
        return
    bottom.annotate(
        text,
        (0, 0),
        xycoords="axes fraction",
        xytext=(0, -34),
        textcoords="offset points",
        fontsize=7.5,
        va="top",
        color=COLORS["unscored"],
    )


def _caption(heading: str, attempts: pd.DataFrame) -> str:
    if attempts.empty:
        return ""
    items = [
        f"#{p.row + 1} {_short(p.attempt)} ({p.status})"
        for p in attempts.head(CAPTION_ITEMS).itertuples()
    ]
    more = len(attempts) - CAPTION_ITEMS
    tail = f"; and {more} more" if more > 0 else ""
    return textwrap.fill(f"{heading}: " + "; ".join(items) + tail, CAPTION_WIDTH)


def _short(attempt: str) -> str:
    attempt = str(attempt)
    if len(attempt) <= LABEL_CHARS:
        return attempt
    return attempt[: LABEL_CHARS - 1] + "…"
