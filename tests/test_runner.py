"""Running attempts with real kernels: statuses, isolation, nothing lost, skipping."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import fork_servers_of, kernel_processes_in, wait_for
from filelock import FileLock

from slope.cli import main

ATTEMPTS = {
    "good": "notebook: scores.ipynb\ndate: 2026-11-01\nparameters: {value: 0.75}\n",
    "raises": "notebook: raises.ipynb\ndate: 2026-11-02\n",
    "dies": "notebook: kernel_dies.ipynb\ndate: 2026-11-03\n",
    "sleepy": "notebook: sleeps.ipynb\ndate: 2026-11-04\ntimeout: 3\n",
    "silent": "notebook: no_score.ipynb\ndate: 2026-11-05\n",
    "exits": "notebook: sys_exit.ipynb\ndate: 2026-11-06\n",
    "magic": "notebook: bad_magic.ipynb\ndate: 2026-11-07\n",
    "nokernel": "notebook: no_kernelspec.ipynb\ndate: 2026-11-08\n",
    "orphans": "notebook: spawns_child.ipynb\ndate: 2026-11-09\ntimeout: 3\n",
    "broken": "notebook: scores.ipynb\nparameters: {valeu: 1}\n",
}


def run(root: Path, *args: str) -> int:
    return main(["run", "--project", str(root), "--no-report", *args])


def history(root: Path) -> list[dict]:
    lines = (root / "runs" / "history.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def run_record(root: Path, attempt: str) -> dict:
    return json.loads((root / "runs" / attempt / "run.json").read_text())


def notebook_cell(root: Path, attempt: str, index: int) -> dict:
    notebook = json.loads((root / "runs" / attempt / "notebook.ipynb").read_text())
    return notebook["cells"][index]


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """One run of every kind of ending, shared by the tests that read it."""
    from conftest import write_project

    root = write_project(tmp_path_factory.mktemp("mixed") / "project", ATTEMPTS)
    code = run(root, "--workers", "2")
    return root, code


def test_each_ending_gets_its_status(mixed):
    root, code = mixed

    statuses = {a: run_record(root, a)["status"] for a in ATTEMPTS if a != "broken"}

    assert code == 1
    assert statuses == {
        "good": "ok",
        "raises": "failed",
        "dies": "kernel_died",
        "sleepy": "timeout",
        "silent": "no_score",
        "exits": "failed",
        "magic": "failed",
        "nokernel": "no_score",
        "orphans": "timeout",
    }


def test_a_failure_names_the_error_and_the_cell(mixed):
    root, _ = mixed

    raised = run_record(root, "raises")["error"]
    exited = run_record(root, "exits")["error"]
    magic = run_record(root, "magic")["error"]

    assert (raised["ename"], raised["evalue"], raised["cell"]) == (
        "ValueError",
        "the data has only 10 rows",
        4,  # after papermill's banners
    )
    assert raised["execution_count"] == 3  # In [3], as the run page says
    assert (
        notebook_cell(root, "raises", 4)["metadata"]["papermill"]["status"] == "failed"
    )
    assert exited["ename"] == "SystemExit" and exited["evalue"] == "3"
    assert magic["ename"] == "ModuleNotFoundError"
    assert "no_such_extension_anywhere" in magic["evalue"]


def test_a_run_without_its_score_says_what_to_call(mixed):
    root, _ = mixed

    error = run_record(root, "silent")["error"]

    assert error["ename"] == "NoScore"
    assert "without recording 'accuracy' (it recorded no scores)" in error["evalue"]
    assert "slope.record_scores(accuracy=...)" in error["evalue"]


def test_partial_notebooks_are_kept(mixed):
    root, _ = mixed

    notebook = json.loads((root / "runs" / "raises" / "notebook.ipynb").read_text())
    executed = [
        c["metadata"].get("papermill", {}).get("status") for c in notebook["cells"]
    ]
    died = json.loads((root / "runs" / "dies" / "notebook.ipynb").read_text())

    assert executed[-1] == "pending"  # the cell after the error never ran
    assert any(
        o.get("ename") == "ValueError"
        for c in notebook["cells"]
        for o in c.get("outputs", [])
    )
    assert run_record(root, "dies")["error"]["cell"] == 2
    assert len(died["cells"]) == 3


def test_a_timeout_stops_at_the_attempts_limit(mixed):
    root, _ = mixed

    record = run_record(root, "sleepy")

    assert record["duration_s"] < 20
    assert "ran past its timeout of 3 s" in record["error"]["evalue"]


def test_scores_and_model_fields_are_recorded(mixed):
    root, _ = mixed

    record = run_record(root, "good")

    assert record["scores"] == {"accuracy": 0.75, "accuracy_std": 0.01, "f1": 0.375}
    assert record["parameters"] == {"value": 0.75}
    assert record["date"] == "2026-11-01T00:00:00+00:00"
    assert record["versions"]["scikit-learn"] and record["versions"]["papermill"]
    assert record["model"] is None  # scores.ipynb saves no model


def test_no_kernel_is_left_behind(mixed):
    root, _ = mixed

    assert kernel_processes_in(root / "runs") == []


def test_the_history_has_one_line_per_execution(mixed):
    root, _ = mixed

    lines = history(root)

    assert sorted(line["attempt"] for line in lines) == sorted(
        set(ATTEMPTS) - {"broken"}
    )
    assert not (root / "runs" / "broken").exists()
    assert list((root / "runs" / ".staging").iterdir()) == []


def test_unchanged_attempts_are_skipped_and_a_change_reruns_only_its_attempt(
    make_project,
):
    root = make_project(
        {
            "a": "notebook: scores.ipynb\nparameters: {value: 0.5}\n",
            "b": "notebook: scores.ipynb\nparameters: {value: 0.6}\n",
        }
    )
    assert run(root) == 0

    assert run(root) == 0
    (root / "params" / "b.yaml").write_text(
        "notebook: scores.ipynb\nparameters: {value: 0.7}\n"
    )
    assert run(root) == 0

    assert [line["attempt"] for line in history(root)][2:] == ["b"]
    assert run_record(root, "b")["scores"]["accuracy"] == 0.7
    assert run_record(root, "b")["fingerprint"] != history(root)[0]["fingerprint"]
    assert (root / "runs" / "b" / "previous" / "run.json").is_file()


def test_a_notebook_or_data_change_reruns_the_attempts_that_use_it(make_project):
    root = make_project(
        {
            "model": "notebook: tiny_model.ipynb\n",
            "other": "notebook: scores.ipynb\n",
        }
    )
    (root / "data").mkdir()
    rows = "\n".join(f"{i},{i % 3},{int(i > 9)}" for i in range(20))
    (root / "data" / "tiny.csv").write_text("x1,x2,label\n" + rows + "\n")
    assert run(root) == 0

    (root / "data" / "tiny.csv").write_text("x1,x2,label\n" + rows + "\n21,1,1\n")
    run(root)
    notebook = root / "notebooks" / "scores.ipynb"
    notebook.write_text(notebook.read_text().replace("f1=value / 2", "f1=value / 3"))
    run(root)

    assert [line["attempt"] for line in history(root)][2:] == ["model", "other"]
    assert run_record(root, "model")["model"]["sha256"]
    assert (root / "runs" / "model" / "model.json").is_file()


def test_force_and_only(make_project):
    root = make_project(
        {name: "notebook: scores.ipynb\n" for name in ("001-a", "002-b", "010-c")}
    )
    assert run(root, "--only", "00*") == 0
    assert run(root, "--only", "010-c", "--force") == 0
    assert run(root, "--force", "--only", "001-a") == 0

    runs = [line["attempt"] for line in history(root)]
    assert sorted(runs[:2]) == ["001-a", "002-b"] and runs[2:] == ["010-c", "001-a"]


def test_a_second_run_all_waits_for_nothing_and_changes_nothing(make_project, capsys):
    root = make_project({"a": "notebook: scores.ipynb\n"})
    (root / "runs").mkdir()

    with FileLock(root / "runs" / ".lock"):
        code = run(root)

    assert code == 2
    assert "another run_all.py is running" in capsys.readouterr().err
    assert sorted(p.name for p in (root / "runs").iterdir()) == [".lock"]


def test_sigterm_stops_the_kernels_and_keeps_earlier_runs(make_project):
    root = make_project(
        {
            "001-first": "notebook: scores.ipynb\n",
            "002-long": "notebook: spawns_child.ipynb\n",
        }
    )
    assert run(root, "--only", "001-first") == 0
    command = [
        sys.executable,
        "-m",
        "slope",
        "run",
        "--project",
        str(root),
        "--no-report",
    ]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)

    wait_for(lambda: len(kernel_processes_in(root / "runs")) >= 2, seconds=60)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)

    assert process.returncode == 130
    assert "interrupted: 002-long" in err
    assert run_record(root, "001-first")["status"] == "ok"
    assert run_record(root, "001-first")["kernel_path"] == "fork"  # the default
    assert not (root / "runs" / "002-long").exists()
    wait_for(lambda: kernel_processes_in(root / "runs") == [], seconds=10)
    wait_for(lambda: fork_servers_of(root) == [], seconds=10)


def test_the_projects_preload_list_reaches_the_workers(make_project, monkeypatch):
    from slope.project import load_project
    from slope.runner import LocalBackend

    monkeypatch.delenv("SLOPE_PRELOAD", raising=False)
    root = make_project({}, project_yaml="metric: accuracy\npreload: [xgboost, a.b]\n")

    backend = LocalBackend(load_project(root), workers=2)
    env = backend.env
    backend.close()

    assert env["SLOPE_PRELOAD"] == "+xgboost,a.b"
    assert env["SLOPE_PROJECT_DIR"] == str(root.resolve())


def test_with_several_workers_the_longest_attempts_start_first(make_project):
    from slope.attempts import load_attempts
    from slope.project import load_project
    from slope.runner import plan_runs

    names = ("001-quick", "002-slow", "003-new", "004-waited")
    root = make_project({name: "notebook: scores.ipynb\n" for name in names})
    assert run(root, "--only", "00[124]*", "--workers", "1") == 0
    took = {"001-quick": (1.0, 0.0), "002-slow": (9.0, 0.0), "004-waited": (8.0, 6.0)}
    for attempt, (seconds, waited) in took.items():
        path = root / "runs" / attempt / "run.json"
        record = json.loads(path.read_text())
        record.update(duration_s=seconds, fork_server_wait_s=waited)
        path.write_text(json.dumps(record))
    project = load_project(root)

    plan = plan_runs(project, load_attempts(project), force=True)

    # Never run first, then by the seconds of their own last time: 2 s for 004
    # once its wait for the fork server's imports is taken off.
    assert [a.id for a in plan.longest_first()] == [
        "003-new",
        "002-slow",
        "004-waited",
        "001-quick",
    ]
    assert [a.id for a in plan.pending] == list(names)  # one worker keeps the order
