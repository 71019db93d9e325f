"""Benchmark the prediction API against the model alone and a minimal FastAPI app.

Trains two pipelines that predict a penguin's sex, writes each into a run
folder as the engine would, then measures one record at a time:

- ``scaled``: the four measurements, scaled, into a logistic regression; the
  kind of pipeline the issue's reference figures were measured with;
- ``one-hot``: the pipeline of the tests, imputing and scaling the numbers and
  one-hot encoding species and island in a ColumnTransformer. scikit-learn
  alone takes a few milliseconds on one row of it (pandas indexing and
  validation in each step), which no server can win back.

For each pipeline:

- the model called in-process (``model.predict`` on a one-row frame);
- a minimal FastAPI app that only parses JSON and calls the model;
- slope's app, with all of its validation on;
- slope's validation alone, in-process (parse, check, build the frame);

both apps served by uvicorn on 127.0.0.1, each over one keep-alive connection.
The three are called in turn, one request each, so that a busy machine slows
them alike. Prints p50 and p99 latency, requests per second (one client, one
request at a time), and the ratios. Every loop stops after MAX_SECONDS.

    python bench/bench_api.py [--requests 1000] [--pipeline scaled]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from fastapi import FastAPI, Request

ROOT = Path(__file__).resolve().parents[1]
PENGUIN = {
    "species": "Adelie",
    "island": "Torgersen",
    "bill_length_mm": 39.1,
    "bill_depth_mm": 18.7,
    "flipper_length_mm": 181.0,
    "body_mass_g": 3750.0,
    "year": 2007,
}
NUMBERS = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
PIPELINES = ("scaled", "one-hot")
MAX_SECONDS = 60.0


def penguins_path() -> Path:
    local = ROOT / "data" / "penguins.csv"
    if local.is_file():
        return local
    import palmerpenguins

    return Path(palmerpenguins.__file__).parent / "data" / "penguins.csv"


def make_project(root: Path, pipeline: str) -> Path:
    """Write a project with one ok run of the pipeline; return its run folder."""
    from sklearn.compose import make_column_transformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from slope.model import file_sha256, save_model

    frame = pd.read_csv(penguins_path()).dropna(subset=["sex"])
    X, y = frame[list(record(pipeline))], frame["sex"]
    classifier = LogisticRegression(max_iter=1000)
    if pipeline == "scaled":
        model = make_pipeline(StandardScaler(), classifier)
    else:
        columns = make_column_transformer(
            (make_pipeline(SimpleImputer(), StandardScaler()), [*NUMBERS, "year"]),
            (OneHotEncoder(handle_unknown="ignore"), ["species", "island"]),
        )
        model = make_pipeline(columns, classifier)
    model.fit(X, y)

    (root / "params").mkdir(parents=True)
    (root / "params" / "project.yaml").write_text("metric: accuracy\n")
    folder = root / "runs" / "002-logistic"
    model_file = save_model(model, X, folder)
    run = {
        "attempt": "002-logistic",
        "status": "ok",
        "date": "2026-11-12T10:30:00+00:00",
        "scores": {"accuracy": 0.9},
        "model": {"file": model_file.name, "sha256": file_sha256(model_file)},
    }
    (folder / "run.json").write_text(json.dumps(run))
    return folder


def record(pipeline: str) -> dict[str, object]:
    """The penguin as the pipeline takes it: its measurements, or every field."""
    if pipeline == "scaled":
        return {name: PENGUIN[name] for name in NUMBERS}
    return PENGUIN


def minimal_app(folder: Path):
    """The reference: a FastAPI app that only parses JSON and calls the model."""
    import joblib

    model = joblib.load(folder / "model.joblib")
    app = FastAPI()

    @app.post("/predict")
    async def predict(request: Request):
        row = await request.json()
        return {"prediction": model.predict(pd.DataFrame([row])).tolist()}

    return app


def time_round_robin(calls: dict[str, Callable[[], None]], n: int) -> dict:
    """Time n calls of each, one of each in turn, so that load hits all alike.

    Stops early after MAX_SECONDS; returns the seconds of each call, by name.
    """
    for call in calls.values():
        for _ in range(min(50, n)):
            call()
    times: dict[str, list[float]] = {name: [] for name in calls}
    deadline = time.perf_counter() + MAX_SECONDS
    for _ in range(n):
        if time.perf_counter() > deadline:
            break
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    return times


def call_in_process(folder: Path, row: dict) -> Callable[[], None]:
    import joblib

    model = joblib.load(folder / "model.joblib")
    return lambda: model.predict(pd.DataFrame([row]))


def call_validation(project: Path, row: dict) -> Callable[[], None]:
    """Return slope's own work on one request, in-process: parse, check, frame."""
    from slope.api import Predictor
    from slope.project import load_project
    from slope.serve import load_served_run, select_run

    served = load_served_run(select_run(load_project(project)))
    predictor = Predictor(served, max_records=1000)
    body = json.dumps(row).encode()
    return lambda: predictor.to_frame(predictor.parse(body)[0])


def calibrate() -> float:
    """Return the milliseconds of a plain Python loop, to compare machines."""
    start = time.perf_counter()
    for _ in range(10):
        sum(range(100_000))
    return (time.perf_counter() - start) * 100


def call_server(port: int, row: dict) -> Callable[[], None]:
    """Return a function that posts one penguin over a keep-alive connection."""
    body = json.dumps(row).encode()
    headers = {"content-type": "application/json"}
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def call() -> None:
        connection.request("POST", "/predict", body, headers)
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"port {port} answered {response.status}")

    return call


def start_server(kind: str, project: Path) -> tuple[subprocess.Popen, int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, __file__, "--serve", kind, str(project), str(port)]
    server = subprocess.Popen(command, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the {kind} server exited with {server.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server, port
        except OSError:
            time.sleep(0.1)
    server.terminate()
    raise RuntimeError(f"the {kind} server did not start within 60 s")


def run_server(kind: str, project: Path, port: int) -> None:
    import uvicorn

    from slope.api import create_app

    if kind == "slope":
        app = create_app(project)
    else:
        app = minimal_app(project / "runs" / "002-logistic")
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def summarize(times: list[float]) -> dict[str, float]:
    ms = np.array(times) * 1e3
    return {
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "rps": len(times) / float(np.sum(times)),
        "n": len(times),
    }


def measure(pipeline: str, n: int) -> dict[str, dict[str, float]]:
    row = record(pipeline)
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        folder = make_project(project, pipeline)
        servers = {kind: start_server(kind, project) for kind in ("minimal", "slope")}
        try:
            calls = {
                "in-process": call_in_process(folder, row),
                "validation": call_validation(project, row),
            }
            calls.update(
                (kind, call_server(port, row)) for kind, (_, port) in servers.items()
            )
            times = time_round_robin(calls, n)
        finally:
            for server, _ in servers.values():
                server.terminate()
                server.wait(timeout=10)
    return {kind: summarize(seconds) for kind, seconds in times.items()}


def report(pipeline: str, figures: dict[str, dict[str, float]]) -> None:
    print(f"pipeline {pipeline!r}, one penguin per request")
    print(f"{'':12} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8} {'n':>6}")
    for kind, row in figures.items():
        print(
            f"{kind:12} {row['p50_ms']:8.3f} {row['p99_ms']:8.3f} "
            f"{row['rps']:8.0f} {row['n']:6.0f}"
        )
    slope, minimal = figures["slope"], figures["minimal"]
    in_process = figures["in-process"]
    print(f"slope p50 / in-process p50: {slope['p50_ms'] / in_process['p50_ms']:.2f}")
    print(f"slope p50 / minimal p50:    {slope['p50_ms'] / minimal['p50_ms']:.2f}")
    ratio = slope["rps"] / minimal["rps"]
    print(f"slope req/s / minimal req/s: {ratio:.2f} (target >= 0.80)")
    overhead = slope["p50_ms"] - in_process["p50_ms"]
    print(
        f"slope p50 {slope['p50_ms']:.3f} ms (target < 2 ms for one penguin), "
        f"of which {overhead:.3f} ms beyond the model in-process"
    )
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--pipeline", choices=PIPELINES, action="append")
    parser.add_argument("--serve", nargs=3, metavar=("KIND", "PROJECT", "PORT"))
    args = parser.parse_args()
    if args.serve:
        kind, project, port = args.serve
        run_server(kind, Path(project), int(port))
        return
    for pipeline in args.pipeline or PIPELINES:
        report(pipeline, measure(pipeline, min(args.requests, 5000)))
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"sum(range(100_000)) takes {calibrate():.2f} ms here")


if __name__ == "__main__":
    main()
