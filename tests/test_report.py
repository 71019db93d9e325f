"""The report: index.html, run pages, offline and escaped; seen in Chromium too."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import papermill as pm
import pytest

from slope.project import load_project
from slope.report import headline_html, render_report
from slope.runpages import render_run_pages, sanitize

CHROMIUM = Path("/usr/bin/chromium")
NOTES_ATTACK = '<script>alert("notes")</script> "quoted" & naïve – 日本'
OUTPUT_ATTACK = (
    "<b>bold</b><script>window.pwned = 1</script>"
    "<img src='https://example.com/beacon.png' onerror='alert(1)'>"
    "<iframe src='https://example.com'></iframe>"
)
CHANGE_ATTACK = (
    "vs 001-baseline: estimator: DummyClassifier → <i>Forest</i>; depth: – → 6"
)
NETWORK_TAGS = {"script": "src", "link": "href", "img": "src", "iframe": "src"}

pytestmark = pytest.mark.slow


class Elements(HTMLParser):
    """Collect every tag with its attributes, and the page's text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def parse(path: Path) -> Elements:
    parser = Elements()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def write_project(root: Path, baseline: str | None = "001-baseline") -> None:
    (root / "params").mkdir(parents=True)
    lines = ["metric: accuracy", "greater_is_better: true"]
    lines += [f"baseline: {baseline}"] if baseline else []
    (root / "params" / "project.yaml").write_text("\n".join(lines) + "\n")


def execute_run(root: Path, attempt: str, body: str, status: str) -> None:
    """Execute a two-cell notebook for real and write its run.json."""
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("alpha = 1.0")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        params,
        nbformat.v4.new_code_cell("import slope"),
        nbformat.v4.new_code_cell(body),
    ]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "language": "python",
        "display_name": "Python 3",
    }
    folder = root / "runs" / attempt
    folder.mkdir(parents=True)
    source = folder / "source.ipynb"
    nbformat.write(nb, source)
    error = None
    try:
        pm.execute_notebook(
            source,
            folder / "notebook.ipynb",
            parameters={"alpha": 0.5},
            kernel_name="python3",
            progress_bar=False,
            cwd=str(folder),
        )
    except pm.PapermillExecutionError as err:
        error = {
            "ename": err.ename,
            "evalue": err.evalue,
            "cell": err.cell_index,
            "message": f"{err.ename}: {err.evalue} (cell {err.cell_index})",
        }
    run = {
        "attempt": attempt,
        "status": status,
        "notebook": "source.ipynb",
        "date": "2026-03-02T10:00:00+00:00",
        "duration_s": 1.5,
        "parameters": {"alpha": 0.5, "name": "<b>not bold</b>"},
        "scores": {"accuracy": 0.8, "accuracy_std": 0.02} if status == "ok" else {},
        "error": error,
        "notes": NOTES_ATTACK,
    }
    (folder / "run.json").write_text(json.dumps(run))


def make_progress(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    start = pd.Timestamp("2026-03-01T09:00:00Z")
    n = len(rows)
    return pd.DataFrame(
        {
            "attempt": [r[0] for r in rows],
            "date": [start + pd.Timedelta(days=2 * i) for i in range(n)],
            "notebook": ["train.ipynb"] * n,
            "status": [r[1] for r in rows],
            "accuracy": [r[2] for r in rows],
            "accuracy_std": [0.02] * n,
            "f1": [r[2] - 0.05 for r in rows],
            "duration_s": [1.5] * n,
            "notes": [NOTES_ATTACK] * n,
            "changes": ["first attempt"] + [CHANGE_ATTACK] * (n - 1),
            "author": ["Ann <ann@example.com>", *(["Bo"] * (n - 1))],
            "error": [
                "" if r[1] == "ok" else "ValueError: boom (cell 2)" for r in rows
            ],
            "run_page": [""] * n,
        }
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("project")
    write_project(root)
    ok_body = (
        "from IPython.display import HTML, display\n"
        f"display(HTML({OUTPUT_ATTACK!r}))\n"
        "slope.record_scores(accuracy=0.8, accuracy_std=0.02)"
    )
    execute_run(root, "002-forest", ok_body, "ok")
    execute_run(
        root, "003-broken", "raise ValueError('the data has only 10 rows')", "failed"
    )
    progress = make_progress(
        [
            ("001-baseline", "ok", 0.45),
            ("002-forest", "ok", 0.8),
            ("003-broken", "failed", np.nan),
            ("004-bad-yaml", "invalid", np.nan),
        ]
    )
    index = render_report(load_project(root), progress)
    return root, index


def test_index_has_plot_headline_and_rows(built):
    root, index = built
    page = index.read_text(encoding="utf-8")
    assert index == root / "reports" / "index.html"
    assert "<svg" in page and 'class="slope-point"' in page
    assert (root / "reports" / "learning_rate.png").stat().st_size > 10_000
    assert "Progress report" in page and "learning rate" in page
    for attempt in ("001-baseline", "002-forest", "003-broken", "004-bad-yaml"):
        assert f">{attempt}<" in page
    links = [a["href"] for tag, a in parse(index).tags if tag == "a" and "href" in a]
    assert "runs/002-forest.html" in links and "runs/003-broken.html" in links
    assert "runs/004-bad-yaml.html" not in links


def test_index_shows_changes_authors_and_people(built):
    root, index = built
    text = " ".join(parse(index).text)
    page = index.read_text(encoding="utf-8")
    assert "changes from the best attempt before" in text and "author" in text
    assert "vs 001-baseline:" in text and "DummyClassifier → <i>Forest</i>" in text
    assert "<i>Forest" not in page
    assert "Ann <ann@example.com>" in text and "&lt;ann@example.com&gt;" in page
    assert "Bo 3, Ann <ann@example.com> 1" in text  # attempts per person
    svg = (root / "reports" / "learning_rate.svg").read_text(encoding="utf-8")
    assert "by Bo" in svg and "  depth: – → 6" in svg


def test_index_escapes_notes_and_hides_code(built):
    _, index = built
    page = index.read_text(encoding="utf-8")
    elements = parse(index)
    assert NOTES_ATTACK in "".join(elements.text)
    assert "script" not in {tag for tag, _ in elements.tags}
    assert "import slope" not in page and "read_progress" not in page


@pytest.mark.parametrize(
    "page", ["index.html", "runs/002-forest.html", "runs/003-broken.html"]
)
def test_pages_load_nothing_from_network(built, page):
    root, _ = built
    elements = parse(root / "reports" / page)
    for tag, attrs in elements.tags:
        assert tag not in {"script", "iframe", "link"}, (page, tag, attrs)
        url = attrs.get(NETWORK_TAGS.get(tag, ""), "") or ""
        assert "//" not in url, (page, tag, url)


def test_run_page_of_failed_run_shows_error_first(built):
    root, _ = built
    page_path = root / "reports" / "runs" / "003-broken.html"
    page = page_path.read_text("utf-8")
    error = page.index("ValueError: the data has only 10 rows")
    assert error < page.index("Parameters") < page.index("class='notebook'")
    anchor = page[error:].split("href='#", 1)[1].split("'", 1)[0]
    target = [a for _, a in parse(page_path).tags if a.get("id") == anchor]
    assert len(target) == 1 and "cell" in target[0]["class"].split()
    assert "ValueError" in page.split(f'id="{anchor}"', 1)[1]


def test_run_page_shows_scores_parameters_and_inert_output(built):
    root, _ = built
    path = root / "reports" / "runs" / "002-forest.html"
    page, elements = path.read_text("utf-8"), parse(path)
    assert "Scores" in page and "0.8" in page
    assert "&lt;b&gt;not bold&lt;/b&gt;" in page
    assert "<b>bold</b>" in page
    assert not [a for _, a in elements.tags if "onerror" in a]
    assert {"script", "iframe"}.isdisjoint(tag for tag, _ in elements.tags)
    assert "class='error'" not in page


def test_sanitize_keeps_data_images_and_anchors():
    clean = sanitize(
        "<div id='cell-id=c1' class='cell'><img src='data:image/png;base64,AAAA'>"
        "<a href='data:text/html,x'>x</a><a href='#cell-id=c1'>y</a>"
        "<p style='position:fixed'>z</p></div>"
    )
    assert 'id="cell-id=c1"' in clean
    assert 'src="data:image/png;base64,AAAA"' in clean
    assert "data:text/html" not in clean and 'href="#cell-id=c1"' in clean
    assert "style" not in clean


@pytest.mark.parametrize(
    "rows",
    [
        [("001-baseline", "failed", np.nan), ("002-x", "invalid", np.nan)],
        [("001-baseline", "ok", 0.5)],
    ],
    ids=["no-run-succeeded", "single-attempt"],
)
def test_report_builds_for_small_histories(tmp_path, rows):
    write_project(tmp_path)
    index = render_report(load_project(tmp_path), make_progress(rows))

    page = index.read_text(encoding="utf-8")
    assert "<svg" in page
    assert all(f">{attempt}<" in page for attempt, _, _ in rows)
    assert "needs two scored attempts" in page


@pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium to open it")
def test_index_renders_in_headless_chromium(built, tmp_path):
    _, index = built
    shot = tmp_path / "index.png"
    flags = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--enable-logging=stderr",
        "--v=0",
        "--window-size=1400,2000",
    ]
    dom = subprocess.run(
        [*flags, "--dump-dom", index.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    subprocess.run(
        [*flags, f"--screenshot={shot}", index.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )

    assert '<table class="progress">' in dom.stdout
    assert dom.stdout.count("<tr") >= 5
    assert "slope-point" in dom.stdout
    assert "CONSOLE" not in dom.stderr, dom.stderr
    assert shot.stat().st_size > 50_000


# -- big runs stay quick --------------------------------------------------------

BIG_OUTPUTS = r"""
import pandas as pd
from IPython.display import display
for start in range(0, 1_000_000, 50_000):  # twenty outputs, one a chunk
    print("\n".join(f"line {i}" for i in range(start, start + 50_000)), flush=True)
pd.set_option("display.max_rows", None)
display(pd.DataFrame({"row": range(50_000)}))
"""


def test_huge_outputs_give_a_bounded_page_with_a_cut_mark(tmp_path):
    write_project(tmp_path)
    execute_run(tmp_path, "005-big", BIG_OUTPUTS, "ok")
    executed = tmp_path / "runs" / "005-big" / "notebook.ipynb"
    assert executed.stat().st_size > 10_000_000  # the run keeps everything

    (page,) = render_run_pages(
        load_project(tmp_path), make_progress([("005-big", "ok", 0.8)])
    )

    text = " ".join(parse(page).text)
    assert page.stat().st_size < 400_000
    full = "the full output is in runs/005-big/notebook.ipynb"
    assert f"… 999,840 lines cut; {full} …" in text
    assert f"… 49,900 table rows cut; {full} …" in text
    assert "line 0\n" in text and "line 999999" in text
    assert "line 99\n" in text and "line 100\n" not in text  # the head
    assert "line 999939\n" not in text and "line 999940\n" in text  # the tail


def test_a_second_build_rewrites_only_what_changed(tmp_path, caplog):
    write_project(tmp_path)
    execute_run(tmp_path, "002-forest", "print('hello')", "ok")
    runs = tmp_path / "runs"
    shutil.copytree(runs / "002-forest", runs / "003-broken")
    shutil.copytree(runs / "002-forest", runs / "009-gone")
    project = load_project(tmp_path)
    rows = [("002-forest", "ok", 0.8), ("003-broken", "ok", 0.7)]
    render_report(project, make_progress([*rows, ("009-gone", "ok", 0.1)]))
    reports = tmp_path / "reports"
    files = ["index.html", "learning_rate.png", "runs/002-forest.html"]
    files += ["runs/003-broken.html"]

    def mtimes():
        return {name: (reports / name).stat().st_mtime_ns for name in files}

    progress = make_progress(rows)
    render_report(project, progress)  # the gone attempt's page goes
    assert not (reports / "runs" / "009-gone.html").exists()
    first = mtimes()
    caplog.set_level(logging.INFO, logger="slope.report")
    render_report(project, progress)
    assert mtimes() == first
    assert "report unchanged" in caplog.text

    record = runs / "003-broken" / "run.json"
    run = json.loads(record.read_text())
    run["ended"] = "2026-03-04T10:00:00+00:00"
    record.write_text(json.dumps(run))
    progress.loc[1, "duration_s"] = 2.5
    render_report(project, progress)

    now = mtimes()
    assert now["runs/002-forest.html"] == first["runs/002-forest.html"]
    assert now["runs/003-broken.html"] != first["runs/003-broken.html"]
    assert now["index.html"] != first["index.html"]
    stamp = (reports / "runs" / "003-broken.html").read_text().splitlines()[1]
    assert stamp.startswith("<!-- slope-page {") and "2026\\u002d03\\u002d04" in stamp


@pytest.mark.parametrize(
    "content",
    ['{"cells": [{"cell_type": "code", "sou', "[1, 2, 3]", '{"nbformat": 4}'],
    ids=["cut-off-json", "not-a-notebook", "no-cells"],
)
def test_an_unreadable_run_notebook_gets_a_note_and_the_build_goes_on(
    tmp_path, content, caplog
):
    write_project(tmp_path)
    execute_run(tmp_path, "002-forest", "print('hello')", "ok")
    shutil.copytree(tmp_path / "runs" / "002-forest", tmp_path / "runs" / "003-cut")
    (tmp_path / "runs" / "003-cut" / "notebook.ipynb").write_text(content)
    rows = [("002-forest", "ok", 0.8), ("003-cut", "ok", 0.7)]

    index = render_report(load_project(tmp_path), make_progress(rows))

    assert index.is_file()
    good = " ".join(parse(tmp_path / "reports" / "runs" / "002-forest.html").text)
    assert "hello" in good
    text = " ".join(parse(tmp_path / "reports" / "runs" / "003-cut.html").text)
    assert "runs/003-cut/notebook.ipynb cannot be read as a notebook" in text
    assert "run the attempt again with" in text and "--force" in text
    assert "003-cut/notebook.ipynb cannot be read" in caplog.text


def test_headline_tells_the_recent_rate_after_a_plateau():
    rows = [("001-baseline", "ok", 0.5)]
    rows += [(f"{i:03}-same", "ok", 0.9) for i in range(2, 11)]
    progress = make_progress(rows)  # two days apart: 18 days in all
    parser = Elements()
    parser.feed(headline_html(progress, "accuracy"))

    assert "accuracy per week, improving; last 14 days: +0" in parser.text


def test_people_card_counts_attempts_not_yet_committed():
    progress = make_progress([("001-a", "ok", 0.5), ("002-b", "ok", 0.6)])
    progress.loc[1, "author"] = ""
    parser = Elements()
    parser.feed(headline_html(progress, "accuracy"))

    assert "attempts each: Ann <ann@example.com> 1; not yet committed 1" in parser.text
