"""What a kernel start costs: plain papermill, cold kernels, forked kernels.

Runs the example project's attempts (``params/*.yaml``) once each way and
prints, from that one run (issue 7):

- seconds per attempt for plain papermill, slope's cold path and its fast
  path (forked kernels), serial and with 2 workers;
- the notebooks' own code per attempt: the cells run in a process that has
  imported everything already, each cell's value formatted for display and
  its figures rendered to PNG as the inline backend does; and the fast
  path's cost beyond it (target: under 0.3 s);
- the whole example's speed-up over plain papermill run serially
  (target: at least 5 times);
- whether the cold and fast runs recorded the same scores and models.

    python bench/bench_kernels.py [--only 00*] [--skip-plain]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = ("train.ipynb", "bill_ratio.ipynb")


def copy_example(root: Path) -> Path:
    for folder in ("params", "data"):
        shutil.copytree(REPO / folder, root / folder)
    (root / "notebooks").mkdir()
    for name in NOTEBOOKS:
        shutil.copy(REPO / "notebooks" / name, root / "notebooks" / name)
    return root


def attempt_jobs(root: Path, only: list[str] | None) -> list[tuple[str, str, dict]]:
    """(attempt id, notebook path, parameters) for each valid selected attempt."""
    from slope.attempts import load_attempts
    from slope.project import load_project
    from slope.runner import selected

    project = load_project(root)
    return [
        (a.id, str(a.spec.path), {**a.parameters, "output_dir": "."})
        for a in load_attempts(project)
        if a.valid and selected(a.id, only)
    ]


def run_plain(job: tuple[str, str, dict], root: str) -> None:
    """One attempt as a user would write it: papermill's defaults, a cold kernel."""
    import papermill

    attempt, notebook, parameters = job
    out = Path(root) / "plain" / attempt
    out.mkdir(parents=True, exist_ok=True)
    os.environ["SLOPE_PROJECT_DIR"] = root  # as run_all.py tells its kernels
    papermill.execute_notebook(
        notebook,
        str(out / "notebook.ipynb"),
        parameters=parameters,
        kernel_name="python3",
        cwd=str(out),
        progress_bar=False,
    )


def time_plain(root: Path, jobs: list, workers: int) -> float:
    started = time.perf_counter()
    if workers == 1:
        for job in jobs:
            run_plain(job, str(root))
    else:
        with ProcessPoolExecutor(workers) as pool:
            list(pool.map(run_plain, jobs, [str(root)] * len(jobs)))
    return time.perf_counter() - started


def time_slope(root: Path, workers: int, *flags: str, only: list[str] | None) -> float:
    from slope.cli import main as slope_main

    selection = [arg for pattern in only or [] for arg in ("--only", pattern)]
    command = ["run", "--project", str(root), "--no-report", "-q", "--force"]
    started = time.perf_counter()
    slope_main([*command, "--workers", str(workers), *selection, *flags])
    return time.perf_counter() - started


def own_code_seconds(root: Path, jobs: list) -> dict[str, float]:
    """Each attempt's seconds in its notebook's cells alone, imports already paid."""
    saved = dict(os.environ)
    os.environ["MPLBACKEND"] = "Agg"
    os.environ["SLOPE_PROJECT_DIR"] = str(root)
    try:
        return _own_code_seconds(root, jobs)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _own_code_seconds(root: Path, jobs: list) -> dict[str, float]:
    import ast

    import matplotlib.pyplot as plt
    from IPython.core.formatters import DisplayFormatter
    from IPython.core.pylabtools import print_figure
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    sources = {}
    for attempt, notebook, parameters in jobs:
        nb = parameterize_notebook(load_notebook_node(notebook), parameters)
        cells = [c.source for c in nb.cells if c.cell_type == "code"]
        sources[attempt] = [
            _compile_cell(ast.parse(s), attempt, i) for i, s in enumerate(cells)
        ]
    formatter = DisplayFormatter()

    seconds: dict[str, float] = {}

    def run_all() -> None:
        for attempt, cells in sources.items():
            folder = root / "own" / attempt
            folder.mkdir(parents=True, exist_ok=True)
            started = time.perf_counter()
            with contextlib.chdir(folder), contextlib.redirect_stdout(io.StringIO()):
                namespace: dict = {"__name__": "__main__"}
                for body, last in cells:
                    exec(body, namespace)
                    shown = eval(last, namespace) if last is not None else None
                    if shown is not None:
                        formatter.format(shown)  # as the kernel shows Out[n]
                    for number in plt.get_fignums():
                        print_figure(plt.figure(number), "png", bbox_inches="tight")
                    plt.close("all")
            seconds[attempt] = time.perf_counter() - started

    run_all()  # imports and first-use caches, as a forked kernel has them
    run_all()
    return seconds


def _compile_cell(tree, attempt: str, index: int):
    """A cell's code, and its last expression apart: the kernel displays its value."""
    import ast

    name = f"{attempt}[{index}]"
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = compile(ast.Expression(tree.body.pop().value), name, "eval")
    return compile(tree, name, "exec"), last


def steady_overhead(root: Path, own: dict[str, float]) -> float:
    """Median over attempts of a forked run's seconds beyond its own code."""
    import statistics

    beyond = [
        json.loads(record.read_text())["duration_s"] - own[record.parent.name]
        for record in (root / "runs").glob("*/run.json")
    ]
    return statistics.median(beyond)


def runs_agree(cold: Path, fast: Path) -> tuple[int, list[str]]:
    """How many attempts the two runs share, and those whose results differ."""
    differ, compared = [], 0
    for record in sorted((cold / "runs").glob("*/run.json")):
        other = fast / "runs" / record.parent.name / "run.json"
        before, after = json.loads(record.read_text()), json.loads(other.read_text())
        compared += 1
        same_model = (before["model"] or {}).get("sha256") == (
            after["model"] or {}
        ).get("sha256")
        if before["scores"] != after["scores"] or not same_model:
            differ.append(record.parent.name)
    return compared, differ


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", help="attempt ids or globs")
    parser.add_argument(
        "--skip-plain", action="store_true", help="skip plain papermill"
    )
    args = parser.parse_args()
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        roots = {mode: copy_example(tmp / mode) for mode in ("plain", "cold", "fast")}
        jobs = attempt_jobs(roots["plain"], args.only)
        n = len(jobs)
        python = sys.version.split()[0]
        print(f"{n} attempts of the example, {os.cpu_count()} cores, Python {python}")

        seconds = {}
        if not args.skip_plain:
            seconds["plain papermill", 1] = time_plain(roots["plain"], jobs, 1)
            seconds["plain papermill", 2] = time_plain(roots["plain"], jobs, 2)
        steady = None
        for workers in (1, 2):
            seconds["slope, cold kernels", workers] = time_slope(
                roots["cold"], workers, "--cold-kernels", only=args.only
            )
            seconds["slope, forked kernels", workers] = time_slope(
                roots["fast"], workers, only=args.only
            )
            if workers == 1:
                own_each = own_code_seconds(roots["fast"], jobs)
                steady = steady_overhead(roots["fast"], own_each)
        own = sum(own_each.values()) / n

        print(f"\n{'seconds per attempt':<26}{'serial':>9}{'2 workers':>11}")
        for label in dict.fromkeys(key[0] for key in seconds):
            one, two = seconds[label, 1] / n, seconds[label, 2] / n
            print(f"{label:<26}{one:>9.2f}{two:>11.2f}")

        fast = seconds["slope, forked kernels", 1] / n
        print(f"\nthe notebooks' own code: {own:.2f} s per attempt")
        print(
            f"forked kernels, serial, cost beyond it: {fast - own:.2f} s per attempt "
            f"over the whole run, {steady:.2f} s for the median attempt once the "
            "fork server is up (target < 0.3 s)"
        )
        if not args.skip_plain:
            baseline = seconds["plain papermill", 1]
            for workers in (1, 2):
                ratio = baseline / seconds["slope, forked kernels", workers]
                print(
                    f"whole example, forked kernels, {workers} worker(s): {ratio:.1f} "
                    "times faster than plain papermill serial (target >= 5)"
                )
        compared, differ = runs_agree(roots["cold"], roots["fast"])
        verdict = "identical" if not differ else f"DIFFERENT for {', '.join(differ)}"
        print(
            f"scores and model hashes, cold vs forked, {compared} attempts: {verdict}"
        )


if __name__ == "__main__":
    main()
