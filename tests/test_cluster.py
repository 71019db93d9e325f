"""Running attempts on a Dask cluster of two local worker processes.

One cluster, started as ``--scheduler local`` starts it, serves every test
through its ``tcp://`` address: its workers start their fork servers once.
"""

from __future__ import annotations

import json
import shutil
import sys
import threading
import time
from pathlib import Path

import nbformat
import pytest
from conftest import processes_whose_cwd, wait_for

from slope.cli import main

distributed = pytest.importorskip("distributed")

ATTEMPTS = {
    "01-good": "notebook: scores.ipynb\ndate: 2026-11-01\nparameters: {value: 0.75}\n",
    "02-raises": "notebook: raises.ipynb\ndate: 2026-11-02\n",
    "03-sleepy": "notebook: sleeps.ipynb\ndate: 2026-11-03\ntimeout: 3\n",
    "04-model": "notebook: tiny_model.ipynb\ndate: 2026-11-04\n",
}
# What differs between two runs of one attempt, wherever they ran.
RUN_DETAILS = (
    "started",
    "ended",
    "duration_s",
    "fork_server_wait_s",
    "kernel_starts",
    "kernel_path",
    "kernel_spare",
)
# A Dask worker started by a nanny runs multiprocessing's spawn_main.
KILL_THE_WORKER = """\
import psutil
for process in psutil.Process().parents():
    if any("spawn_main" in part for part in process.cmdline()):
        process.kill()
"""


def run(root: Path, *args: str) -> int:
    return main(["run", "--project", str(root), "--no-report", *args])


def run_record(root: Path, attempt: str) -> dict:
    return json.loads((root / "runs" / attempt / "run.json").read_text())


def history(root: Path) -> list[dict]:
    lines = (root / "runs" / "history.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def comparable(record: dict) -> dict:
    """A run record without what depends on when and where it ran."""
    kept = {k: v for k, v in record.items() if not k.startswith(RUN_DETAILS)}
    if kept["error"]:
        kept["error"] = {k: kept["error"][k] for k in ("ename", "evalue", "cell")}
    return kept


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    """The backend of ``--scheduler local --workers 2``, kept for the module."""
    from conftest import write_project

    from slope.cluster import DaskBackend
    from slope.project import load_project

    root = write_project(tmp_path_factory.mktemp("backend") / "project", {})
    backend = DaskBackend(load_project(root), "local", workers=2)
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def both(tmp_path_factory, backend):
    """The same project run locally and on the cluster."""
    from conftest import write_project

    base = tmp_path_factory.mktemp("cluster")
    local = write_project(base / "local", ATTEMPTS)
    (local / "data").mkdir()
    rows = "\n".join(f"{i},{i % 3},{int(i > 9)}" for i in range(20))
    (local / "data" / "tiny.csv").write_text("x1,x2,label\n" + rows + "\n")
    dask_root = shutil.copytree(local, base / "dask")

    codes = {"local": run(local, "--workers", "1")}  # one fork server to warm
    codes["dask"] = run(dask_root, "--scheduler", backend.address)
    return local, dask_root, codes


def test_a_local_cluster_has_one_slot_per_worker_process(backend):
    assert backend.slots == 2
    assert backend.address.startswith("tcp://127.0.0.1:")


def test_a_cluster_run_records_what_a_local_run_does(both):
    local, dask_root, codes = both

    assert codes == {"local": 1, "dask": 1}
    for attempt in ATTEMPTS:
        assert comparable(run_record(dask_root, attempt)) == comparable(
            run_record(local, attempt)
        )


def test_statuses_scores_and_errors_come_home(both):
    _, dask_root, _ = both

    records = {attempt: run_record(dask_root, attempt) for attempt in ATTEMPTS}

    assert {a: r["status"] for a, r in records.items()} == {
        "01-good": "ok",
        "02-raises": "failed",
        "03-sleepy": "timeout",
        "04-model": "ok",
    }
    assert records["01-good"]["scores"] == {
        "accuracy": 0.75,
        "accuracy_std": 0.01,
        "f1": 0.375,
    }
    raised = records["02-raises"]["error"]
    assert (raised["ename"], raised["evalue"], raised["cell"]) == (
        "ValueError",
        "the data has only 10 rows",
        4,
    )
    assert "ran past its timeout of 3 s" in records["03-sleepy"]["error"]["evalue"]
    assert records["03-sleepy"]["duration_s"] < 20


def test_notebooks_and_model_files_come_home(both):
    local, dask_root, _ = both

    folder = dask_root / "runs" / "04-model"
    record = run_record(dask_root, "04-model")

    assert sorted(p.name for p in folder.iterdir()) == sorted(
        p.name for p in (local / "runs" / "04-model").iterdir()
    )
    assert (folder / "model.json").is_file()
    assert record["model"]["sha256"] == run_record(local, "04-model")["model"]["sha256"]
    notebook = nbformat.read(dask_root / "runs" / "02-raises" / "notebook.ipynb", 4)
    assert notebook.cells[4].metadata.papermill.status == "failed"


def test_the_history_has_one_line_per_attempt(both):
    _, dask_root, _ = both

    lines = history(dask_root)

    assert sorted(line["attempt"] for line in lines) == sorted(ATTEMPTS)
    assert list((dask_root / "runs" / ".staging").iterdir()) == []


def test_unchanged_attempts_are_skipped_on_the_cluster_too(both, backend):
    _, dask_root, _ = both

    code = run(dask_root, "--scheduler", backend.address, "--only", "01-good")

    assert code == 1  # 02-raises and 03-sleepy still failed
    assert [line["attempt"] for line in history(dask_root)].count("01-good") == 1


def test_interrupt_cancels_the_job_and_stops_its_kernel(make_project, backend):
    root = make_project({"sleepy": "notebook: sleeps.ipynb\n"})
    job = {
        "attempt": "sleepy",
        "notebook": str(root / "notebooks" / "sleeps.ipynb"),
        "parameters": {},
        "kernel": "python3",
        "timeout": 600,
        "staging": str(root / "runs" / ".staging" / "sleepy"),
        "metric": "accuracy",
        "output_dir": False,
    }
    results = []
    thread = threading.Thread(target=lambda: results.append(backend.execute(job, 900)))
    thread.start()
    wait_for(lambda: kernels_of("sleepy"), seconds=60)

    interrupted = backend.interrupt()
    thread.join(timeout=10)

    assert interrupted == ["sleepy"]
    assert kernels_of("sleepy") == []
    assert not thread.is_alive()
    assert results[0]["error"]["ename"] == "Cancelled"


def test_a_third_start_of_a_lost_attempt_ends_it(backend):
    # A scheduler left at allowed-failures 3 would start the attempt again.
    now = time.monotonic()
    backend.starts["k"] = [(now, "tcp://a:1"), (now, "tcp://b:2"), (now, "tcp://c:3")]

    ended = backend._overdue("k", limit=600, queued=now)
    del backend.starts["k"]

    assert ended["status"] == "kernel_died"
    assert "workers tcp://a:1, tcp://b:2 died" in ended["error"]["evalue"]
    assert "retried 1 time" in ended["error"]["evalue"]


def test_a_lost_worker_gets_one_retry_then_kernel_died(make_project, backend):
    root = make_project({"kills-worker": "notebook: kills_worker.ipynb\n"})
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell("delay = 0", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(KILL_THE_WORKER),
    ]
    notebook.metadata["kernelspec"] = {"name": "python3", "language": "python"}
    nbformat.write(notebook, root / "notebooks" / "kills_worker.ipynb")

    code = run(root, "--scheduler", backend.address)

    record = run_record(root, "kills-worker")
    assert code == 1
    assert (record["status"], record["error"]["ename"]) == ("kernel_died", "WorkerLost")
    assert "retried 1 time" in record["error"]["evalue"]
    assert record["error"]["evalue"].count("tcp://127.0.0.1:") == 2


def test_a_missing_dask_says_how_to_install_it(make_project, monkeypatch, capsys):
    root = make_project({"a": "notebook: scores.ipynb\n"})
    monkeypatch.setitem(sys.modules, "distributed", None)

    code = run(root, "--scheduler", "local")

    assert code == 2
    assert (
        "--scheduler needs Dask: pip install 'slope[dask]'" in capsys.readouterr().err
    )
    assert not (root / "runs" / "a").exists()


def test_a_bad_scheduler_address_is_refused(make_project, capsys):
    root = make_project({"a": "notebook: scores.ipynb\n"})

    code = run(root, "--scheduler", "127.0.0.1:8786")

    assert code == 2
    assert "expected tcp://HOST:PORT" in capsys.readouterr().err


def kernels_of(attempt: str) -> list[int]:
    """Processes running in a Dask worker's folder for this attempt."""
    return processes_whose_cwd(lambda cwd: cwd.name.startswith(f"slope-{attempt}-"))
