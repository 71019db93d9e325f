"""The learning-rate plot.

The numbers it shows (records, best so far, learning and recent rates) come
from :mod:`slope.rates`, where their definitions are written down.

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

matplotlib and seaborn are imported by the drawing functions only, so that
importing this module costs little.
"""

from __future__ import annotations

import html
import logging
import math
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from slope.labels import LabelPlacer, cover
from slope.rates import (
    RECENT_DAYS,
    SCORED,
    best_so_far,
    frontier,
    learning_rate,
    recent_rate,
    weeks_since_start,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

logger = logging.getLogger(__name__)

FIGSIZE = (12, 6.75)
DPI = 150
LABEL_ALL_UP_TO = 20
LABEL_CHARS = 40
LABEL_SIZE = 7  # points
CAPTION_ITEMS = 6
CAPTION_WIDTH = 170
POINT_ID = "slope-point-{}"
CROSS_LEVELS = 4  # rows of crosses in the strip under the data
CROSS_APART = 1 / 25  # of the time span: closer crosses go one row up
STRIP_ROW = 0.2  # inches per row of crosses

COLORS = {
    "attempt": "#4c72b0",
    "record": "#dd8452",
    "baseline": "#555555",
    "trend": "#55a868",
    "unscored": "#c44e52",
}


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
    times = when.to_numpy(dtype=float)
    rows = np.flatnonzero(crossed.to_numpy(bool))
    for position, index in enumerate(rows):
        taken = {
            levels[other]
            for other in rows[:position]
            if abs(times[index] - times[other]) < near
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
    placer = LabelPlacer(ax)
    for point, is_best in zip(ok.itertuples(), best, strict=True):
        number = f"#{point.row + 1}"
        if every:
            text = _short(point.attempt)
        else:
            text = f"{number} {_short(point.attempt)}" if is_best else number
        style = {
            "fontsize": LABEL_SIZE if every else LABEL_SIZE - 0.5,
            "color": "#333333",
            "zorder": 5,
        }
        spread = point.std if np.isfinite(point.std) else 0.0
        placer.place(text, (point.when, point.score), spread, **style)


def _draw_trend(ax, ok: pd.DataFrame, rate: float) -> None:
    if not math.isfinite(rate):
        return
    weeks = weeks_since_start(ok["date"])
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
        if cover(box, inside, {"texts": taken}):
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
