"""The prediction API: run selection, trust checks, endpoints and bad requests."""

from __future__ import annotations

import json
import math
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, response_schema_conformance
from sklearn.compose import make_column_transformer
from sklearn.dummy import DummyClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression, RidgeClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from slope.api import MAX_RECORDS, create_app
from slope.exceptions import ModelError, SlopeError
from slope.model import file_sha256, save_model
from slope.project import load_project
from slope.serve import select_run, serve

PENGUINS = Path(__file__).resolve().parents[1] / "data" / "penguins.csv"

NUMBERS = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
CATEGORIES = ["species", "island"]
ISLANDS = ["Biscoe", "Dream", "Torgersen"]
PENGUIN = {
    "species": "Adelie",
    "island": "Torgersen",
    "bill_length_mm": 39.1,
    "bill_depth_mm": 18.7,
    "flipper_length_mm": 181.0,
    "body_mass_g": 3750.0,
    "year": 2007,
}


def read_penguins() -> tuple[pd.DataFrame, pd.Series]:
    frame = pd.read_csv(PENGUINS).dropna(subset=["sex"])
    return frame.drop(columns="sex"), frame["sex"]


def fit_classifier(X: pd.DataFrame, y: pd.Series):
    columns = make_column_transformer(
        (make_pipeline(SimpleImputer(), StandardScaler()), [*NUMBERS, "year"]),
        (OneHotEncoder(handle_unknown="ignore"), CATEGORIES),
    )
    return make_pipeline(columns, LogisticRegression(max_iter=1000)).fit(X, y)


def write_run(
    project: Path,
    attempt: str,
    *,
    score: float | None,
    status: str = "ok",
    model=None,
    X: pd.DataFrame | None = None,
    date: str = "2026-11-12T10:30:00+00:00",
) -> Path:
    """Write ``runs/<attempt>/`` as the engine would, with a model when given."""
    folder = project / "runs" / attempt
    folder.mkdir(parents=True)
    record = None
    if model is not None:
        model_file = save_model(model, X, folder)
        record = {"file": model_file.name, "sha256": file_sha256(model_file)}
    run = {
        "attempt": attempt,
        "status": status,
        "notebook": "train.ipynb",
        "date": date,
        "scores": {} if score is None else {"accuracy": score, "accuracy_std": 0.02},
        "error": None,
        "model": record,
        "versions": {},
        "notes": "",
    }
    (folder / "run.json").write_text(json.dumps(run))
    return folder


def write_project(root: Path, metric: str = "accuracy", greater: bool = True) -> Path:
    (root / "params").mkdir(parents=True)
    (root / "params" / "project.yaml").write_text(
        f"metric: {metric}\ngreater_is_better: {str(greater).lower()}\n"
        "baseline: 001-majority-class\n"
    )
    return root


@pytest.fixture(scope="module")
def penguins() -> tuple[pd.DataFrame, pd.Series]:
    return read_penguins()


@pytest.fixture(scope="module")
def project(tmp_path_factory, penguins) -> Path:
    """A project whose best run is 002-logistic (0.9); 003 scored more but failed."""
    X, y = penguins
    root = write_project(tmp_path_factory.mktemp("penguins"))
    majority = DummyClassifier().fit(X, y)
    write_run(root, "001-majority-class", score=0.5, model=majority, X=X)
    write_run(root, "002-logistic", score=0.9, model=fit_classifier(X, y), X=X)
    write_run(root, "003-broken", score=0.99, status="failed")
    write_run(root, "004-worse", score=0.8, model=majority, X=X)
    return root


@pytest.fixture(scope="module")
def client(project) -> TestClient:
    with TestClient(create_app(project)) as test_client:
        yield test_client


def test_select_run_picks_best_ok_run(project):
    assert select_run(load_project(project)).name == "002-logistic"


def test_select_run_follows_lower_is_better(tmp_path):
    root = write_project(tmp_path, metric="rmse", greater=False)
    for attempt, rmse in [("001-mean", 3.0), ("002-linear", 1.5), ("003-tree", 2.0)]:
        folder = write_run(root, attempt, score=None)
        run = json.loads((folder / "run.json").read_text())
        run.update(scores={"rmse": rmse}, model={"file": "model.joblib", "sha256": "0"})
        (folder / "run.json").write_text(json.dumps(run))

    assert select_run(load_project(root)).name == "002-linear"


def test_select_run_names_the_attempt(project):
    assert select_run(load_project(project), "004-worse").name == "004-worse"


def test_select_run_without_ok_run(tmp_path):
    root = write_project(tmp_path)
    write_run(root, "001-broken", score=None, status="failed")

    with pytest.raises(SlopeError, match="no run in .* is 'ok' .*run_all.py"):
        select_run(load_project(root))


@pytest.mark.parametrize(
    ("attempt", "message"),
    [
        ("009-missing", "'009-missing' has no run .*the runs are: 001-majority"),
        ("003-broken", "the run of attempt '003-broken' has status 'failed', not 'ok'"),
        ("../002-logistic", "has no run"),
    ],
    ids=["unknown", "failed", "path"],
)
def test_select_run_refuses_named_attempt(project, attempt, message):
    with pytest.raises(SlopeError, match=message):
        select_run(load_project(project), attempt)


def test_select_run_names_a_misspelt_metric(project):
    misspelt = load_project(project)
    misspelt = type(misspelt)(root=misspelt.root, metric="acuracy")

    with pytest.raises(
        SlopeError,
        match=r"no run recorded 'acuracy'.*"
        r"\(did you mean 'accuracy'\?\); the runs record accuracy",
    ):
        select_run(misspelt)


def test_select_run_refuses_run_without_model(tmp_path):
    root = write_project(tmp_path)
    write_run(root, "001-no-model", score=0.7)

    with pytest.raises(SlopeError, match="saved no model; .*slope.save_model"):
        select_run(load_project(root), "001-no-model")


def test_changed_model_file_is_refused(tmp_path, penguins):
    X, y = penguins
    root = write_project(tmp_path)
    folder = write_run(
        root, "001-majority", score=0.5, model=DummyClassifier().fit(X, y), X=X
    )
    with open(folder / "model.joblib", "ab") as stream:
        stream.write(b"tampered")

    with pytest.raises(ModelError, match="does not match the sha256"):
        create_app(root)


def test_other_scikit_learn_version_is_refused(tmp_path, penguins):
    X, y = penguins
    root = write_project(tmp_path)
    folder = write_run(
        root, "001-majority", score=0.5, model=DummyClassifier().fit(X, y), X=X
    )
    schema = json.loads((folder / "model.json").read_text())
    schema["versions"]["scikit-learn"] = "1.0.2"
    (folder / "model.json").write_text(json.dumps(schema))

    with pytest.raises(
        ModelError,
        match=r"trained with scikit-learn 1\.0\.2, but scikit-learn \S+ is installed; "
        r"install .*scikit-learn==1\.0\.2.* or run .*--force 001-majority",
    ):
        create_app(root)


def test_serve_refuses_before_starting(tmp_path):
    root = write_project(tmp_path)

    with pytest.raises(SlopeError, match="no run in .* is 'ok'"):
        serve(root, port=free_port())


def test_create_app_finds_project_from_environment(project, monkeypatch):
    monkeypatch.setenv("SLOPE_PROJECT_DIR", str(project))

    assert create_app().state.served.attempt == "002-logistic"


def test_health(client):
    response = client.get("/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "attempt": "002-logistic"}


def test_model_card(client, penguins):
    response = client.get("/model")

    assert response.status_code == 200
    card = response.json()
    assert card["attempt"] == "002-logistic"
    assert card["date"] == "2026-11-12T10:30:00+00:00"
    assert card["metric"] == {
        "name": "accuracy",
        "greater_is_better": True,
        "value": 0.9,
        "std": 0.02,
        "baseline": {"attempt": "001-majority-class", "value": 0.5},
        "difference_to_baseline": pytest.approx(0.4),
    }
    assert [f["name"] for f in card["features"]] == list(penguins[0].columns)
    assert card["classes"] == ["female", "male"]
    assert (
        card["versions"]["trained"]["scikit-learn"]
        == (card["versions"]["serving"]["scikit-learn"])
    )
    assert card["limits"] == {"max_records": MAX_RECORDS, "max_body_bytes": 1 << 20}


def test_predict_one_record(client, penguins):
    X, y = penguins
    model = fit_classifier(X, y)

    response = client.post("/predict", json=PENGUIN)

    assert response.status_code == 200
    body = response.json()
    expected = model.predict(pd.DataFrame([PENGUIN]))[0]
    assert body["attempt"] == "002-logistic"
    assert body["predictions"] == [expected]
    assert set(body["probabilities"][0]) == {"female", "male"}
    assert math.fsum(body["probabilities"][0].values()) == pytest.approx(1.0)


def test_predict_batch_keeps_order(client):
    heavy = {**PENGUIN, "species": "Gentoo", "island": "Biscoe", "body_mass_g": 6000.0}
    light = {**PENGUIN, "body_mass_g": 3000.0}

    response = client.post("/predict", json=[heavy, light, heavy])

    assert response.status_code == 200
    assert response.json()["predictions"] == ["male", "female", "male"]


def test_integer_may_be_written_as_whole_float(client):
    first = client.post("/predict", json=PENGUIN).json()
    second = post_raw(client, with_value("year", "2007.0")).json()

    assert second == first


def test_key_order_does_not_change_prediction(client):
    reversed_record = dict(reversed(list(PENGUIN.items())))

    first = client.post("/predict", json=PENGUIN).json()
    second = client.post("/predict", json=reversed_record).json()

    assert second == first


def test_large_batch_is_answered(client):
    response = client.post("/predict", json=[PENGUIN] * MAX_RECORDS)

    assert response.status_code == 200
    assert len(response.json()["predictions"]) == MAX_RECORDS


def test_openapi_shows_fields_and_a_working_example(client):
    spec = client.get("/openapi.json").json()
    record = spec["components"]["schemas"]["Record"]
    body = spec["paths"]["/predict"]["post"]["requestBody"]["content"]
    example = body["application/json"]["examples"]["one record"]["value"]

    assert list(record["properties"]) == list(PENGUIN)
    assert record["properties"]["island"]["enum"] == ISLANDS
    assert record["additionalProperties"] is False
    assert client.post("/predict", json=example).status_code == 200
    assert client.get("/docs").status_code == 200


def post_raw(client: TestClient, body: str):
    return client.post(
        "/predict", content=body, headers={"content-type": "application/json"}
    )


def with_value(field: str, raw: str) -> str:
    """A penguin as JSON text with one field's value replaced by raw JSON."""
    record = json.dumps({**PENGUIN, field: "@@"})
    return record.replace('"@@"', raw)


BAD_RECORDS = {
    "nan": (
        with_value("bill_length_mm", "NaN"),
        ["body", "bill_length_mm"],
        "field 'bill_length_mm': expected a finite number, or null, got NaN",
    ),
    "infinity": (
        with_value("body_mass_g", "Infinity"),
        ["body", "body_mass_g"],
        "field 'body_mass_g': expected a finite number, or null, got Infinity",
    ),
    "minus-infinity": (
        with_value("body_mass_g", "-Infinity"),
        ["body", "body_mass_g"],
        "field 'body_mass_g': expected a finite number, or null, got -Infinity",
    ),
    "number-as-string": (
        with_value("bill_length_mm", '"3.2"'),
        ["body", "bill_length_mm"],
        "field 'bill_length_mm': expected a finite number, or null, "
        "got '3.2' (a string)",
    ),
    "number-as-boolean": (
        with_value("bill_length_mm", "true"),
        ["body", "bill_length_mm"],
        "field 'bill_length_mm': expected a finite number, or null, "
        "got true (a boolean)",
    ),
    "integer-as-string": (
        with_value("year", '"2007"'),
        ["body", "year"],
        "field 'year': expected an integer, or null, got '2007' (a string)",
    ),
    "integer-with-fraction": (
        with_value("year", "2007.5"),
        ["body", "year"],
        "field 'year': expected an integer, or null, got 2007.5",
    ),
    "number-too-large": (
        with_value("body_mass_g", "1e400"),
        ["body", "body_mass_g"],
        "field 'body_mass_g': expected a finite number, or null, got Infinity",
    ),
    "unseen-category": (
        with_value("island", '"Atlantis"'),
        ["body", "island"],
        "field 'island': expected one of 'Biscoe', 'Dream', 'Torgersen', "
        "got 'Atlantis' (a string)",
    ),
    "nested-object": (
        with_value("island", '{"name": "Dream"}'),
        ["body", "island"],
        "field 'island': expected one of 'Biscoe', 'Dream', 'Torgersen', got an object",
    ),
    "null": (
        with_value("species", "null"),
        ["body", "species"],
        "field 'species': expected one of 'Adelie', 'Chinstrap', 'Gentoo', got null",
    ),
    "not-json": (
        '{"species": "Adelie",',
        ["body"],
        "the body is not valid JSON: EOF while parsing a value at line 1 column 21",
    ),
    "scalar": (
        "3",
        ["body"],
        f"expected one record (a JSON object with the fields as keys) or a list of "
        f"at most {MAX_RECORDS} records, got 3",
    ),
    "empty-list": (
        "[]",
        ["body"],
        "the list of records is empty; send at least one record",
    ),
}


@pytest.mark.parametrize(
    ("body", "loc", "msg"), BAD_RECORDS.values(), ids=BAD_RECORDS.keys()
)
def test_bad_record_is_422_naming_the_field(client, body, loc, msg):
    response = post_raw(client, body)

    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert problem["loc"] == loc
    assert problem["msg"] == msg


def test_unknown_field_lists_the_fields(client):
    record = {**PENGUIN, "bill_lenght_mm": 39.1}

    response = client.post("/predict", json=record)

    assert response.status_code == 422
    assert response.json() == {
        "detail": [
            {
                "loc": ["body", "bill_lenght_mm"],
                "type": "extra_forbidden",
                "msg": "unknown field 'bill_lenght_mm'; the fields are: species, "
                "island, bill_length_mm, bill_depth_mm, flipper_length_mm, "
                "body_mass_g, year",
                "input": 39.1,
            }
        ]
    }


def test_missing_field_is_named(client):
    record = {k: v for k, v in PENGUIN.items() if k != "year"}

    response = client.post("/predict", json=record)

    assert response.status_code == 422
    assert response.json() == {
        "detail": [
            {
                "loc": ["body", "year"],
                "type": "missing",
                "msg": "field 'year' is missing; expected an integer, or null",
            }
        ]
    }


def test_bad_record_in_batch_is_located(client):
    response = client.post(
        "/predict", json=[PENGUIN, {**PENGUIN, "island": "Atlantis"}]
    )

    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert problem["loc"] == ["body", 1, "island"]


def test_batch_item_that_is_not_an_object(client):
    response = client.post("/predict", json=[PENGUIN, "Adelie"])

    assert response.status_code == 422
    assert response.json()["detail"] == [
        {
            "loc": ["body", 1],
            "type": "model_type",
            "msg": "record 1: expected a JSON object with the fields as keys, "
            "got 'Adelie' (a string)",
            "input": "Adelie",
        }
    ]


def test_many_problems_are_cut_short(client):
    response = client.post("/predict", json=[{}] * 10)

    assert response.status_code == 422
    detail = response.json()["detail"]
    assert len(detail) == 21
    assert detail[-1]["msg"] == "50 more problems are not shown"


def test_batch_over_the_limit_is_422_with_the_limit(client):
    response = client.post("/predict", json=[PENGUIN] * (MAX_RECORDS + 1))

    assert response.status_code == 422
    assert response.json()["detail"][-1]["msg"] == (
        f"a request holds at most {MAX_RECORDS} records, got {MAX_RECORDS + 1}; "
        "split the batch"
    )


def test_declared_body_over_the_limit_is_413(client):
    body = b"[" + b" " * (2 << 20) + b"]"

    response = client.post("/predict", content=body)

    assert response.status_code == 413
    assert response.json()["detail"][0]["msg"].startswith(
        f"the body is larger than {1 << 20} bytes"
    )
    assert client.get("/health").status_code == 200


def test_streamed_body_over_the_limit_is_413(client):
    chunks = (b" " * (64 << 10) for _ in range(64))

    response = client.post("/predict", content=chunks)

    assert response.status_code == 413
    assert client.get("/health").status_code == 200


def test_regression_model_predicts_numbers(tmp_path, penguins):
    X, _ = penguins
    X = X.dropna()
    model = make_pipeline(
        make_column_transformer((OneHotEncoder(), CATEGORIES), remainder="passthrough"),
        LinearRegression(),
    ).fit(X.drop(columns="body_mass_g"), X["body_mass_g"])
    root = write_project(tmp_path)
    write_run(
        root, "001-linear", score=0.5, model=model, X=X.drop(columns="body_mass_g")
    )
    record = {k: v for k, v in PENGUIN.items() if k != "body_mass_g"}

    with TestClient(create_app(root)) as test_client:
        response = test_client.post("/predict", json=record)

    assert response.status_code == 200
    [prediction] = response.json()["predictions"]
    assert isinstance(prediction, float)
    assert "probabilities" not in response.json()
    assert 2500 < prediction < 6500


def test_classifier_without_probabilities_predicts_classes(tmp_path, penguins):
    X, y = penguins
    model = fit_classifier(X, y)
    model.steps[-1] = ("ridge", RidgeClassifier())
    model.fit(X, y)
    root = write_project(tmp_path)
    write_run(root, "001-ridge", score=0.8, model=model, X=X)

    with TestClient(create_app(root)) as test_client:
        response = test_client.post("/predict", json=PENGUIN)

    assert response.status_code == 200
    assert response.json() == {"attempt": "001-ridge", "predictions": ["male"]}


def test_nullable_feature_accepts_null(tmp_path):
    frame = pd.read_csv(PENGUINS)
    X, y = frame[["island", *NUMBERS]], frame["species"]
    model = make_pipeline(
        make_column_transformer(
            (OneHotEncoder(), ["island"]),
            (make_pipeline(SimpleImputer(), StandardScaler()), NUMBERS),
        ),
        LogisticRegression(max_iter=1000),
    ).fit(X, y)
    root = write_project(tmp_path)
    write_run(root, "001-species", score=0.9, model=model, X=X)
    record = {k: PENGUIN[k] for k in X.columns} | {"bill_length_mm": None}

    with TestClient(create_app(root)) as test_client:
        response = test_client.post("/predict", json=record)
        spec = test_client.get("/openapi.json").json()

    assert response.status_code == 200
    assert response.json()["predictions"] == ["Adelie"]
    bill = spec["components"]["schemas"]["Record"]["properties"]["bill_length_mm"]
    assert bill["anyOf"] == [{"type": "number"}, {"type": "null"}]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_load_nothing_from_the_network(client, page):
    html = client.get(page).text
    links = re.findall(r'(?:src|href)="([^"]+)"', html) + re.findall(
        r"url: *'([^']+)'", html
    )

    assert links and not [link for link in links if "//" in link]
    assert all(client.get(link).status_code == 200 for link in links)


def test_model_that_imputes_takes_null_though_training_had_none(tmp_path):
    frame = pd.read_csv(PENGUINS).dropna()
    X, y = frame[NUMBERS], frame["sex"]
    imputing = make_pipeline(SimpleImputer(), LogisticRegression(max_iter=1000))
    root = write_project(tmp_path)
    write_run(root, "001-strict", score=0.8, model=LogisticRegression().fit(X, y), X=X)
    write_run(root, "002-imputing", score=0.9, model=imputing.fit(X, y), X=X)
    record = {k: PENGUIN[k] for k in NUMBERS} | {"body_mass_g": None}

    with TestClient(create_app(root, "002-imputing")) as test_client:
        imputed = test_client.post("/predict", json=record)
    with TestClient(create_app(root, "001-strict")) as test_client:
        refused = test_client.post("/predict", json=record)

    assert imputed.status_code == 200
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "body_mass_g"]


def test_number_outside_training_is_predicted_and_named(client, penguins):
    X, _ = penguins
    low, high = float(X["body_mass_g"].min()), float(X["body_mass_g"].max())
    giant = {**PENGUIN, "body_mass_g": 60000.0}

    usual = client.post("/predict", json=PENGUIN).json()
    one = client.post("/predict", json=giant).json()
    batch = client.post("/predict", json=[PENGUIN, giant]).json()

    assert "outside_training" not in usual
    assert one["predictions"] == ["male"]
    assert one["outside_training"] == [
        {
            "loc": ["body", "body_mass_g"],
            "value": 60000,
            "min": low,
            "max": high,
            "msg": f"body_mass_g = 60000 is outside {low:g} to {high:g}, its range "
            "in training: the model extrapolates",
        }
    ]
    assert [item["loc"] for item in batch["outside_training"]] == [
        ["body", 1, "body_mass_g"]
    ]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_real_server_predicts_over_http(project):
    port = free_port()
    env = {**os.environ, "SLOPE_PROJECT_DIR": str(project)}
    command = [
        sys.executable, "-m", "uvicorn", "--factory", "slope.api:create_app",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
    ]  # fmt: skip
    server = subprocess.Popen(command, env=env, stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(url, server)
        response = httpx.post(f"{url}/predict", json=PENGUIN, timeout=10)
    finally:
        server.terminate()
        server.communicate(timeout=10)

    assert response.status_code == 200
    assert response.json()["predictions"] == ["male"]


def wait_for(url: str, server: subprocess.Popen, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(server.stderr.read().decode())
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer within {seconds} s")


FUZZED = {
    "predict-valid": ("/predict", "POST", GenerationMode.POSITIVE),
    "predict-invalid": ("/predict", "POST", GenerationMode.NEGATIVE),
    "model": ("/model", "GET", GenerationMode.POSITIVE),
    "health": ("/health", "GET", GenerationMode.POSITIVE),
}


@pytest.mark.parametrize(("path", "method", "mode"), FUZZED.values(), ids=FUZZED.keys())
def test_generated_requests_get_no_server_error(client, path, method, mode):
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
    strategy = schema[path][method].as_strategy(generation_mode=mode)

    # schemathesis.pytest.from_fixture fails under pytest 9 (no Function._nodeid).
    @given(case=strategy)
    @settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
    def check(case):
        case.call_and_validate(checks=[not_a_server_error, response_schema_conformance])

    check()
