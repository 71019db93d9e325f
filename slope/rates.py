"""The arithmetic of progress: records, best so far, learning and effort rates.

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

Dates may be anything :func:`pandas.to_datetime` reads; they are placed on
one UTC timeline. These functions need pandas and numpy only, so that the
report's kernel computes the headline without importing matplotlib.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

WEEK = pd.Timedelta(weeks=1)
SCORED = "ok"
RECENT_DAYS = 14


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
    for value in as_floats(values):
        better = math.isfinite(value) and (
            math.isnan(best) or (value > best if greater_is_better else value < best)
        )
        records.append(better)
        best = value if better else best
    return records


def best_so_far(values: Iterable[float], greater_is_better: bool = True) -> np.ndarray:
    """Return the best finite value up to each position (NaN before the first)."""
    values = as_floats(values)
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
    weeks = weeks_since_start(dates)
    y = np.array(list(as_floats(values)), dtype=float)
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
    weeks = weeks_since_start(dates)
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


def as_floats(values: Iterable[float]) -> list[float]:
    """The values as floats, NaN where one is missing."""
    return [float(v) if v is not None and not pd.isna(v) else math.nan for v in values]


def weeks_since_start(dates: Sequence) -> np.ndarray:
    """Weeks from the earliest date to each one; NaN where a date is missing."""
    stamps = pd.to_datetime(pd.Series(list(dates), dtype=object), utc=True)
    if stamps.empty or stamps.isna().all():
        return np.full(len(stamps), np.nan)
    return ((stamps - stamps.min()) / WEEK).to_numpy(dtype=float, na_value=np.nan)
