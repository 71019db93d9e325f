"""The rates, checked against values worked out by hand, and the plot."""

from __future__ import annotations

import math

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import LineCollection

from slope.plot import plot_learning_rate, point_tooltips, save_plot, svg_text
from slope.rates import (
    best_so_far,
    effort_rate,
    frontier,
    learning_rate,
    recent_rate,
    scored_attempts,
)

NAN = math.nan
START = pd.Timestamp("2026-01-05T09:00:00Z")


def weeks_apart(*weeks: float) -> list[pd.Timestamp]:
    return [START + pd.Timedelta(weeks=w) for w in weeks]


def make_progress(n: int, id_length: int = 40, failed_every: int = 6) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    dates = START + pd.to_timedelta(np.sort(rng.uniform(0, 90, n)), unit="D")
    status = ["failed" if i % failed_every == 3 else "ok" for i in range(n)]
    score = np.where(
        np.array(status) == "ok", np.linspace(0.5, 0.9, n) + rng.normal(0, 0.02, n), NAN
    )
    return pd.DataFrame(
        {
            "attempt": [f"{i:03d}-{'x' * id_length}"[:id_length] for i in range(n)],
            "date": dates,
            "notebook": "train.ipynb",
            "status": status,
            "accuracy": score,
            "accuracy_std": 0.01,
            "duration_s": 3.0,
            "notes": "<script>alert(1)</script>",
            "error": "",
            "run_page": "",
        }
    )


# -- frontier and best so far -------------------------------------------------


def test_frontier_higher_is_better():
    values = [0.5, 0.4, 0.6, 0.6, NAN, 0.7]
    assert frontier(values, greater_is_better=True) == [
        True,
        False,
        True,
        False,
        False,
        True,
    ]


def test_frontier_lower_is_better():
    values = [10.0, 12.0, 8.0, 8.0, NAN, -1.0]
    assert frontier(values, greater_is_better=False) == [
        True,
        False,
        True,
        False,
        False,
        True,
    ]


def test_frontier_starts_at_first_score_after_missing_ones():
    assert frontier([NAN, NAN, 0.0, -0.5]) == [False, False, True, False]


def test_best_so_far_steps_down_when_lower_is_better():
    best = best_so_far([3.0, 4.0, 2.0, NAN, 2.5, 0.0], greater_is_better=False)
    np.testing.assert_array_equal(best, [3.0, 3.0, 2.0, 2.0, 2.0, 0.0])
    assert np.all(np.diff(best) <= 0)


def test_best_so_far_is_nan_before_the_first_score():
    best = best_so_far([NAN, -0.2, -0.3, 0.1])
    assert math.isnan(best[0])
    np.testing.assert_array_equal(best[1:], [-0.2, -0.2, 0.1])


# -- learning rate ------------------------------------------------------------


def test_learning_rate_rising_by_a_tenth_a_week():
    assert learning_rate(weeks_apart(0, 1, 2), [0.5, 0.6, 0.7]) == pytest.approx(0.1)


def test_learning_rate_falling_loss():
    # Loss 9, 6, 3 over days 0, 3.5, 7: -6 per week.
    rate = learning_rate(weeks_apart(0, 0.5, 1), [9.0, 6.0, 3.0])
    assert rate == pytest.approx(-6.0)


def test_learning_rate_is_least_squares_not_endpoints():
    # x - mean = -1.5, -0.5, 0.5, 1.5; y - mean = -0.5, 0.5, -0.5, 0.5:
    # sum of products 1.0 over sum of squares 5.0 = 0.2 (the ends give 1/3).
    rate = learning_rate(weeks_apart(0, 1, 2, 3), [0.0, 1.0, 0.0, 1.0])
    assert rate == pytest.approx(0.2)


def test_learning_rate_skips_missing_scores():
    rate = learning_rate(weeks_apart(0, 1, 2), [1.0, NAN, -1.0])
    assert rate == pytest.approx(-1.0)


@pytest.mark.parametrize(
    ("dates", "values"),
    [
        ([], []),
        (weeks_apart(0), [0.5]),
        (weeks_apart(0, 1), [0.5, NAN]),
        (weeks_apart(0, 0), [0.5, 0.9]),
    ],
    ids=["none", "one", "one-scored", "same-instant"],
)
def test_learning_rate_undefined_is_nan(dates, values):
    assert math.isnan(learning_rate(dates, values))


# -- effort rate --------------------------------------------------------------


def test_recent_rate_shows_a_plateau_the_whole_fit_hides():
    dates = weeks_apart(0, 0.3, 1, 1.5, 2, 2.5, 3)
    scores = [0.5, 0.9, 0.91, 0.9, 0.91, 0.9, 0.91]

    assert learning_rate(dates, scores) > 0.05
    assert recent_rate(dates, scores) == pytest.approx(0.0, abs=0.01)


def test_recent_rate_fits_only_the_last_two_weeks():
    dates = weeks_apart(0, 1, 2, 3)
    assert recent_rate(dates, [0.0, 0.0, 0.1, 0.2]) == pytest.approx(0.1)


@pytest.mark.parametrize("span", [1, 2])
def test_recent_rate_is_nan_when_the_history_is_that_short(span):
    assert math.isnan(recent_rate(weeks_apart(0, span / 2, span), [0.1, 0.2, 0.3]))


def test_effort_rate_counts_attempts_per_week():
    assert effort_rate(weeks_apart(0, 0.5, 1, 1.5, 2)) == pytest.approx(2.5)


def test_effort_rate_counts_a_short_burst_as_one_week():
    same_day = [START, START + pd.Timedelta(hours=1), START + pd.Timedelta(hours=2)]
    assert effort_rate(same_day) == pytest.approx(3.0)
    assert effort_rate([]) == 0.0


def test_scored_attempts_keeps_ok_rows_with_a_score():
    progress = make_progress(8)
    progress.loc[0, "accuracy"] = NAN
    kept = scored_attempts(progress, "accuracy")
    assert list(kept.index) == [1, 2, 4, 5, 6, 7]


# -- the figure ---------------------------------------------------------------


def test_fifty_attempts_with_long_ids_are_plotted_and_saved(tmp_path):
    progress = make_progress(50, id_length=40)
    fig = plot_learning_rate(progress, "accuracy", True, progress["attempt"][0])
    png, svg = save_plot(fig, tmp_path, point_tooltips(progress, "accuracy"))

    assert png == tmp_path / "learning_rate.png"
    assert png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size > 50_000
    text = svg.read_text(encoding="utf-8")
    assert text.count('class="slope-point"') == 50
    assert "&lt;script&gt;" in text and "<script" not in text
    ax = fig.axes[0]
    assert len(ax.get_xticks()) <= 10
    assert ax.get_title(loc="left").startswith("Learning rate: +")


def test_lower_is_better_frontier_is_drawn_descending():
    progress = make_progress(12)
    progress["accuracy"] = -progress["accuracy"]
    fig = plot_learning_rate(progress, "accuracy", greater_is_better=False)
    step = [line for line in fig.axes[0].lines if line.get_label() == "best so far"]
    y = step[0].get_ydata()
    assert np.all(np.diff(y) <= 0) and y[-1] < y[0] < 0


@pytest.mark.parametrize("n_ok", [0, 1], ids=["no-ok-attempt", "one-ok-attempt"])
def test_few_scored_attempts_still_draw(tmp_path, n_ok):
    progress = make_progress(3)
    progress["status"] = ["ok"] * n_ok + ["failed"] * (3 - n_ok)
    fig = plot_learning_rate(progress, "accuracy", True, "000-x")
    png, _ = save_plot(fig, tmp_path)
    assert png.stat().st_size > 10_000
    assert "needs two scored attempts" in fig.axes[0].get_title(loc="left")


@pytest.mark.parametrize(
    "span",
    [pd.Timedelta(0), pd.Timedelta(hours=1), pd.Timedelta(days=365)],
    ids=["same-second", "an-hour", "a-year"],
)
def test_date_ticks_stay_few_whatever_the_span(span):
    progress = make_progress(20)
    progress["date"] = START + span * np.linspace(0, 1, 20)
    fig = plot_learning_rate(progress, "accuracy")
    svg_text(fig)  # draws, so the locator has run
    assert 2 <= len(fig.axes[0].get_xticks()) <= 10


def test_zero_and_negative_scores_are_inside_the_axes():
    progress = make_progress(6)
    progress["status"] = "ok"
    progress["accuracy"] = [-2.0, -1.0, 0.0, 0.5, -0.5, 0.0]
    fig = plot_learning_rate(progress, "accuracy")
    low, high = fig.axes[0].get_ylim()
    assert low < -2.0 and high > 0.5


def test_pending_attempt_without_a_date_is_left_out(tmp_path):
    progress = make_progress(5)
    progress.loc[4, ["status", "accuracy", "date"]] = ["pending", NAN, pd.NaT]
    fig = plot_learning_rate(progress, "accuracy")
    png, _ = save_plot(fig, tmp_path, point_tooltips(progress, "accuracy"))
    assert png.stat().st_size > 10_000
    assert "no date" in point_tooltips(progress, "accuracy")["slope-point-4"]


def test_tooltips_say_who_and_what_changed():
    progress = make_progress(2)
    progress["author"] = ["Ann", ""]
    progress["accuracy"] = [0.5, 0.75]
    progress["changes"] = [
        "first attempt",
        "vs 000-x: estimator: LogisticRegression → SVC; C: – → 10.0",
    ]

    tips = point_tooltips(progress, "accuracy")

    assert tips["slope-point-0"].splitlines()[1:4] == [
        f"{progress['date'][0]:%Y-%m-%d %H:%M} by Ann",
        "accuracy: 0.5 ± 0.01",
        "first attempt",
    ]
    assert (
        "\nvs 000-x:\n  estimator: LogisticRegression → SVC\n  C: – → 10.0\n"
        in (tips["slope-point-1"])
    )
    assert " by " not in tips["slope-point-1"]


def test_unscored_attempts_on_one_day_stack_their_crosses():
    progress = make_progress(6, failed_every=100)
    progress.loc[[1, 2, 3], "status"] = ["failed", "invalid", "timeout"]
    progress.loc[[1, 2, 3], "accuracy"] = NAN
    progress.loc[[2, 3], "date"] = progress.loc[1, "date"] + pd.Timedelta(minutes=5)

    fig = plot_learning_rate(progress, "accuracy")

    (heights,) = [c.get_offsets()[:, 1] for c in crosses(fig)]
    assert len(set(np.round(heights, 3))) == 3  # one above the other
    labels = [t for t in fig.axes[1].texts if t.get_text() in ("#2", "#3", "#4")]
    assert len({round(t.xy[1], 3) for t in labels}) == 3


def crosses(fig) -> list:
    return [
        artist
        for ax in fig.axes
        for artist in ax.collections
        if artist.get_label().startswith("not scored")
    ]


def renderer_of(fig):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig.draw_without_rendering()  # places the labels and ticks as saved
    return FigureCanvasAgg(fig).get_renderer()


def text_boxes(fig) -> dict[str, object]:
    """Each visible text of the axes (labels, numbers, baseline) by its text."""
    renderer = renderer_of(fig)
    return {
        text.get_text(): text.get_window_extent(renderer)
        for ax in fig.axes
        for text in ax.texts
        if text.get_visible() and text.get_text()
    }


def overlapping(boxes: dict[str, object]) -> list[tuple[str, str]]:
    names = sorted(boxes)
    return [
        (a, b)
        for i, a in enumerate(names)
        for b in names[i + 1 :]
        if boxes[a].overlaps(boxes[b])
    ]


def messy_progress() -> pd.DataFrame:
    """A baseline at the bottom, failures on two adjacent days, two undated."""
    progress = make_progress(26, id_length=24, failed_every=100)
    progress["date"] = START + pd.to_timedelta(np.arange(26) * 0.8, unit="D")
    progress["status"], progress["accuracy"] = "ok", np.linspace(0.5, 0.9, 26)
    failed = [8, 9, 10, 11]
    progress.loc[failed, ["status", "accuracy"]] = ["failed", NAN]
    progress.loc[[24, 25], ["status", "accuracy", "date"]] = ["invalid", NAN, pd.NaT]
    return progress


def test_unscored_crosses_sit_in_a_strip_under_the_data():
    progress = messy_progress()
    fig = plot_learning_rate(progress, "accuracy", True, progress["attempt"][0])

    data, strip = fig.axes
    renderer = renderer_of(fig)
    (drawn,) = crosses(fig)
    assert drawn.axes is strip and strip.get_ylabel() == "not\nscored"
    top = strip.transData.transform(drawn.get_offsets())[:, 1].max()
    assert top < data.get_window_extent(renderer).y0
    baseline = next(t for t in data.texts if t.get_text().startswith("baseline"))
    assert baseline.get_window_extent(renderer).y0 > top


def test_no_two_labels_overlap_where_attempts_crowd():
    progress = messy_progress()
    fig = plot_learning_rate(progress, "accuracy", True, progress["attempt"][0])

    boxes = text_boxes(fig)
    assert {"#9", "#10"} & set(boxes)  # crosses are numbered where there is room
    assert overlapping(boxes) == []


def test_labels_clear_the_error_bars():
    progress = make_progress(10, id_length=24, failed_every=100)
    progress["accuracy_std"] = 0.03
    fig = plot_learning_rate(progress, "accuracy")

    ax = fig.axes[0]
    renderer = renderer_of(fig)
    (bars,) = [c for c in ax.collections if isinstance(c, LineCollection)]
    paths = [bars.get_transform().transform_path(p) for p in bars.get_paths()]
    crossed = [
        text.get_text()
        for text in ax.texts
        if any(
            p.intersects_bbox(text.get_window_extent(renderer), False) for p in paths
        )
    ]
    assert crossed == []


def test_attempts_without_a_date_are_off_the_time_axis_and_in_the_caption():
    progress = messy_progress()
    progress.loc[25, "status"] = "pending"
    progress.loc[26] = progress.loc[23]
    progress.loc[26, ["attempt", "status", "accuracy"]] = [
        "099-planned",
        "pending",
        NAN,
    ]
    progress.loc[26, "date"] = progress["date"].max() + pd.Timedelta(days=30)
    fig = plot_learning_rate(progress, "accuracy")

    data = fig.axes[0]
    last = mdates.date2num(progress["date"][23].tz_localize(None))
    (step,) = [line for line in data.lines if line.get_label() == "best so far"]
    assert step.get_xdata()[-1] == pytest.approx(last)
    assert data.get_xlim()[1] < last + 2
    (drawn,) = crosses(fig)
    assert np.isfinite(drawn.get_offsets()).all() and len(drawn.get_offsets()) == 4
    caption = " ".join(t.get_text() for ax in fig.axes for t in ax.texts)
    assert "No date, not shown: #25 " in caption and "(invalid)" in caption
    assert "#26 " in caption and "(pending)" in caption


@pytest.mark.parametrize(
    ("first", "last", "offset"),
    [
        ("2026-11-02", "2026-11-29", "Nov 2026"),
        ("2026-11-20", "2026-12-09", "Nov–Dec 2026"),
        ("2026-12-20", "2027-01-09", "Dec 2026–Jan 2027"),
    ],
    ids=["one-month", "two-months", "two-years"],
)
def test_date_offset_names_the_span_of_the_attempts(first, last, offset):
    progress = make_progress(10, failed_every=100)
    progress["date"] = pd.date_range(first, last, periods=10, tz="UTC")
    fig = plot_learning_rate(progress, "accuracy")
    svg_text(fig)  # draws, so the formatter has run
    assert fig.axes[0].xaxis.get_major_formatter().get_offset() == offset
