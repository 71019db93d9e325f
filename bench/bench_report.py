"""Time render_report for 200 attempts against nbconvert's time for one notebook.

    python bench/bench_report.py [--attempts 200]

One tiny notebook is executed for real with papermill, then copied into every
run folder, so the benchmark measures the report and not the attempts. The
reference is nbconvert converting that notebook once with the ``basic``
template, a fresh exporter each time (as ``jupyter nbconvert`` does); the
ratio says how many such conversions one attempt's share of the report costs.

The report is built three times: from scratch; again with nothing changed
(every page and index.html are kept, "report unchanged"); and after one
attempt ran again (its page, the plot and index.html are rebuilt).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import papermill as pm
from nbconvert import HTMLExporter

from slope.project import load_project
from slope.report import render_report

START = pd.Timestamp("2026-01-05T09:00:00Z")


def make_notebook(folder: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("alpha = 1.0")
    params.metadata["tags"] = ["parameters"]
    body = "import slope\nslope.record_scores(accuracy=0.8, accuracy_std=0.01)"
    nb.cells = [params, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "language": "python",
        "display_name": "Python 3",
    }
    source, executed = folder / "source.ipynb", folder / "executed.ipynb"
    nbformat.write(nb, source)
    pm.execute_notebook(source, executed, kernel_name="python3", progress_bar=False)
    return executed


def make_project(root: Path, executed: Path, n: int) -> pd.DataFrame:
    (root / "params").mkdir(parents=True)
    (root / "params" / "project.yaml").write_text(
        "metric: accuracy\ngreater_is_better: true\nbaseline: 000-baseline\n"
    )
    rng = np.random.default_rng(0)
    ids = [
        "000-baseline",
        *(f"{i:03d}-attempt-with-a-longish-name" for i in range(1, n)),
    ]
    for attempt in ids:
        folder = root / "runs" / attempt
        folder.mkdir(parents=True)
        shutil.copy(executed, folder / "notebook.ipynb")
        run = {
            "attempt": attempt,
            "status": "ok",
            "parameters": {"alpha": 0.5},
            "scores": {"accuracy": 0.8},
            "error": None,
            "notes": "",
        }
        (folder / "run.json").write_text(json.dumps(run))
    return pd.DataFrame(
        {
            "attempt": ids,
            "date": START + pd.to_timedelta(np.arange(n) * 7, unit="h"),
            "notebook": "source.ipynb",
            "status": "ok",
            "accuracy": 0.5 + 0.4 * np.linspace(0, 1, n) + rng.normal(0, 0.02, n),
            "accuracy_std": 0.01,
            "duration_s": 2.0,
            "notes": "a note",
            "error": "",
            "run_page": [f"runs/{i}.html" for i in ids],
        }
    )


def time_nbconvert(executed: Path, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        HTMLExporter(template_name="basic").from_filename(str(executed))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attempts", type=int, default=200)
    n = parser.parse_args().attempts

    with tempfile.TemporaryDirectory(prefix="slope-bench-") as tmp:
        executed = make_notebook(Path(tmp))
        root = Path(tmp) / "project"
        progress = make_project(root, executed, n)
        one = time_nbconvert(executed)

        project = load_project(root)
        cold = timed(render_report, project, progress)
        warm = timed(render_report, project, progress)
        rerun_one(root, progress, attempt=progress["attempt"].iloc[n // 2])
        one_changed = timed(render_report, project, progress)

    print(f"nbconvert, one notebook (basic template): {one * 1000:.1f} ms")
    for label, total in (
        ("from scratch", cold),
        ("nothing changed", warm),
        ("one attempt ran again", one_changed),
    ):
        per_attempt = total / n
        print(
            f"render_report, {n} attempts, {label}: {total:.2f} s, "
            f"{per_attempt * 1000:.1f} ms each, "
            f"ratio to nbconvert one notebook {per_attempt / one:.3f}"
        )


def timed(function, *args) -> float:
    start = time.perf_counter()
    function(*args)
    return time.perf_counter() - start


def rerun_one(root: Path, progress: pd.DataFrame, attempt: str) -> None:
    """Make one attempt look run again: a new end time and a new score."""
    record = root / "runs" / attempt / "run.json"
    run = json.loads(record.read_text())
    run["ended"] = "2026-02-01T10:00:00+00:00"
    record.write_text(json.dumps(run))
    progress.loc[progress["attempt"] == attempt, "accuracy"] = 0.95


if __name__ == "__main__":
    main()
