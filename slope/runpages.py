"""One page per run: ``reports/runs/<id>.html``, safe and bounded.

A run page shows the run's status, error (first, with a link to the failing
cell), scores and parameters above the executed notebook.

- A run's notebook is untrusted HTML: its converted body is sanitized with
  nh3 (ammonia's allow-list). Scripts, styles, iframes, forms, event
  attributes and inline styles go; an ``img`` keeps only a ``data:image/``
  source, so no output can load anything from the network; links keep
  http(s) targets (a click, not a load). Outputs whose only form is
  JavaScript or a widget are dropped before conversion, and SVG outputs are
  turned into ``data:`` images, which a browser never scripts.
- Before conversion every output is bounded: a long stream or ``text/plain``
  keeps its first and last lines around a "… N lines cut; the full output is
  in runs/<id>/notebook.ipynb …" mark, an HTML output is cut at a table row
  past ``HTML_CHARS`` (its open tags closed) with the same mark, and once a
  page holds ``PAGE_CHARS`` of output the remaining outputs are replaced by
  the mark. The executed notebook in ``runs/`` keeps everything.
- A page records the run's fingerprint, ended time and record digest, the
  notebook's size and time, and slope's version; a page whose record
  matches is not rendered again.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from slope.htmlpage import (
    RUN_PAGES,
    badge,
    engine_stamp,
    make_exporter,
    page_html,
    read_stamp,
    safe_id,
)

logger = logging.getLogger(__name__)


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
        if not (safe_id(attempt) and notebook.is_file()):
            continue
        page = _run_page_path(project, attempt)
        if read_stamp(page) == _run_stamp(project, attempt):
            pages.append(page)
            continue
        exporter = exporter or make_exporter(exclude_input=False)
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
    try:
        notebook = _read_notebook(folder / "notebook.ipynb")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        notebook, shown = None, _unreadable_note(folder / "notebook.ipynb", err)
    if notebook is not None:
        bound_outputs(notebook, f"runs/{attempt}/notebook.ipynb")
        anchors = _anchor_cells(notebook)
        where = _cell_link(notebook, _failing_cell(notebook, run), anchors)
        shown = _notebook_html(notebook, folder, exporter)
    else:
        where = ""

    parts = [
        _run_header(attempt, run),
        _error_box(run, where),
        _run_facts(run, project.metric),
        "<h2>Notebook</h2>",
        shown,
    ]
    page = _run_page_path(project, attempt)
    page.parent.mkdir(parents=True, exist_ok=True)
    text = page_html(f"{attempt} · slope run", "".join(parts), stamp=stamp)
    page.write_text(text, "utf-8")
    logger.debug("wrote %s", page)
    return page


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


def _notebook_html(notebook: Any, folder: Path, exporter: Any) -> str:
    """The run's notebook as inert HTML; a note instead if it does not validate."""
    import nbformat

    try:
        body, _ = (exporter or make_exporter(exclude_input=False)).from_notebook_node(
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


def _unreadable_note(path: Path, err: Exception) -> str:
    """A note in place of a notebook that is not JSON, or not a notebook at all."""
    reason = str(err).splitlines()[0] if str(err) else type(err).__name__
    logger.warning("%s cannot be read (%s); its run page says so", path, reason)
    return (
        f"<p class='err'>{html.escape(str(path))} cannot be read as a notebook "
        f"({html.escape(reason)}), so it is not shown. It was changed or cut off "
        "after its run; run the attempt again with <code>--force</code>.</p>"
    )


def _read_notebook(path: Path) -> Any:
    """Read a run's notebook; its outputs' line lists joined before nbformat sees them.

    nbformat makes a node of every line of a multi-line output, which for a
    run that printed a million lines costs seconds; joined, it costs nothing.
    """
    import nbformat
    from nbformat.v4.nbjson import JSONReader

    raw = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(raw, dict) or not isinstance(raw.get("cells", []), list):
        raise ValueError("the file is JSON, but not a notebook's")
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
        f"<h1>{html.escape(attempt)} {badge(status)}</h1>"
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


def _seconds(value: Any) -> str | None:
    value = pd.to_numeric(value, errors="coerce")
    return None if pd.isna(value) else f"{float(value):.1f} s"


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
        **engine_stamp(),
    }


def _remove_stale_pages(project: Any, pages: list[Path]) -> None:
    """Remove run pages slope wrote for attempts no longer in the table."""
    folder = Path(project.reports_dir) / RUN_PAGES
    keep = {page.name for page in pages}
    for page in folder.glob("*.html") if folder.is_dir() else []:
        if page.name not in keep and read_stamp(page) is not None:
            page.unlink()
            logger.info("removed %s: its attempt is gone", page)
