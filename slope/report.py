"""The shareable report: ``reports/index.html``, the plot, one page per run.

``index.html`` is the report notebook (``notebooks/report.ipynb``) executed by
papermill and converted by nbconvert without its code cells. Run pages are
each run's executed notebook converted by nbconvert, under a header that shows
status, error, scores and parameters.

Offline and inert, by construction:

- nbconvert's ``basic`` template, which loads nothing (``lab`` loads require.js
  and MathJax from a CDN); the style is this module's small inline CSS, the
  plot is an inline SVG (hover titles, no script), images are ``data:`` URIs.
  LaTeX in markdown is therefore shown as written.
- Every user text (ids, notes, parameter values, errors) is escaped with
  :func:`html.escape` where it enters a page.
- A run's notebook is untrusted HTML: its converted body is sanitized with
  nh3 (ammonia's allow-list). Scripts, styles, iframes, forms, event
  attributes and inline styles go; an ``img`` keeps only a ``data:image/``
  source, so no output can load anything from the network; links keep
  http(s) targets (a click, not a load). Outputs whose only form is
  JavaScript or a widget are dropped before conversion, and SVG outputs are
  turned into ``data:`` images, which a browser never scripts.

Bounded and incremental, so that big runs stay quick:

- Before conversion every output is bounded: a long stream or ``text/plain``
  keeps its first and last lines around a "… N lines cut; the full output is
  in runs/<id>/notebook.ipynb …" mark, an HTML output is cut at a table row
  past ``HTML_CHARS`` (its open tags closed) with the same mark, and once a
  page holds ``PAGE_CHARS`` of output the remaining outputs are replaced by
  the mark. The executed notebook in ``runs/`` keeps everything.
- Each page records what it was built from in an HTML comment on its second
  line (``<!-- slope-page {...} -->``): for a run page the run's fingerprint,
  ended time and record digest, the notebook's size and time, and slope's
  version and renderer digest; for ``index.html`` a digest of every input.
  A page whose record matches is not written again, and when index.html
  matches, neither the plot nor the report notebook runs ("report
  unchanged").
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import logging
import math
import tempfile
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pandas as pd

from slope.exceptions import SlopeError
from slope.plot import (
    best_so_far,
    effort_rate,
    frontier,
    learning_rate,
    scored_attempts,
)

logger = logging.getLogger(__name__)

REPORT_NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "report.ipynb"
RUN_PAGES = "runs"
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
DROPPED_MIMETYPES = (
    "application/javascript",
    "application/vnd.jupyter.widget-view+json",
    "application/vnd.jupyter.widget-state+json",
)
HEAD_LINES = 100
TAIL_LINES = 60
TEXT_CHARS = 40_000
HTML_CHARS = 150_000
PAGE_CHARS = 6_000_000
TRACEBACK_FRAMES = 40
STAMP = "<!-- slope-page {} -->"
PLOT_FILES = ("learning_rate.png", "learning_rate.svg")


class ReportError(SlopeError):
    """The report notebook failed, or a page of the report cannot be written."""


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
    if _read_stamp(index) == stamp and _plot_files_exist(reports):
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


def render_run_pages(project: Any, progress: pd.DataFrame) -> list[Path]:
    """Write ``reports/runs/<id>.html`` for every attempt that has a notebook.

    A page built from the same run by the same slope is left as it is; a
    page of an attempt no longer in the table is removed.

    Returns
    -------
    list of Path
        Every run page, written now or kept.
    """
    exporter, pages = None, []
    for attempt in progress["attempt"].astype(str):
        notebook = Path(project.runs_dir) / attempt / "notebook.ipynb"
        if not (_safe_id(attempt) and notebook.is_file()):
            continue
        page = _run_page_path(project, attempt)
        if _read_stamp(page) == _run_stamp(project, attempt):
            pages.append(page)
            continue
        exporter = exporter or _exporter(exclude_input=False)
        pages.append(render_run_page(project, attempt, exporter))
    _remove_stale_pages(project, pages)
    return pages


def render_run_page(project: Any, attempt: str, exporter: Any = None) -> Path:
    """Write one run's page: error first, then status, scores, parameters, notebook.

    Returns
    -------
    Path
        ``reports/runs/<attempt>.html``.
    """
    folder = Path(project.runs_dir) / attempt
    stamp = _run_stamp(project, attempt)
    run = _read_run(folder / "run.json")
    notebook = _read_notebook(folder / "notebook.ipynb")
    bound_outputs(notebook, f"runs/{attempt}/notebook.ipynb")
    anchors = _anchor_cells(notebook)
    where = _cell_link(notebook, _failing_cell(notebook, run), anchors)

    parts = [
        _run_header(attempt, run),
        _error_box(run, where),
        _run_facts(run, project.metric),
        "<h2>Notebook</h2>",
        _notebook_html(notebook, folder, exporter),
    ]
    page = _run_page_path(project, attempt)
    page.parent.mkdir(parents=True, exist_ok=True)
    text = _page(f"{attempt} · slope run", "".join(parts), stamp=stamp)
    page.write_text(text, "utf-8")
    logger.debug("wrote %s", page)
    return page


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
            )
        except pm.PapermillExecutionError as err:
            raise ReportError(
                f"the report notebook {source} failed at cell {err.cell_index}: "
                f"{err.ename}: {err.evalue}; {kept} keeps its output"
            ) from err

    import nbformat

    body, _ = _exporter(exclude_input=True).from_notebook_node(
        nbformat.read(kept, as_version=4)
    )
    index = reports / "index.html"
    title = f"slope · {project.metric} progress"
    index.write_text(_page(title, body, home=True, stamp=stamp), encoding="utf-8")
    logger.info("wrote %s", index)
    return index


# -- pieces the report notebook displays ------------------------------------


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

    cards = [
        _card("attempts", f"{len(progress)}", _status_counts(progress)),
        *_people_card(progress),
        _card("days spanned", f"{span:.1f}" if span < 10 else f"{span:.0f}", ""),
        _card("effort rate", f"{effort_rate(dates):.1f}", "attempts per week"),
        _best_card(ok, metric, greater_is_better, baseline),
        _rate_card(rate, metric, greater_is_better),
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


def sanitize(fragment: str) -> str:
    """Make notebook HTML inert: no script, style, frame, or network load."""
    import nh3

    attributes = {key: set(value) for key, value in nh3.ALLOWED_ATTRIBUTES.items()}
    attributes["*"] = attributes.get("*", set()) | {"class", "id", "title"}
    return nh3.clean(
        fragment,
        attributes=attributes,
        url_schemes={"http", "https", "mailto", "data"},
        attribute_filter=_filter_url,
    )


def bound_outputs(notebook: Any, full: str) -> Any:
    """Bound every output of ``notebook`` in place, each cut marked in the output.

    Consecutive stream outputs of one cell are merged first. Long streams,
    ``text/plain`` and tracebacks keep their head and tail lines; HTML is cut
    at a table row; once ``PAGE_CHARS`` of output are kept, later outputs
    give way to a mark. ``full`` names where the whole output stays.

    Returns
    -------
    The same notebook.
    """
    budget = PAGE_CHARS
    for cell in notebook.cells:
        if len(cell.source) > TEXT_CHARS * 4:
            cell.source = _cut_text(cell.source, full, TEXT_CHARS * 4)
        if cell.get("cell_type") != "code" or not cell.get("outputs"):
            continue
        kept = []
        for output in _merge_streams(cell.outputs):
            _bound_output(output, full)
            size = _output_size(output)
            if size > budget:
                kept.append(_page_full_note(full))
                break
            budget -= size
            kept.append(output)
        cell.outputs = kept
    return notebook


# -- run pages ---------------------------------------------------------------


def _exporter(*, exclude_input: bool) -> Any:
    from nbconvert import HTMLExporter

    return HTMLExporter(
        template_name="basic",
        exclude_input=exclude_input,
        exclude_input_prompt=exclude_input,
        exclude_output_prompt=exclude_input,
    )


def _notebook_html(notebook: Any, folder: Path, exporter: Any) -> str:
    """The run's notebook as inert HTML; a note instead if it does not validate."""
    import nbformat

    try:
        body, _ = (exporter or _exporter(exclude_input=False)).from_notebook_node(
            _inert(notebook)
        )
    except nbformat.ValidationError as err:
        logger.warning("%s/notebook.ipynb is not a valid notebook: %s", folder, err)
        return (
            "<p class='err'>This notebook does not validate, so it is not shown: "
            f"{html.escape(str(err).splitlines()[0])}. Open "
            f"{html.escape(str(folder / 'notebook.ipynb'))} in JupyterLab.</p>"
        )
    return f"<div class='notebook'>{sanitize(body)}</div>"


def _read_notebook(path: Path) -> Any:
    """Read a run's notebook; its outputs' line lists joined before nbformat sees them.

    nbformat makes a node of every line of a multi-line output, which for a
    run that printed a million lines costs seconds; joined, it costs nothing.
    """
    import nbformat
    from nbformat.v4.nbjson import JSONReader

    raw = json.loads(path.read_text(encoding="utf-8"))
    if raw.get("nbformat") != 4:
        return nbformat.read(path, as_version=4)
    for cell in raw.get("cells", []):
        for output in cell.get("outputs", []):
            if isinstance(output.get("text"), list):
                output["text"] = "".join(output["text"])
            data = output.get("data") or {}
            for mimetype, value in data.items():
                if isinstance(value, list) and all(isinstance(v, str) for v in value):
                    data[mimetype] = "".join(value)
    return JSONReader().to_notebook(raw)  # the rest of what nbformat.read does


def _read_run(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        logger.warning("%s is not valid JSON (%s); its run page omits it", path, err)
        return {}


def _anchor_cells(notebook: Any) -> dict[int, str]:
    """Give every cell a stable id; return the HTML anchor of each cell index."""
    notebook.nbformat_minor = max(notebook.nbformat_minor, 5)
    anchors = {}
    for index, cell in enumerate(notebook.cells):
        cell["id"] = f"cell-{index}"
        anchors[index] = f"cell-id=cell-{index}"
    return anchors


def _failing_cell(notebook: Any, run: Mapping[str, Any]) -> int | None:
    """The cell holding an error output; else the index run.json names."""
    for index, cell in enumerate(notebook.cells):
        outputs = cell.get("outputs", [])
        if any(out.get("output_type") == "error" for out in outputs):
            return index
    cell = (run.get("error") or {}).get("cell")
    return cell if isinstance(cell, int) and 0 <= cell < len(notebook.cells) else None


def _inert(notebook: Any) -> Any:
    """Drop script-only outputs and turn SVG outputs into data: images."""
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            data = output.get("data")
            if not data:
                continue
            for mimetype in DROPPED_MIMETYPES:
                data.pop(mimetype, None)
            svg = data.pop("image/svg+xml", None)
            if svg and "image/png" not in data:
                encoded = base64.b64encode(svg.encode("utf-8")).decode("ascii")
                data["text/html"] = f"<img src='data:image/svg+xml;base64,{encoded}'>"
    return notebook


def _filter_url(element: str, attribute: str, value: str) -> str | None:
    if attribute not in {"src", "href", "srcset", "cite", "longdesc"}:
        return value
    is_data = value.strip().lower().startswith("data:")
    if element == "img" and attribute == "src":
        return value if value.strip().lower().startswith("data:image/") else None
    if element == "a" and attribute == "href":
        return None if is_data else value
    return None


def _run_header(attempt: str, run: Mapping[str, Any]) -> str:
    status = str(run.get("status", "unknown"))
    return (
        "<nav><a href='../index.html'>← progress report</a></nav>"
        f"<h1>{html.escape(attempt)} {_badge(status)}</h1>"
    )


def _cell_link(notebook: Any, failing: int | None, anchors: dict) -> str:
    """Link to the failing cell, named by its prompt as the page shows it."""
    if failing is None:
        return ""
    count = notebook.cells[failing].get("execution_count")
    name = f"In [{count}]" if count else f"cell {failing}"
    return f"<p>Raised in <a href='#{anchors[failing]}'>{name}</a>, below.</p>"


def _error_box(run: Mapping[str, Any], where: str) -> str:
    error = run.get("error") or {}
    if not error and not where:
        return ""
    message = error.get("message") or ": ".join(
        str(error.get(key, "")) for key in ("ename", "evalue") if error.get(key)
    )
    return (
        "<section class='error'><h2>Error</h2>"
        f"<pre>{html.escape(message or 'the notebook stopped with an error')}</pre>"
        f"{where}</section>"
    )


def _run_facts(run: Mapping[str, Any], metric: str) -> str:
    facts = {
        "date": run.get("date"),
        "notebook": run.get("notebook"),
        "started": run.get("started"),
        "duration": _seconds(run.get("duration_s")),
    }
    notes = run.get("notes") or ""
    parts = [
        "<dl class='facts'>",
        *(
            f"<dt>{html.escape(k)}</dt><dd>{html.escape(str(v))}</dd>"
            for k, v in facts.items()
            if v not in (None, "")
        ),
        "</dl>",
        f"<p class='notes'>{html.escape(str(notes))}</p>" if notes else "",
        _pairs("Scores", run.get("scores") or {}, highlight=metric),
        _pairs("Parameters", run.get("parameters") or {}),
    ]
    return "".join(parts)


def _pairs(title: str, pairs: Mapping[str, Any], highlight: str = "") -> str:
    if not pairs:
        return ""
    rows = "".join(
        f"<tr{' class=primary' if key == highlight else ''}>"
        f"<th>{html.escape(str(key))}</th><td>{html.escape(_show(value))}</td></tr>"
        for key, value in pairs.items()
    )
    return f"<h2>{html.escape(title)}</h2><table class='pairs'>{rows}</table>"


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


# -- index pieces --------------------------------------------------------------


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
    counts = count_by_author(progress["author"].fillna("").astype(str))
    detail = ", ".join(f"{name} {n}" for name, n in counts) or "no attempt committed"
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


def _rate_card(rate: float, metric: str, greater_is_better: bool) -> str:
    if not math.isfinite(rate):
        return _card("learning rate", "–", "needs two scored attempts")
    good = rate == 0 or (rate > 0) == greater_is_better
    verdict = "improving" if good else "getting worse"
    return _card("learning rate", f"{rate:+.3g}", f"{metric} per week, {verdict}")


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
        f"<td>{_badge(str(attempt['status']))}{_error_hint(attempt)}</td>",
        f"<td class='num'>{_score_cell(attempt, metric)}{' ★' if record else ''}</td>",
        *(f"<td class='num'>{_number(attempt[c])}</td>" for c in scores),
        f"<td class='num'>{_number(attempt.get('duration_s'), '.1f')}</td>",
        f"<td class='notes'><div class='note'>"
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
    if not (_safe_id(name) and page.is_file()):
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


def _seconds(value: Any) -> str | None:
    value = pd.to_numeric(value, errors="coerce")
    return None if pd.isna(value) else f"{float(value):.1f} s"


def _badge(status: str) -> str:
    css = status if status.replace("_", "").isalnum() else "unknown"
    return f"<span class='badge {css}'>{html.escape(status)}</span>"


def _safe_id(attempt: str) -> bool:
    unsafe = not attempt or attempt.startswith(".") or any(c in attempt for c in "/\\")
    if unsafe:
        logger.warning("attempt id %r is not a safe file name; no run page", attempt)
    return not unsafe


# -- bounds ------------------------------------------------------------------


def _merge_streams(outputs: list) -> list:
    """Join consecutive stream outputs of the same name (a print loop makes many)."""
    merged: list = []
    for output in outputs:
        last = merged[-1] if merged else None
        if (
            output.get("output_type") == "stream"
            and last is not None
            and last.get("output_type") == "stream"
            and last.get("name") == output.get("name")
        ):
            last["text"] = _text(last.get("text")) + _text(output.get("text"))
        else:
            merged.append(output)
    return merged


def _bound_output(output: Any, full: str) -> None:
    kind = output.get("output_type")
    if kind == "stream":
        output["text"] = _cut_text(_text(output.get("text")), full)
    elif kind == "error":
        output["traceback"] = _cut_traceback(list(output.get("traceback") or []), full)
    data = output.get("data") or {}
    for mimetype, value in list(data.items()):
        if mimetype == "text/html":
            data[mimetype] = _cut_html(_text(value), full)
        elif mimetype.startswith("text/") or mimetype.endswith("json"):
            if not isinstance(value, str) and len(json.dumps(value)) > TEXT_CHARS:
                data.pop(mimetype)  # a huge JSON tree: no inert way to show it
            elif isinstance(value, str):
                data[mimetype] = _cut_text(value, full)


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value or "")


def _cut_mark(what: str, full: str) -> str:
    return f"… {what} cut; the full output is in {full} …"


def _cut_text(text: str, full: str, limit: int = TEXT_CHARS) -> str:
    """Keep the head and tail lines of a long text, then of a text of long lines."""
    if text.count("\n") > HEAD_LINES + TAIL_LINES:
        lines = text.splitlines(keepends=True)
        cut = len(lines) - HEAD_LINES - TAIL_LINES
        mark = _cut_mark(f"{cut:,} lines", full)
        text = "".join([*lines[:HEAD_LINES], f"\n{mark}\n\n", *lines[-TAIL_LINES:]])
    if len(text) > limit:
        half = limit // 2
        mark = _cut_mark(f"{len(text) - 2 * half:,} characters", full)
        text = f"{text[:half]}\n\n{mark}\n\n{text[-half:]}"
    return text


def _cut_traceback(frames: list[str], full: str) -> list[str]:
    if len(frames) > TRACEBACK_FRAMES:
        half = TRACEBACK_FRAMES // 2
        mark = _cut_mark(f"{len(frames) - 2 * half:,} frames", full)
        frames = [*frames[:half], mark, *frames[-half:]]
    return [_cut_text(frame, full) for frame in frames]


def _cut_html(fragment: str, full: str) -> str:
    """Cut HTML longer than ``HTML_CHARS``, closing the tags left open.

    The cut comes after ``HEAD_LINES`` table rows, or at the last row's end
    (else the last tag's) within the limit.
    """
    if len(fragment) <= HTML_CHARS:
        return fragment
    end = _row_end(fragment, HEAD_LINES, start=max(fragment.find("<tbody"), 0))
    if not 0 < end <= HTML_CHARS:
        end = fragment.rfind("</tr>", 0, HTML_CHARS)
        end = end + len("</tr>") if end > 0 else fragment.rfind(">", 0, HTML_CHARS) + 1
    rows = fragment.count("<tr", end)
    what = f"{rows:,} table rows" if rows else f"{len(fragment) - end:,} characters"
    mark = html.escape(_cut_mark(what, full))
    return f"{sanitize(fragment[:end])}<p class='cut'>{mark}</p>"


def _row_end(fragment: str, rows: int, start: int = 0) -> int:
    """The position just past the ``rows``-th ``</tr>`` from ``start``, or -1."""
    end = start
    for _ in range(rows):
        end = fragment.find("</tr>", end)
        if end < 0:
            return -1
        end += len("</tr>")
    return end


def _output_size(output: Any) -> int:
    data = output.get("data") or {}
    sizes = [len(_text(value)) for value in data.values() if isinstance(value, str)]
    text = _text(output.get("text")) + "".join(output.get("traceback") or [])
    return len(text) + (max(sizes) if sizes else 0)


def _page_full_note(full: str) -> Any:
    import nbformat

    mark = _cut_mark(f"more output than a page holds ({PAGE_CHARS:,} characters)", full)
    return nbformat.v4.new_output("stream", name="stdout", text=mark + "\n")


# -- stamps: what a page was built from ----------------------------------------


def _run_page_path(project: Any, attempt: str) -> Path:
    return Path(project.reports_dir) / RUN_PAGES / f"{attempt}.html"


def _run_stamp(project: Any, attempt: str) -> dict[str, str]:
    """What a run page shows depends on: the run, its notebook, the metric, slope."""
    folder = Path(project.runs_dir) / attempt
    record = folder / "run.json"
    raw = record.read_bytes() if record.is_file() else b""
    run = _read_run(record) if raw else {}
    notebook = (folder / "notebook.ipynb").stat()
    return {
        "attempt": attempt,
        "fingerprint": str(run.get("fingerprint", "")),
        "ended": str(run.get("ended", "")),
        "run": hashlib.sha256(raw).hexdigest()[:16],
        "notebook": f"{notebook.st_size}:{notebook.st_mtime_ns}",
        "metric": str(project.metric),
        **_engine_stamp(),
    }


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
        _engine_stamp(),
    ]
    digest.update(json.dumps(settings, sort_keys=True).encode())
    digest.update(Path(notebook).read_bytes())
    digest.update(progress.to_csv(index=False).encode())
    return digest.hexdigest()


@lru_cache(maxsize=1)
def _engine_stamp() -> dict[str, str]:
    """slope's version, and a digest of the code that draws the pages."""
    from slope import __version__, plot

    digest = hashlib.sha256()
    for module in (__file__, plot.__file__):
        digest.update(Path(module).read_bytes())
    return {"slope": __version__, "renderer": digest.hexdigest()[:16]}


def _read_stamp(page: Path) -> dict[str, Any] | None:
    """The record on a page's second line, or None if the page has none."""
    try:
        with open(page, encoding="utf-8") as stream:
            stream.readline()
            line = stream.readline().strip()
    except (OSError, UnicodeDecodeError):
        return None
    opening, closing = STAMP.split("{}")
    if not (line.startswith(opening) and line.endswith(closing)):
        return None
    try:
        return json.loads(line[len(opening) : -len(closing)])
    except ValueError:
        return None


def _stamp_line(stamp: Mapping[str, Any]) -> str:
    # "-" as \u002d, so that no value can close the comment
    text = json.dumps(stamp, sort_keys=True, ensure_ascii=True).replace("-", "\\u002d")
    return STAMP.format(text.replace(">", "\\u003e"))


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


def _remove_stale_pages(project: Any, pages: list[Path]) -> None:
    """Remove run pages slope wrote for attempts no longer in the table."""
    folder = Path(project.reports_dir) / RUN_PAGES
    keep = {page.name for page in pages}
    for page in folder.glob("*.html") if folder.is_dir() else []:
        if page.name not in keep and _read_stamp(page) is not None:
            page.unlink()
            logger.info("removed %s: its attempt is gone", page)


# -- the page shell ------------------------------------------------------------


def _page(
    title: str,
    body: str,
    home: bool = False,
    stamp: Mapping[str, Any] | None = None,
) -> str:
    return (
        "<!DOCTYPE html>\n"
        f"{_stamp_line(stamp) if stamp else '<!-- slope-page -->'}\n"
        "<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)}</title>"
        f"<style>{CSS}\n{_highlight_css()}</style></head>"
        f"<body class='{'index' if home else 'run'}'><main>{body}</main>"
        "</body></html>\n"
    )


@lru_cache(maxsize=1)
def _highlight_css() -> str:
    from pygments.formatters import HtmlFormatter

    return HtmlFormatter(style="default").get_style_defs(".highlight")


CSS = """
:root { --ink:#1f2430; --muted:#5b6170; --line:#e3e5ea; --bg:#fafbfc;
  --ok:#2e7d32; --bad:#c62828; --warn:#b26a00; --accent:#dd8452; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
  font:15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
main { max-width:1280px; margin:0 auto; padding:24px 28px 64px; }
h1 { font-size:1.7em; margin:.2em 0 .6em; }
h2 { font-size:1.2em; margin:1.6em 0 .5em; }
a { color:#2a5db0; }
.headline { display:grid; grid-template-columns:repeat(auto-fit,minmax(180px,1fr));
  gap:12px; margin:8px 0 20px; }
.card { background:#fff; border:1px solid var(--line); border-radius:8px;
  padding:12px 14px; }
.card .label { color:var(--muted); font-size:.8em; text-transform:uppercase;
  letter-spacing:.05em; }
.card .value { font-size:1.9em; font-weight:650; line-height:1.2; }
.card .detail { color:var(--muted); font-size:.85em; overflow-wrap:anywhere; }
figure.plot { margin:0; background:#fff; border:1px solid var(--line);
  border-radius:8px; padding:8px; }
figure.plot svg { width:100%; height:auto; display:block; }
.slope-point:hover path { fill-opacity:.25; }
p.files { color:var(--muted); font-size:.85em; margin:.4em 0 1.2em; }
.table-wrap { overflow-x:auto; background:#fff; border:1px solid var(--line);
  border-radius:8px; }
table.progress { border-collapse:collapse; width:100%; font-size:.88em; }
table.progress th, table.progress td { padding:6px 10px; text-align:left;
  vertical-align:top; border-bottom:1px solid var(--line); }
table.progress thead th { background:#f1f3f6; position:sticky; top:0; }
table.progress td.num { text-align:right; font-variant-numeric:tabular-nums;
  white-space:nowrap; }
table.progress td.date { white-space:nowrap; }
table.progress td.attempt { font-family:ui-monospace, Menlo, Consolas, monospace;
  overflow-wrap:anywhere; min-width:10em; }
table.progress td.notes { min-width:18em; color:#333; }
table.progress td.notes .note { white-space:pre-wrap; }
table.progress tr.record td { background:#fff6ef; }
table.progress td.author { white-space:nowrap; }
div.changes { margin-top:4px; padding-left:8px; border-left:2px solid var(--line);
  color:var(--muted); font-size:.9em; }
div.changes ul { margin:0; padding:0; list-style:none; }
div.changes li { color:#3a4150; overflow-wrap:anywhere; }
div.changes code { font-size:.95em; color:#1d4f91; }
p.cut { color:var(--warn); font-weight:600; }
.err { color:var(--bad); font-size:.85em; white-space:pre-wrap; max-width:28em; }
.badge { display:inline-block; padding:0 .5em; border-radius:1em; font-size:.8em;
  font-weight:600; background:#eceff3; color:var(--muted); }
.badge.ok { background:#e6f4ea; color:var(--ok); }
.badge.failed, .badge.kernel_died, .badge.invalid { background:#fdecea;
  color:var(--bad); }
.badge.timeout, .badge.no_score { background:#fff4e0; color:var(--warn); }
section.error { background:#fdecea; border:1px solid #f5c2c0; border-radius:8px;
  padding:4px 16px 8px; margin:0 0 16px; }
section.error pre { white-space:pre-wrap; margin:0; }
dl.facts { display:grid; grid-template-columns:max-content 1fr; gap:2px 14px; }
dl.facts dt { color:var(--muted); } dl.facts dd { margin:0; }
table.pairs { border-collapse:collapse; font-size:.9em; background:#fff; }
table.pairs th, table.pairs td { padding:4px 12px; border:1px solid var(--line);
  text-align:left; font-family:ui-monospace, Menlo, Consolas, monospace; }
table.pairs tr.primary { font-weight:700; }
.notebook { background:#fff; border:1px solid var(--line); border-radius:8px;
  padding:8px 16px; overflow-x:auto; }
.notebook .cell { margin:10px 0; }
.notebook .input_area { background:#f6f8fa; border-radius:4px; padding:2px 8px; }
.notebook .prompt { color:var(--muted); font-size:.75em;
  font-family:ui-monospace, monospace; }
.notebook pre { overflow-x:auto; margin:4px 0; }
.notebook img { max-width:100%; }
.notebook .output_error pre, .notebook .output_stderr pre { background:#fdf3f2; }
.notebook .cell:target { outline:3px solid var(--bad); outline-offset:4px; }
p.sub { color:var(--muted); margin-top:-.6em; }
a.anchor-link { display:none; }
.index .output_area, .index .output_subarea { padding:0; }
"""
