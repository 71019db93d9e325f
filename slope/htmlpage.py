"""The scaffolding every report page shares: style, the page frame, its stamp.

A page is one self-contained HTML file: nbconvert's ``basic`` template (the
``lab`` one loads require.js and MathJax from a CDN) inside this module's
inline CSS, so it renders with the network cut off. Its second line records
what it was built from (``<!-- slope-page {...} -->``), so that a page whose
inputs did not change is not written again.
"""

from __future__ import annotations

import hashlib
import html
import json
import logging
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


RUN_PAGES = "runs"


STAMP = "<!-- slope-page {} -->"


def make_exporter(*, exclude_input: bool) -> Any:
    from nbconvert import HTMLExporter

    return HTMLExporter(
        template_name="basic",
        exclude_input=exclude_input,
        exclude_input_prompt=exclude_input,
        exclude_output_prompt=exclude_input,
    )


def badge(status: str) -> str:
    css = status if status.replace("_", "").isalnum() else "unknown"
    return f"<span class='badge {css}'>{html.escape(status)}</span>"


def safe_id(attempt: str) -> bool:
    unsafe = not attempt or attempt.startswith(".") or any(c in attempt for c in "/\\")
    if unsafe:
        logger.warning("attempt id %r is not a safe file name; no run page", attempt)
    return not unsafe


@lru_cache(maxsize=1)
def engine_stamp() -> dict[str, str]:
    """slope's version, and a digest of the code that draws the pages."""
    from slope import __version__, plot, report, runpages

    digest = hashlib.sha256()
    for module in (__file__, plot.__file__, report.__file__, runpages.__file__):
        digest.update(Path(module).read_bytes())
    return {"slope": __version__, "renderer": digest.hexdigest()[:16]}


def read_stamp(page: Path) -> dict[str, Any] | None:
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


def stamp_line(stamp: Mapping[str, Any]) -> str:
    # "-" as \u002d, so that no value can close the comment
    text = json.dumps(stamp, sort_keys=True, ensure_ascii=True).replace("-", "\\u002d")
    return STAMP.format(text.replace(">", "\\u003e"))


def page_html(
    title: str,
    body: str,
    home: bool = False,
    stamp: Mapping[str, Any] | None = None,
) -> str:
    return (
        "<!DOCTYPE html>\n"
        f"{stamp_line(stamp) if stamp else '<!-- slope-page -->'}\n"
        "<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)}</title>"
        f"<style>{CSS}\n{highlight_css()}</style></head>"
        f"<body class='{'index' if home else 'run'}'><main>{body}</main>"
        "</body></html>\n"
    )


@lru_cache(maxsize=1)
def highlight_css() -> str:
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
.err { color:var(--bad); font-size:.85em; white-space:pre-wrap;
  overflow-wrap:anywhere; margin-bottom:.3em; }
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
