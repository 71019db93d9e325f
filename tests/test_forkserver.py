"""Forked kernels: the same runs as cold ones, nothing shared, nothing left behind."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from conftest import fork_servers_of, kernel_processes_in, wait_for

from slope.cli import main
from slope.fastkernel.client import ForkServer, fast_path_refusal

pytestmark = pytest.mark.slow

REPO = Path(__file__).parent.parent
SCENARIO_ATTEMPTS = {
    "good": "notebook: scores.ipynb\nparameters: {value: 0.75}\n",
    "model": "notebook: tiny_model.ipynb\nparameters: {C: 0.5}\n",
    "raises": "notebook: raises.ipynb\n",
    "dies": "notebook: kernel_dies.ipynb\n",
    "sleepy": "notebook: sleeps.ipynb\ntimeout: 3\n",
    "silent": "notebook: no_score.ipynb\n",
    "exits": "notebook: sys_exit.ipynb\n",
    "magic": "notebook: bad_magic.ipynb\n",
    "nokernel": "notebook: no_kernelspec.ipynb\n",
    "echo": "notebook: echo_text.ipynb\n"
    "parameters: {text: 'héllo \"x\"', n_estimators: 7}\n",
    "html": "notebook: html_output.ipynb\nparameters: {label: '<b>x</b>'}\n",
    "state": "notebook: kernel_state.ipynb\n",
}
STATE_CODE = r"""
import faulthandler, gc, json, locale, logging, os, re, signal, sys, threading, warnings
import numpy as np, pandas as pd, scipy.stats, seaborn, sklearn.linear_model
import matplotlib
import matplotlib.pyplot as plt
import slope
from pandas._config.config import _registered_options as pandas_options

ip = get_ipython()
here = os.getcwd()

def files():
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("/") and not target.startswith(("/dev/", "/proc/")):
            found.append(target.replace(here, "<run>"))
    return sorted(found)

state = {
    "sys.path": [p.replace(here, "<run>") for p in sys.path],
    "sys.argv": [sys.argv[0]] + [a for a in sys.argv[1:] if not a.endswith(".json")],
    "sys.orig_argv": sys.orig_argv[:3],
    "environ": {k: v for k, v in os.environ.items() if k != "JPY_PARENT_PID"},
    "backend": matplotlib.get_backend(),
    "rcParams": {k: str(v) for k, v in matplotlib.rcParams.items() if k != "backend"},
    "interactive": plt.isinteractive(),
    "hooks": {
        event: sorted(f.__qualname__ for f in ip.events.callbacks[event])
        for event in ("post_execute", "post_run_cell", "pre_run_cell")
    },
    "formats": sorted(ip.display_formatter.active_types),
    "signals": {
        s.name: repr(signal.getsignal(s))
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGPIPE, signal.SIGCHLD)
    },
    "threads": sorted(re.sub(r"-[0-9]+", "", t.name) for t in threading.enumerate()),
    "warnings": sorted(map(str, warnings.filters)),
    "session leader": os.getsid(0) == os.getpid(),
    "open files": files(),
    "folders IPython noted": [
        str(p).replace(here, "<run>") for p in [ip.starting_dir, *ip.user_ns["_dh"]]
    ],
    "user namespace": sorted(k for k in ip.user_ns if not k.startswith("_")),
    "np.geterr": np.geterr(),
    "gc": [gc.isenabled(), gc.get_threshold()],
    "faulthandler": faulthandler.is_enabled(),
    "root logger": [logging.getLogger().level, len(logging.getLogger().handlers)],
    "stdio": [type(sys.stdout).__name__, type(sys.stderr).__name__],
    "flags": str(sys.flags),
    "locale": locale.setlocale(locale.LC_ALL),
    "pandas options": {k: str(pd.get_option(k)) for k in pandas_options},
    "sklearn config": sorted(sklearn.get_config().items(), key=str),
}
print(json.dumps(state, sort_keys=True, default=str))
"""
LEAK_SET = r"""
import json, os, random
import numpy as np
import matplotlib.pyplot as plt
json.LEAKED = True
LEAKED_GLOBAL = 1
np.random.seed(1234)
random.seed(1234)
figure = plt.figure()
kept_open = open("kept_open.txt", "w")
os.environ["LEAKED_VARIABLE"] = "1"
os.chdir("/")
"""
LEAK_CHECK = r"""
import json, os, random
import numpy as np
import matplotlib.pyplot as plt
import slope

fresh_numpy, fresh_python = np.random.random(), random.random()
np.random.seed(1234)
seeded = np.random.random()
random.seed(1234)
seeded_py = random.random()
np.random.seed(None)
open_files = []
for fd in os.listdir("/proc/self/fd"):
    try:
        open_files.append(os.readlink(f"/proc/self/fd/{fd}"))
    except OSError:
        pass  # the listing's own descriptor
slope.record_scores(
    accuracy=1.0,
    module_attribute_gone=float(not hasattr(json, "LEAKED")),
    global_gone=float("LEAKED_GLOBAL" not in globals()),
    no_figures=float(plt.get_fignums() == []),
    no_open_file=float(not any(f.endswith("kept_open.txt") for f in open_files)),
    environ_clean=float("LEAKED_VARIABLE" not in os.environ),
    cwd_is_run=float(os.path.basename(os.getcwd()) != ""),
    numpy_draw=float(fresh_numpy != seeded),
    numpy_value=float(fresh_numpy),
    python_value=fresh_python,
    python_seeded=seeded_py,
)
"""
FAKE_KERNELS = {
    # Another language (a Python kernel in disguise, so that it can run cold).
    "otherlang": {"language": "otherlang", "argv": ["-m", "ipykernel_launcher"]},
    # Python, but not the command the fork server stands for.
    "python-x": {
        "language": "python",
        "argv": ["-X", "utf8", "-m", "ipykernel_launcher"],
    },
}


def run(root: Path, *args: str) -> int:
    return main(["run", "--project", str(root), "--no-report", *args])


def run_record(root: Path, attempt: str) -> dict:
    return json.loads((root / "runs" / attempt / "run.json").read_text())


def notebook(cells: list[str], kernel: str = "python3"):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": kernel,
        "display_name": kernel,
        "language": "python",
    }
    parameters = nbformat.v4.new_code_cell("output_dir = None")
    parameters.metadata["tags"] = ["parameters"]
    nb.cells = [parameters, *(nbformat.v4.new_code_cell(c) for c in cells)]
    return nb


def write_extra_notebooks(root: Path) -> None:
    figure = (
        "fig, ax = plt.subplots(figsize=(2, 2))\nax.plot([1, 3, 2])\nax.set_title('t')"
    )
    extra = {
        "kernel_state.ipynb": notebook(
            [STATE_CODE, figure, "import slope\nslope.record_scores(accuracy=1.0)"]
        ),
        "leak_set.ipynb": notebook([LEAK_SET]),
        "leak_check.ipynb": notebook([LEAK_CHECK]),
    }
    for kernel in FAKE_KERNELS:
        # The notebook's language is papermill's, to write the parameters in.
        extra[f"{kernel}.ipynb"] = notebook(
            ["import sys, slope\nslope.record_scores(accuracy=1.0)"], kernel
        )
    for name, nb in extra.items():
        nbformat.write(nb, root / "notebooks" / name)


def write_tiny_data(root: Path) -> None:
    (root / "data").mkdir(exist_ok=True)
    rows = "\n".join(f"{i},{i % 3},{int(i > 9)}" for i in range(20))
    (root / "data" / "tiny.csv").write_text("x1,x2,label\n" + rows + "\n")


def outputs_that_matter(path: Path) -> list[list[tuple]]:
    """Each cell's outputs without times, ids and counts: what a reader sees."""
    nb = json.loads(path.read_text())
    cells = []
    for cell in nb["cells"]:
        shown = []
        for output in cell.get("outputs", []):
            kind = output["output_type"]
            if kind == "stream":
                shown.append((kind, output["name"], "".join(output["text"])))
            elif kind == "error":
                shown.append((kind, output["ename"], output["evalue"]))
            else:
                data = {
                    k: "".join(v) if isinstance(v, list) else v
                    for k, v in output["data"].items()
                }
                shown.append((kind, json.dumps(data, sort_keys=True)))
        cells.append(shown)
    return cells


def the_same_run(cold: Path, fast: Path, attempt: str) -> None:
    before, after = run_record(cold, attempt), run_record(fast, attempt)
    assert before["status"] == after["status"], attempt
    assert before["scores"] == after["scores"], attempt
    strip = lambda e: e and {k: e[k] for k in ("ename", "evalue", "cell")}  # noqa: E731
    assert strip(before["error"]) == strip(after["error"]), attempt
    assert (before["model"] or {}).get("sha256") == (after["model"] or {}).get(
        "sha256"
    ), attempt
    assert outputs_that_matter(
        cold / "runs" / attempt / "notebook.ipynb"
    ) == outputs_that_matter(fast / "runs" / attempt / "notebook.ipynb"), attempt


@pytest.fixture(scope="module")
def scenarios(tmp_path_factory):
    """The scenario notebooks, run once on cold kernels and once on forked ones."""
    from conftest import write_project

    roots = {}
    for mode in ("cold", "fast"):
        root = write_project(
            tmp_path_factory.mktemp(mode) / "project", SCENARIO_ATTEMPTS
        )
        write_tiny_data(root)
        write_extra_notebooks(root)
        flags = ["--cold-kernels"] if mode == "cold" else []
        run(root, "--workers", "2", *flags)
        roots[mode] = root
    return roots["cold"], roots["fast"]


@pytest.mark.parametrize("attempt", sorted(set(SCENARIO_ATTEMPTS) - {"state"}))
def test_a_forked_kernel_gives_the_cold_kernels_run(scenarios, attempt):
    cold, fast = scenarios

    the_same_run(cold, fast, attempt)

    assert run_record(cold, attempt)["kernel_path"] == "cold"
    assert run_record(fast, attempt)["kernel_path"] == "fork"


def test_a_forked_kernel_looks_like_a_cold_one_from_inside(scenarios):
    cold, fast = scenarios

    def state(root):
        cell = json.loads((root / "runs" / "state" / "notebook.ipynb").read_text())[
            "cells"
        ][2]
        text = "".join(cell["outputs"][0]["text"]).replace(str(root), "<project>")
        # Kernels write to their worker's log, or to the shared fork server's.
        return json.loads(re.sub(r"worker-[0-9]+\.log|fork-server\.log", "<log>", text))

    before, after = state(cold), state(fast)

    assert {k: v for k, v in after.items() if before.get(k) != v} == {}
    assert before["session leader"] and before["backend"].endswith("backend_inline")
    assert after["open files"] == ["<project>/runs/.logs/<log>"]  # stderr
    assert before["folders IPython noted"] == ["<run>", "<run>"]
    # It ran last on its worker: a spare kernel, forked ahead and held.
    assert run_record(fast, "state")["kernel_spare"]


def test_the_status_of_each_ending_is_kept(scenarios):
    _, fast = scenarios

    statuses = {
        a: run_record(fast, a)["status"]
        for a in ("good", "raises", "dies", "sleepy", "exits")
    }

    assert statuses == {
        "good": "ok",
        "raises": "failed",
        "dies": "kernel_died",
        "sleepy": "timeout",
        "exits": "failed",
    }
    assert run_record(fast, "sleepy")["duration_s"] < 20


def test_no_process_is_left_behind(scenarios):
    for root in scenarios:
        assert kernel_processes_in(root / "runs") == []
        assert fork_servers_of(root) == []


@pytest.fixture(scope="module")
def one_worker(tmp_path_factory):
    """Attempts that try to leave state behind, then attempts that look for it."""
    from conftest import write_project

    attempts = {
        "a-set": "notebook: leak_set.ipynb\n",
        "b-check": "notebook: leak_check.ipynb\n",
        "c-set": "notebook: leak_set.ipynb\n",
        "d-check": "notebook: leak_check.ipynb\n",
    }
    root = write_project(
        tmp_path_factory.mktemp("leaks") / "project", attempts, notebooks=[]
    )
    write_extra_notebooks(root)
    code = run(root, "--workers", "1")
    return root, code


def test_nothing_leaks_from_one_attempt_to_the_next(one_worker):
    root, _ = one_worker

    for attempt in ("b-check", "d-check"):
        record = run_record(root, attempt)
        assert (record["status"], record["kernel_path"]) == ("ok", "fork")
        checks = {
            k: v
            for k, v in record["scores"].items()
            if not k.endswith(("_value", "_seeded"))
        }
        assert len(checks) == 8
        assert checks == dict.fromkeys(checks, 1.0), attempt


def test_each_forked_kernel_draws_fresh_random_numbers(one_worker):
    root, _ = one_worker

    first, second = (
        run_record(root, "b-check")["scores"],
        run_record(root, "d-check")["scores"],
    )

    assert first["numpy_value"] != second["numpy_value"]
    assert first["python_value"] != second["python_value"]
    assert first["python_seeded"] == second["python_seeded"]  # seeding still works


@pytest.fixture
def fake_kernels(tmp_path, monkeypatch):
    """Kernels named in notebooks that the fork server does not hold."""
    for name, spec in FAKE_KERNELS.items():
        folder = tmp_path / "jupyter" / "kernels" / name
        folder.mkdir(parents=True)
        argv = [sys.executable, *spec["argv"], "-f", "{connection_file}"]
        kernel = {"argv": argv, "display_name": name, "language": spec["language"]}
        (folder / "kernel.json").write_text(json.dumps(kernel))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))


def test_a_kernel_the_server_cannot_fork_starts_cold_and_says_why(
    make_project, fake_kernels, capsys
):
    root = make_project(
        {
            "lang": "notebook: otherlang.ipynb\n",
            "flags": "notebook: python-x.ipynb\n",
        },
        notebooks=[],
    )
    write_extra_notebooks(root)

    assert run(root, "--workers", "1") == 0

    lang, flags = run_record(root, "lang"), run_record(root, "flags")
    assert (lang["status"], lang["kernel_path"]) == ("ok", "cold")
    assert "runs otherlang, not Python" in lang["kernel_path_reason"]
    assert (flags["status"], flags["kernel_path"]) == ("ok", "cold")
    assert "not ipykernel_launcher" in flags["kernel_path_reason"]
    assert (
        "lang: cold kernel: the kernel 'otherlang' runs otherlang"
        in capsys.readouterr().err
    )


def test_an_unknown_kernel_fails_as_it_does_cold(make_project):
    root = make_project({"ghost": "notebook: ghost.ipynb\n"}, notebooks=[])
    nbformat.write(
        notebook(["print(1)"], kernel="no-such-kernel"),
        root / "notebooks" / "ghost.ipynb",
    )

    assert run(root) == 1

    record = run_record(root, "ghost")
    assert record["error"]["ename"] == "NoSuchKernel"
    assert record["kernel_path"] == "cold"
    assert "not installed" in record["kernel_path_reason"]


def test_a_killed_worker_takes_its_fork_server_and_kernel_along(tmp_path):
    script = (
        "from slope.fastkernel import fast_kernel_options\n"
        "report = {}\n"
        "options = fast_kernel_options(report, 'python3')\n"
        "print(report['path'], flush=True)\n"
        "import time; time.sleep(3600)\n"
    )
    env = {**os.environ, "SLOPE_PROJECT_DIR": str(tmp_path)}
    worker = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, env=env, text=True
    )
    assert worker.stdout.readline().strip() == "fork"
    assert len(fork_servers_of(tmp_path)) == 1

    worker.kill()
    worker.wait()

    wait_for(lambda: fork_servers_of(tmp_path) == [], seconds=10)


def test_a_shared_server_kills_the_kernels_of_whoever_left(tmp_path):
    path = str(tmp_path / "fork.sock")
    owner = ForkServer(preload=[]).start(listen=path)
    try:
        worker = ForkServer.connect(path)
        assert worker.wait_ready()["pid"] == owner.process.pid
        assert worker.env == owner.env  # what its kernels must match
        launcher = [worker.executable, "-m", "ipykernel_launcher", "-f"]
        pid = worker.fork([*launcher, str(tmp_path / "k.json")], str(tmp_path), {})
        assert owner.poll(pid) is None  # any connection may ask after any kernel

        worker.close()  # as when a worker dies

        wait_for(lambda: owner.poll(pid) is not None, seconds=10)
        assert owner.poll(pid) == -signal.SIGKILL
    finally:
        owner.close()
    assert owner.process is None and not Path(path).exists()


def test_a_server_still_importing_is_stopped_at_once():
    server = ForkServer(preload=["sklearn.ensemble", "seaborn"]).start()
    process = server.process

    server.close()

    assert process.returncode == -signal.SIGKILL  # not a wait for its imports


def test_the_workers_of_a_run_share_one_fork_server(make_project):
    root = make_project(
        {name: "notebook: sleeps.ipynb\n" for name in ("001-a", "002-b")}
    )
    command = [sys.executable, "-m", "slope", "run", "--project", str(root)]
    process = subprocess.Popen([*command, "--workers", "2", "--no-report"])

    def kernels() -> set[int]:
        # Forked and in the runs' folder: spare kernels wait elsewhere.
        return set(kernel_processes_in(root / "runs")) & set(fork_servers_of(root))

    try:
        wait_for(lambda: len(kernels()) == 2, seconds=90)
        found = fork_servers_of(root)
        parents = {pid: _parent(pid) for pid in found}
        servers = [pid for pid in found if parents[pid] not in found]
        assert len(servers) == 1
        assert parents[servers[0]] == process.pid
        assert {parents[pid] for pid in kernels()} == set(servers)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    wait_for(lambda: fork_servers_of(root) == [], seconds=10)


def _parent(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def test_the_server_refuses_what_it_cannot_start():
    server = ForkServer(preload=[])
    launcher = [server.executable, "-m", "ipykernel_launcher", "-f", "k.json"]

    assert fast_path_refusal(launcher, dict(server.env), server) is None
    assert "not ipykernel_launcher" in fast_path_refusal(
        ["R", "--slave"], server.env, server
    )
    other = ["/usr/bin/python3", *launcher[1:]]
    assert "the fork server " in fast_path_refusal(other, server.env, server)
    changed = {**server.env, "OMP_NUM_THREADS": "64"}
    assert "differs from the fork server's in OMP_NUM_THREADS" in fast_path_refusal(
        launcher, changed, server
    )


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    """The example project, every attempt, run cold and forked on two workers."""
    roots = {}
    for mode in ("cold", "fast"):
        root = tmp_path_factory.mktemp(f"example-{mode}") / "project"
        for folder in ("params", "data"):
            shutil.copytree(REPO / folder, root / folder)
        (root / "notebooks").mkdir()
        for name in ("train.ipynb", "bill_ratio.ipynb"):
            shutil.copy(REPO / "notebooks" / name, root / "notebooks" / name)
        flags = ["--cold-kernels"] if mode == "cold" else []
        roots[mode] = (root, run(root, "--workers", "2", *flags))
    return roots["cold"], roots["fast"]


def test_the_example_gives_the_same_scores_models_and_outputs(example):
    (cold, cold_code), (fast, fast_code) = example
    attempts = sorted(
        p.stem for p in (cold / "params").glob("*.yaml") if p.stem != "project"
    )

    for attempt in attempts:
        the_same_run(cold, fast, attempt)
        assert run_record(fast, attempt)["kernel_path"] == "fork"
    assert cold_code == fast_code == 0
    assert (cold / "runs" / attempts[-1] / "model.joblib").read_bytes() == (
        fast / "runs" / attempts[-1] / "model.joblib"
    ).read_bytes()


def test_without_fork_the_kernel_starts_cold_and_says_why(monkeypatch):
    import slope.fastkernel as fastkernel

    monkeypatch.setattr(fastkernel.client.sys, "platform", "darwin")
    report: dict = {}

    assert fastkernel.fast_kernel_options(report, "python3") == {}
    assert report == {
        "path": "cold",
        "reason": "fork servers run on Linux only, not darwin",
    }


def test_a_forked_kernel_that_fails_to_start_is_forked_again_then_cold(
    monkeypatch, tmp_path
):
    import slope.execute as execute

    paths = []

    def options(report, kernel_name):
        report.update(path="fork", reason=None)
        return {"forked": True}

    def run_papermill(job, parameters, staging, engine_kwargs):
        paths.append("fork" if engine_kwargs else "cold")
        if len(paths) < int(job["attempt"]):
            return "kernel_start_failed", None
        return "ok", None

    monkeypatch.setattr(execute, "fast_kernel_options", options)
    monkeypatch.setattr(execute, "_run_papermill", run_papermill)
    job = {"kernel": "python3", "parameters": {}, "metric": "accuracy"}

    ran = {}
    for succeeds_on in ("2", "3"):
        paths.clear()
        staging = tmp_path / succeeds_on
        result = execute.execute_attempt(
            {**job, "attempt": succeeds_on, "staging": str(staging)}
        )
        ran[succeeds_on] = (list(paths), result["kernel_path"])

    assert ran["2"] == (["fork", "fork"], "fork")
    assert ran["3"] == (["fork", "fork", "cold"], "cold")
