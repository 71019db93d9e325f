"""How much slope's runner costs on top of plain papermill, in one run.

Prints three figures (issue 3):

(a) the per-attempt cost of ``run_all.py`` beyond the notebook's own code, as a
    ratio to a plain loop of ``papermill.execute_notebook`` over the same
    notebooks (target: at or below 1.0);
(b) the time of a no-op rerun of 100 unchanged attempts (target: under 2 s);
(c) the speed-up of 2 workers over 1 on CPU-bound attempts.

    python bench/bench_runner.py [--light 6] [--cpu 4]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import papermill

from slope.attempts import load_attempts
from slope.cli import main as slope_main
from slope.project import load_project
from slope.runner import plan_runs
from slope.runs import commit_run, staging_dir

LIGHT = "import slope\nslope.record_scores(accuracy=value)"
CPU = (
    "import slope\n"
    "total = sum(i * i % 7 for i in range(int(work)))\n"
    "slope.record_scores(accuracy=value + total * 0)"
)


def write_project(root: Path, code: str, count: int, work: int = 0) -> Path:
    (root / "params").mkdir(parents=True)
    (root / "notebooks").mkdir()
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(f"value = 0.5\nwork = {work}")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(code)]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, root / "notebooks" / "bench.ipynb")
    (root / "params" / "project.yaml").write_text("metric: accuracy\n")
    for i in range(count):
        text = f"notebook: bench.ipynb\nparameters: {{value: {i / count:.3f}}}\n"
        (root / "params" / f"{i:03d}-attempt.yaml").write_text(text)
    return root


def time_papermill(root: Path, count: int) -> float:
    out = root / "plain"
    out.mkdir()
    started = time.perf_counter()
    for i in range(count):
        papermill.execute_notebook(
            str(root / "notebooks" / "bench.ipynb"),
            str(out / f"{i}.ipynb"),
            parameters={"value": i / count},
            kernel_name="python3",
            progress_bar=False,
        )
    return time.perf_counter() - started


def time_slope(root: Path, *args: str) -> float:
    started = time.perf_counter()
    slope_main(["run", "--project", str(root), "--no-report", "-q", "--force", *args])
    return time.perf_counter() - started


def fake_ok_runs(root: Path) -> None:
    """Record an ok run for every attempt, as if each had run before."""
    project = load_project(root)
    attempts = load_attempts(project)
    plan = plan_runs(project, attempts)
    for attempt in attempts:
        staging = staging_dir(project.runs_dir, attempt.id)
        record = {"attempt": attempt.id, "status": "ok", "scores": {"accuracy": 0.5}}
        record["fingerprint"] = plan.fingerprints[attempt.id]
        commit_run(project.runs_dir, staging, record)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--light", type=int, default=6, help="light attempts for (a)")
    parser.add_argument("--cpu", type=int, default=4, help="CPU-bound attempts for (c)")
    parser.add_argument(
        "--work", type=int, default=30_000_000, help="loop size for (c)"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        light = write_project(tmp / "light", LIGHT, args.light)
        plain = time_papermill(light, args.light) / args.light
        ours = time_slope(light, "--workers", "1") / args.light
        print(
            f"(a) per attempt: papermill {plain:.2f} s, slope {ours:.2f} s, "
            f"ratio {ours / plain:.2f} (target <= 1.0)"
        )

        many = write_project(tmp / "many", LIGHT, 100)
        fake_ok_runs(many)
        command = [
            sys.executable,
            "-m",
            "slope",
            "run",
            "--project",
            str(many),
            "--no-report",
            "-q",
        ]
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        noop = time.perf_counter() - started
        print(f"(b) no-op rerun of 100 unchanged attempts: {noop:.2f} s (target < 2 s)")

        cpu = write_project(tmp / "cpu", CPU, args.cpu, work=args.work)
        one = time_slope(cpu, "--workers", "1")
        two = time_slope(cpu, "--workers", "2")
        print(
            f"(c) {args.cpu} CPU-bound attempts: 1 worker {one:.1f} s, "
            f"2 workers {two:.1f} s, speed-up {one / two:.2f}x"
        )


if __name__ == "__main__":
    main()
