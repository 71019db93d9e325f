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
"""

from __future__ import annotations

import base64
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
}
DROPPED_MIMETYPES = (
    "application/javascript",
    "application/vnd.jupyter.widget-view+json",
    "application/vnd.jupyter.widget-state+json",
)


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
    from slope.plot import plot_learning_rate, point_tooltips, save_plot

    reports = Path(project.reports_dir)
    reports.mkdir(parents=True, exist_ok=True)

    fig = plot_learning_rate(
        progress,
        project.metric,
        project.greater_is_better,
        project.baseline,
        timezone=project.timezone,
    )
    tips = point_tooltips(progress, project.metric, timezone=project.timezone)
    save_plot(fig, reports, tips)

    render_run_pages(project, progress)
    if report_notebook is None:
        report_notebook = find_report_notebook(project)
    return render_index(project, progress, report_notebook, kernel_name)


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
    """Write ``reports/runs/<id>.html`` for every attempt that has a notebook."""
    exporter = _exporter(exclude_input=False)
    pages = []
    for attempt in progress["attempt"].astype(str):
        notebook = Path(project.runs_dir) / attempt / "notebook.ipynb"
        if _safe_id(attempt) and notebook.is_file():
            pages.append(render_run_page(project, attempt, exporter))
    return pages


def render_run_page(project: Any, attempt: str, exporter: Any = None) -> Path:
    """Write one run's page: error first, then status, scores, parameters, notebook.

    Returns
    -------
    Path
        ``reports/runs/<attempt>.html``.
    """
    import nbformat

    folder = Path(project.runs_dir) / attempt
    run = _read_run(folder / "run.json")
    notebook = nbformat.read(folder / "notebook.ipynb", as_version=4)
    anchors = _anchor_cells(notebook)
    where = _cell_link(notebook, _failing_cell(notebook, run), anchors)

    parts = [
        _run_header(attempt, run),
        _error_box(run, where),
        _run_facts(run, project.metric),
        "<h2>Notebook</h2>",
        _notebook_html(notebook, folder, exporter),
    ]
    page = Path(project.reports_dir) / RUN_PAGES / f"{attempt}.html"
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(_page(f"{attempt} · slope run", "".join(parts)), "utf-8")
    logger.debug("wrote %s", page)
    return page


def render_index(
    project: Any,
    progress: pd.DataFrame,
    report_notebook: str | Path | None = None,
    kernel_name: str = "python3",
) -> Path:
    """Execute the report notebook and convert it, without code, to index.html."""
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
    index.write_text(_page(title, body, home=True), encoding="utf-8")
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
    for column in ("notes", "error", "run_page"):
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
    """Return the headline: attempts, days, effort rate, best score, learning rate."""
    dates = pd.to_datetime(progress["date"], utc=True)
    ok = scored_attempts(progress, metric)
    span = (dates.max() - dates.min()) / pd.Timedelta(days=1)
    span = 0.0 if pd.isna(span) else span
    rate = learning_rate(ok["date"], ok[metric]) if len(ok) else math.nan

    cards = [
        _card("attempts", f"{len(progress)}", _status_counts(progress)),
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
    head = ["#", "attempt", "date", "status", metric, *scores, "seconds", "notes"]
    rows = [
        _table_row(i, attempt, metric, scores, record, reports_dir, timezone)
        for i, ((_, attempt), record) in enumerate(
            zip(progress.iterrows(), records, strict=True)
        )
    ]
    header = "".join(f"<th>{html.escape(name)}</th>" for name in head)
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
        f"<td>{_badge(str(attempt['status']))}{_error_hint(attempt)}</td>",
        f"<td class='num'>{_score_cell(attempt, metric)}{' ★' if record else ''}</td>",
        *(f"<td class='num'>{_number(attempt[c])}</td>" for c in scores),
        f"<td class='num'>{_number(attempt.get('duration_s'), '.1f')}</td>",
        f"<td class='notes'>{html.escape(str(attempt.get('notes') or ''))}</td>",
    ]
    css = " class='record'" if record else ""
    return f"<tr{css}>{''.join(cells)}</tr>"


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


# -- the page shell ------------------------------------------------------------


def _page(title: str, body: str, home: bool = False) -> str:
    from pygments.formatters import HtmlFormatter

    highlight = HtmlFormatter(style="default").get_style_defs(".highlight")
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)}</title>"
        f"<style>{CSS}\n{highlight}</style></head>"
        f"<body class='{'index' if home else 'run'}'><main>{body}</main>"
        "</body></html>\n"
    )


CSS = """
:root { --ink:#1f2430; --muted:#5b6170; --line:#e3e5ea; --bg:#fafbfc;
  --ok:#2e7d32; --bad:#c62828; --warn:#b26a00; --accent:#dd8452; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
  font:15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
main { max-width:1200px; margin:0 auto; padding:24px 28px 64px; }
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
  overflow-wrap:anywhere; min-width:12em; }
table.progress td.notes { white-space:pre-wrap; min-width:16em; color:#333; }
table.progress tr.record td { background:#fff6ef; }
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
