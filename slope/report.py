"""The shareable report: ``reports/index.html``, the plot, and the run pages.

``index.html`` is the report notebook (``notebooks/report.ipynb``) executed by
papermill and converted by nbconvert without its code cells; the functions
here make the pieces it displays. Every user text (ids, notes, parameter
values, errors) is escaped with :func:`html.escape` where it enters a page,
and the plot is an inline SVG whose points carry hover titles, no script.
When a digest of every input matches the one ``index.html`` records, neither
the plot nor the report notebook runs again ("report unchanged").
"""

from __future__ import annotations

import hashlib
import html
import json
import logging
import math
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pandas as pd

from slope.exceptions import ReportError
from slope.htmlpage import (
    RUN_PAGES,
    badge,
    engine_stamp,
    make_exporter,
    page_html,
    read_stamp,
    safe_id,
)
from slope.rates import (
    RECENT_DAYS,
    best_so_far,
    effort_rate,
    frontier,
    learning_rate,
    recent_rate,
    scored_attempts,
)
from slope.runpages import render_run_pages

logger = logging.getLogger(__name__)


REPORT_NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "report.ipynb"


KNOWN_COLUMNS = {
    "attempt",
    "date",
    "notebook",
    "status",
    "duration_s",
    "notes",
    "error",
    "run_page",
    "changes",
    "author",
}


PLOT_FILES = ("learning_rate.png", "learning_rate.svg")


def render_report(
    project: Any,
    progress: pd.DataFrame,
    *,
    report_notebook: str | Path | None = None,
    kernel_name: str = "python3",
) -> Path:
    """Write the plot, one page per run and ``reports/index.html``.

    Parameters
    ----------
    project
        A :class:`slope.project.Project` (uses ``root``, ``metric``,
        ``greater_is_better``, ``baseline``, ``timezone``, ``runs_dir`` and
        ``reports_dir``).
    progress
        The progress table, one row per attempt in date order.
    report_notebook
        The report notebook to execute; unless given, the project's
        ``notebooks/report.ipynb``, else the one in slope's repository.
    kernel_name
        The kernel papermill starts for the report notebook.

    Returns
    -------
    Path
        ``reports/index.html``.

    Raises
    ------
    ReportError
        The report notebook failed; ``reports/report.ipynb`` keeps its output.
    """
    reports = Path(project.reports_dir)
    reports.mkdir(parents=True, exist_ok=True)
    pages = render_run_pages(project, progress)

    if report_notebook is None:
        report_notebook = find_report_notebook(project)
    index = reports / "index.html"
    stamp = {"inputs": _index_inputs(project, progress, report_notebook, pages)}
    if read_stamp(index) == stamp and _plot_files_exist(reports):
        logger.info("report unchanged: %s", index)
        return index

    _render_plot(project, progress)
    return render_index(project, progress, report_notebook, kernel_name, stamp)


def find_report_notebook(project: Any) -> Path:
    """The project's ``notebooks/report.ipynb``, else the one beside slope's source."""
    own = Path(project.root) / "notebooks" / "report.ipynb"
    if own.is_file():
        return own
    if REPORT_NOTEBOOK.is_file():
        return REPORT_NOTEBOOK
    raise ReportError(
        f"{own} does not exist; copy notebooks/report.ipynb from slope's repository "
        "into the project's notebooks/ folder"
    )


def render_index(
    project: Any,
    progress: pd.DataFrame,
    report_notebook: str | Path | None = None,
    kernel_name: str = "python3",
    stamp: Mapping[str, Any] | None = None,
) -> Path:
    """Execute the report notebook and convert it, without code, to index.html.

    ``stamp`` (from :func:`render_report`) is recorded in the page, so that
    the next build can tell that nothing changed.
    """
    import papermill as pm

    source = Path(report_notebook or REPORT_NOTEBOOK)
    reports = Path(project.reports_dir)
    kept = reports / "report.ipynb"
    with tempfile.TemporaryDirectory(prefix="slope-report-") as tmp:
        table = Path(tmp) / "progress.pkl"
        progress.to_pickle(table)
        parameters = {
            "project_dir": str(project.root),
            "progress_path": str(table),
            "metric": project.metric,
            "greater_is_better": bool(project.greater_is_better),
            "baseline": project.baseline or "",
            "timezone": project.timezone,
        }
        try:
            pm.execute_notebook(
                source,
                kept,
                parameters=parameters,
                kernel_name=kernel_name,
                cwd=str(reports),
                progress_bar=False,
                log_output=False,
                shutdown_kernel="immediate",
                # The kernel's own start-up warnings would land in the user's
                # terminal; the report's errors come back through papermill.
                extra_arguments=["--IPKernelApp.log_level=ERROR"],
            )
        except pm.PapermillExecutionError as err:
            raise ReportError(
                f"the report notebook {source} failed at cell {err.cell_index}: "
                f"{err.ename}: {err.evalue}; {kept} keeps its output"
            ) from err

    import nbformat

    body, _ = make_exporter(exclude_input=True).from_notebook_node(
        nbformat.read(kept, as_version=4)
    )
    index = reports / "index.html"
    title = f"slope · {project.metric} progress"
    index.write_text(page_html(title, body, home=True, stamp=stamp), encoding="utf-8")
    logger.info("wrote %s", index)
    return index


def read_progress(path: str | Path) -> pd.DataFrame:
    """Read a progress table from a pickle (from render_report) or progress.csv."""
    path = Path(path)
    if path.suffix == ".pkl":
        return pd.read_pickle(path)
    progress = pd.read_csv(path, keep_default_na=False, na_values={"": None})
    progress["date"] = pd.to_datetime(progress["date"], utc=True, format="ISO8601")
    for column in ("notes", "error", "run_page", "changes", "author"):
        if column in progress:
            progress[column] = progress[column].fillna("").astype(str)
    return progress


def title_html(name: str, metric: str, greater_is_better: bool = True) -> str:
    """Return the report's heading: the project's name and its metric."""
    direction = "higher" if greater_is_better else "lower"
    made = pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"<h1>Progress report: {html.escape(name)}</h1>"
        f"<p class='sub'>Primary metric <b>{html.escape(metric)}</b> "
        f"({direction} is better) · built {made} by slope</p>"
    )


def headline_html(
    progress: pd.DataFrame,
    metric: str,
    greater_is_better: bool = True,
    baseline: str | None = None,
) -> str:
    """Return the headline: attempts, people, days, effort rate, best, learning rate.

    The people card appears where the table has an ``author`` column.
    """
    dates = pd.to_datetime(progress["date"], utc=True)
    ok = scored_attempts(progress, metric)
    span = (dates.max() - dates.min()) / pd.Timedelta(days=1)
    span = 0.0 if pd.isna(span) else span
    rate = learning_rate(ok["date"], ok[metric]) if len(ok) else math.nan
    recent = recent_rate(ok["date"], ok[metric]) if len(ok) else math.nan

    cards = [
        _card("attempts", f"{len(progress)}", _status_counts(progress)),
        *_people_card(progress),
        _card("days spanned", f"{span:.1f}" if span < 10 else f"{span:.0f}", ""),
        _card("effort rate", f"{effort_rate(dates):.1f}", "attempts per week"),
        _best_card(ok, metric, greater_is_better, baseline),
        _rate_card(rate, recent, metric, greater_is_better),
    ]
    return f"<div class='headline'>{''.join(cards)}</div>"


def plot_html(svg_path: str | Path) -> str:
    """Return the saved plot's SVG for inline use, with links to the files."""
    svg = Path(svg_path).read_text(encoding="utf-8")
    svg = svg[svg.index("<svg") :]
    links = (
        "<p class='files'>Download: <a href='learning_rate.png'>PNG</a> · "
        "<a href='learning_rate.svg'>SVG</a>. Hover a point for its notes.</p>"
    )
    return f"<figure class='plot'>{svg}</figure>{links}"


def table_html(
    progress: pd.DataFrame,
    metric: str,
    greater_is_better: bool = True,
    reports_dir: str | Path = ".",
    timezone: str = "UTC",
) -> str:
    """Return the progress table as HTML, each attempt linked to its run page."""
    scores = _score_columns(progress, metric)
    values = pd.to_numeric(progress.get(metric), errors="coerce")
    ok = (progress["status"] == "ok").to_numpy(bool)
    records = frontier(np.where(ok, values, np.nan), greater_is_better)
    by = ["author"] if "author" in progress else []
    head = ["#", "attempt", "date", *by, "status", metric, *scores, "seconds"]
    head += ["notes, and changes from the best attempt before"]
    rows = [
        _table_row(i, attempt, metric, scores, record, reports_dir, timezone)
        for i, ((_, attempt), record) in enumerate(
            zip(progress.iterrows(), records, strict=True)
        )
    ]
    # a score's name may break after an underscore, so that long names stay narrow
    header = "".join(
        f"<th>{html.escape(name).replace('_', '_<wbr>')}</th>" for name in head
    )
    return (
        "<div class='table-wrap'><table class='progress'>"
        f"<thead><tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody>"
        "</table></div>"
    )


def _card(label: str, value: str, detail: str) -> str:
    return (
        f"<div class='card'><div class='label'>{html.escape(label)}</div>"
        f"<div class='value'>{html.escape(value)}</div>"
        f"<div class='detail'>{html.escape(detail)}</div></div>"
    )


def _people_card(progress: pd.DataFrame) -> list[str]:
    from slope.changes import count_by_author

    if "author" not in progress:
        return []
    authors = progress["author"].fillna("").astype(str)
    counts = count_by_author(authors)
    detail = ", ".join(f"{name} {n}" for name, n in counts) or "no attempt committed"
    uncommitted = int((authors == "").sum())
    if counts and uncommitted:
        detail += f"; not yet committed {uncommitted}"
    return [_card("people", f"{len(counts)}", f"attempts each: {detail}")]


def _status_counts(progress: pd.DataFrame) -> str:
    counts = progress["status"].astype(str).value_counts()
    return ", ".join(f"{n} {status}" for status, n in counts.items())


def _best_card(
    ok: pd.DataFrame, metric: str, greater_is_better: bool, baseline: str | None
) -> str:
    if ok.empty:
        return _card(f"best {metric}", "–", "no scored attempt yet")
    values = ok[metric].astype(float)
    best = best_so_far(values, greater_is_better)[-1]
    who = str(ok["attempt"].iloc[int(np.flatnonzero(values.to_numpy() == best)[0])])
    base = ok.loc[ok["attempt"] == baseline, metric]
    if baseline and len(base):
        gain = best - float(base.iloc[0])
        detail = f"{who}; {gain:+.4g} against baseline {base.iloc[0]:.4g}"
    else:
        detail = f"{who}; no scored baseline"
    return _card(f"best {metric}", f"{best:.4g}", detail)


def _rate_card(rate: float, recent: float, metric: str, greater_is_better: bool) -> str:
    if not math.isfinite(rate):
        return _card("learning rate", "–", "needs two scored attempts")
    good = rate == 0 or (rate > 0) == greater_is_better
    verdict = "improving" if good else "getting worse"
    detail = f"{metric} per week, {verdict}"
    if math.isfinite(recent):
        detail += f"; last {RECENT_DAYS} days: {recent:+.3g}"
    return _card("learning rate", f"{rate:+.3g}", detail)


def _score_columns(progress: pd.DataFrame, metric: str) -> list[str]:
    skip = KNOWN_COLUMNS | {metric, f"{metric}_std"}
    return [
        column
        for column in progress.columns
        if column not in skip
        and not str(column).endswith("_std")
        and pd.api.types.is_numeric_dtype(progress[column])
    ]


def _table_row(
    i: int,
    attempt: pd.Series,
    metric: str,
    scores: list[str],
    record: bool,
    reports_dir: str | Path,
    timezone: str,
) -> str:
    name = str(attempt["attempt"])
    cells = [
        f"<td class='num'>{i + 1}</td>",
        f"<td class='attempt'>{_attempt_link(name, reports_dir)}</td>",
        f"<td class='date'>{html.escape(_local(attempt['date'], timezone))}</td>",
        *_author_cell(attempt),
        f"<td>{badge(str(attempt['status']))}</td>",
        f"<td class='num'>{_score_cell(attempt, metric)}{' ★' if record else ''}</td>",
        *(f"<td class='num'>{_number(attempt[c])}</td>" for c in scores),
        f"<td class='num'>{_number(attempt.get('duration_s'), '.1f')}</td>",
        # The error goes with the notes, the one wide column: a long message in
        # the status column made rows tall and the table wider than the page.
        f"<td class='notes'>{_error_hint(attempt)}<div class='note'>"
        f"{html.escape(str(attempt.get('notes') or ''))}</div>"
        f"{changes_html(attempt.get('changes'))}</td>",
    ]
    css = " class='record'" if record else ""
    return f"<tr{css}>{''.join(cells)}</tr>"


def _author_cell(attempt: pd.Series) -> list[str]:
    if "author" not in attempt.index:
        return []
    author = attempt.get("author")
    author = author if isinstance(author, str) and author else "–"
    return [f"<td class='author'>{html.escape(author)}</td>"]


def changes_html(text: Any) -> str:
    """Show a ``changes`` text: its reference, then one change a line."""
    from slope.changes import SEPARATOR

    if not isinstance(text, str) or not text:
        return ""
    if not text.startswith("vs ") or ": " not in text:
        return f"<div class='changes'>{html.escape(text)}</div>"
    reference, items = text[3:].split(": ", 1)
    lines = "".join(_change_item(item) for item in items.split(SEPARATOR))
    return f"<div class='changes'>vs {html.escape(reference)}:<ul>{lines}</ul></div>"


def _change_item(item: str) -> str:
    name, _, change = item.partition(": ")
    if not change:
        return f"<li>{html.escape(item)}</li>"
    return f"<li><code>{html.escape(name)}</code> {html.escape(change)}</li>"


def _attempt_link(name: str, reports_dir: str | Path) -> str:
    text = html.escape(name)
    page = Path(reports_dir) / RUN_PAGES / f"{name}.html"
    if not (safe_id(name) and page.is_file()):
        return text
    href = html.escape(f"{RUN_PAGES}/{quote(name)}.html", quote=True)
    return f"<a href='{href}'>{text}</a>"


def _error_hint(attempt: pd.Series) -> str:
    error = str(attempt.get("error") or "")
    return f"<div class='err'>{html.escape(error)}</div>" if error else ""


def _score_cell(attempt: pd.Series, metric: str) -> str:
    value = _number(attempt.get(metric))
    spread = pd.to_numeric(attempt.get(f"{metric}_std"), errors="coerce")
    if not value or pd.isna(spread):
        return value
    return f"{value} <small>± {spread:.2g}</small>"


def _number(value: Any, spec: str = ".4g") -> str:
    value = pd.to_numeric(value, errors="coerce")
    return "" if pd.isna(value) else format(float(value), spec)


def _local(value: Any, timezone: str) -> str:
    stamp = pd.to_datetime(value, utc=True)
    return (
        "" if pd.isna(stamp) else stamp.tz_convert(timezone).strftime("%Y-%m-%d %H:%M")
    )


def _index_inputs(
    project: Any, progress: pd.DataFrame, notebook: str | Path, pages: list[Path]
) -> str:
    """A digest of everything index.html and the plot are made from."""
    digest = hashlib.sha256()
    settings = [
        str(Path(project.root).resolve()),
        project.metric,
        bool(project.greater_is_better),
        project.baseline or "",
        project.timezone,
        sorted(page.name for page in pages),
        engine_stamp(),
    ]
    digest.update(json.dumps(settings, sort_keys=True).encode())
    digest.update(Path(notebook).read_bytes())
    digest.update(progress.to_csv(index=False).encode())
    return digest.hexdigest()


def _plot_files_exist(reports: Path) -> bool:
    return all((reports / name).is_file() for name in PLOT_FILES)


def _render_plot(project: Any, progress: pd.DataFrame) -> None:
    from slope.plot import plot_learning_rate, point_tooltips, save_plot

    fig = plot_learning_rate(
        progress,
        project.metric,
        project.greater_is_better,
        project.baseline,
        timezone=project.timezone,
    )
    tips = point_tooltips(progress, project.metric, timezone=project.timezone)
    save_plot(fig, project.reports_dir, tips)
