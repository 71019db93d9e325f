"""The prediction API: a FastAPI app around the model of one run.

The request model is generated from the schema the notebook saved beside the
model (``model.json``), so ``/docs`` shows the real feature names and an
example that works. Every bad request is answered with 422 (413 for a body over
the limit) naming the field, the value and what is allowed.

Run it with ``python run_all.py serve``, or with
``uvicorn --factory slope.api:create_app`` from the project's folder (or with
``SLOPE_PROJECT_DIR`` set).
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
)
from pydantic import create_model as create_pydantic_model
from starlette.concurrency import run_in_threadpool

from slope import __version__
from slope.exceptions import SlopeError
from slope.model import library_versions
from slope.paths import find_project_dir
from slope.project import Project, load_project
from slope.serve import ServedRun, load_served_run, read_runs, select_run

logger = logging.getLogger(__name__)

MAX_RECORDS = 1000
MAX_BODY_BYTES = 1 << 20
MAX_ERRORS = 20
INLINE_RECORDS = 32
INT64 = (-(2**63), 2**63 - 1)
RECORD_REF = "#/components/schemas/Record"


class RequestRejected(SlopeError):
    """A request the model cannot answer; it becomes a 4xx response."""

    def __init__(self, status_code: int, errors: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(error["msg"] for error in errors))
        self.status_code = status_code
        self.errors = errors


class Problem(BaseModel):
    loc: list[str | int]
    type: str
    msg: str
    input: Any = None


class ErrorBody(BaseModel):
    detail: list[Problem]


class Outside(BaseModel):
    loc: list[str | int]
    value: float
    min: float
    max: float
    msg: str


class Predictions(BaseModel):
    attempt: str
    predictions: list[str | int | float | bool]
    probabilities: list[dict[str, float]] | None = Field(
        None, description="For classifiers: each record's probability per class."
    )
    outside_training: list[Outside] | None = Field(
        None,
        description=(
            "Numbers outside the range seen in training, where the model "
            f"extrapolates (at most {MAX_ERRORS}); absent when there are none."
        ),
    )


class Health(BaseModel):
    status: Literal["ok"]
    attempt: str


class ModelCard(BaseModel):
    attempt: str
    date: str | None
    task: str
    estimator: str | None
    classes: list[str | int | float | bool] | None
    metric: dict[str, Any]
    scores: dict[str, float]
    features: list[dict[str, Any]]
    example: dict[str, Any] | None
    versions: dict[str, dict[str, str]]
    limits: dict[str, int]


def create_app(
    project_dir: str | Path | None = None,
    attempt: str | None = None,
    *,
    max_records: int = MAX_RECORDS,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> FastAPI:
    """Build the prediction API for the best run, or for the named attempt.

    Parameters
    ----------
    project_dir
        The project's root; by default ``SLOPE_PROJECT_DIR`` or the folder
        above the current one that holds ``params/project.yaml``.
    attempt
        The attempt to serve; by default the best ``ok`` run.
    max_records, max_body_bytes
        The most records in one request, and the largest body in bytes.

    Raises
    ------
    SlopeError
        No run can be served, or its model cannot be trusted.
    """
    project = load_project(project_dir or find_project_dir())
    served = load_served_run(select_run(project, attempt))
    predictor = Predictor(served, max_records)
    card = describe_run(project, served, max_records, max_body_bytes)

    # /docs and /redoc from files installed with the package, not from a CDN
    app = FastAPIOffline(
        title=f"slope: {served.attempt}",
        version=__version__,
        description=_describe_api(card),
    )
    app.state.served = served
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    app.add_exception_handler(RequestRejected, _reject)
    _add_routes(app, predictor, card)
    app.openapi = lambda: _openapi(app, predictor)
    logger.info("serving %s from %s", served.attempt, served.folder)
    return app


def _add_routes(app: FastAPI, predictor: Predictor, card: dict[str, Any]) -> None:
    health = {"status": "ok", "attempt": card["attempt"]}
    rejected = {413: {"model": ErrorBody}, 422: {"model": ErrorBody}}

    @app.get("/health", response_model=Health)
    async def get_health() -> JSONResponse:
        return JSONResponse(health)

    @app.get("/model", response_model=ModelCard)
    async def get_model() -> JSONResponse:
        return JSONResponse(card)

    @app.post(
        "/predict",
        response_model=Predictions,
        responses=rejected,
        openapi_extra={"requestBody": predictor.request_body()},
    )
    async def predict(request: Request) -> JSONResponse:
        """Predict one record (a JSON object) or a list of records."""
        records, batch = predictor.parse(await request.body())
        if len(records) <= INLINE_RECORDS:
            return JSONResponse(predictor.predict(records, batch))
        # A large batch runs in a thread so that /health keeps answering.
        answer = await run_in_threadpool(predictor.predict, records, batch)
        return JSONResponse(answer)


class Predictor:
    """Validates request bodies against the schema and calls the model."""

    def __init__(self, served: ServedRun, max_records: int) -> None:
        self.attempt = served.attempt
        self.model = served.model
        self.features = served.schema["features"]
        self.example = served.schema.get("example")
        self.max_records = max_records
        self.keys = [f"f{i}" for i in range(len(self.features))]
        self.ranges = [
            (f["name"], f["min"], f["max"])
            for f in self.features
            if f["type"] in ("number", "integer") and f.get("min") is not None
        ]
        self.record_model = build_record_model(self.features, self.example)
        self.one = TypeAdapter(self.record_model)
        self.many = TypeAdapter(
            Annotated[
                list[self.record_model], Field(min_length=1, max_length=max_records)
            ]
        )
        self.classes = None
        if hasattr(self.model, "predict_proba") and hasattr(self.model, "classes_"):
            self.classes = self.model.classes_.tolist()

    def parse(self, body: bytes) -> tuple[list[BaseModel], bool]:
        """Return the records in a JSON body and whether it is a list of them.

        Raises RequestRejected (422) for a body that is not valid records.
        """
        try:
            if body.lstrip()[:1] == b"[":
                return self.many.validate_json(body), True
            return [self.one.validate_json(body)], False
        except ValidationError as err:
            raise RequestRejected(422, self.explain_all(err)) from None

    def predict(self, records: list[BaseModel], batch: bool = True) -> dict[str, Any]:
        """Return the predictions (and class probabilities) for valid records.

        A classifier with ``predict_proba`` is called once: its predicted class
        is the one with the highest probability, so the predictions and the
        probabilities never disagree. Other models give ``predict`` alone.
        Numbers outside their range in training are predicted, and named in
        ``outside_training`` (located as in a list when ``batch``).
        """
        X = self.to_frame(records)
        try:
            with np.errstate(all="ignore"):
                if self.classes is not None:
                    answer = self._classify(X)
                else:
                    answer = self._predict_only(X)
        except (ValueError, TypeError) as err:
            logger.warning("the model failed on a valid request: %s", err)
            raise RequestRejected(422, [_problem("model_error", str(err))]) from err
        outside = self.outside_training(X, batch)
        if outside:
            answer["outside_training"] = outside
        return answer

    def outside_training(self, X: pd.DataFrame, batch: bool) -> list[dict[str, Any]]:
        """Name the first MAX_ERRORS numbers outside their range in training."""
        found = []
        for name, low, high in self.ranges:
            values = X[name].to_numpy(dtype=float)
            with np.errstate(invalid="ignore"):
                rows = np.flatnonzero((values < low) | (values > high))
            for row in rows[:MAX_ERRORS].tolist():
                value = _plain_number(values[row])
                found.append(
                    {
                        "loc": ["body", row, name] if batch else ["body", name],
                        "value": value,
                        "min": low,
                        "max": high,
                        "msg": (
                            f"{name} = {value} is outside {_plain_number(low)} "
                            f"to {_plain_number(high)}, its range in training: "
                            "the model extrapolates"
                        ),
                    }
                )
        found.sort(key=lambda item: item["loc"][1] if batch else 0)
        return found[:MAX_ERRORS]

    def to_frame(self, records: list[BaseModel]) -> pd.DataFrame:
        """Return the records as a frame with the training columns, in order."""
        columns = {}
        for key, feature in zip(self.keys, self.features, strict=True):
            values = [getattr(record, key) for record in records]
            columns[feature["name"]] = _column(values, feature["type"])
        return pd.DataFrame(columns)

    def explain_all(self, err: ValidationError) -> list[dict[str, Any]]:
        """Explain the first MAX_ERRORS problems, the batch's size first."""
        errors = sorted(
            err.errors(include_url=False), key=lambda e: e["type"] != "too_long"
        )
        problems = [self.explain(error) for error in errors[:MAX_ERRORS]]
        if len(errors) > MAX_ERRORS:
            more = f"{len(errors) - MAX_ERRORS} more problems are not shown"
            problems.append(_problem("more_errors", more))
        return problems

    def explain(self, error: dict[str, Any]) -> dict[str, Any]:
        """Turn one pydantic error into a problem naming field, value and rule."""
        loc = ["body", *error["loc"]]
        field = loc[-1] if isinstance(loc[-1], str) and len(loc) > 1 else None
        feature = self._feature(field)
        kind, value = error["type"], error.get("input")
        if kind == "json_invalid":
            msg = f"the body is not valid JSON: {error['ctx']['error']}"
            return _problem(kind, msg, loc)
        if kind == "extra_forbidden":
            names = ", ".join(f["name"] for f in self.features)
            msg = f"unknown field {field!r}; the fields are: {names}"
        elif feature is not None and kind == "missing":
            msg = f"field {field!r} is missing; expected {_expected(feature)}"
        elif feature is not None:
            msg = f"field {field!r}: expected {_expected(feature)}, got {_show(value)}"
            if "ctx" in error and kind not in ("literal_error",):
                msg += f" ({error['msg']})"
        elif kind == "too_long":
            msg = (
                f"a request holds at most {self.max_records} records, got "
                f"{error['ctx']['actual_length']}; split the batch"
            )
        elif kind == "too_short":
            msg = "the list of records is empty; send at least one record"
        elif kind in ("model_type", "model_attributes_type") and len(loc) > 1:
            msg = (
                f"record {loc[-1]}: expected a JSON object with the fields as keys, "
                f"got {_show(value)}"
            )
        elif kind in ("model_type", "model_attributes_type", "list_type"):
            msg = (
                "expected one record (a JSON object with the fields as keys) or a "
                f"list of at most {self.max_records} records, got {_show(value)}"
            )
        else:
            msg = error["msg"]
        return _problem(kind, msg, loc, value)

    def request_body(self) -> dict[str, Any]:
        """Return the OpenAPI request body: one record or a list of records."""
        many = {
            "type": "array",
            "items": {"$ref": RECORD_REF},
            "minItems": 1,
            "maxItems": self.max_records,
        }
        content: dict[str, Any] = {"schema": {"anyOf": [{"$ref": RECORD_REF}, many]}}
        if self.example is not None:
            content["examples"] = {
                "one record": {"value": self.example},
                "a batch": {"value": [self.example, self.example]},
            }
        return {"required": True, "content": {"application/json": content}}

    def _classify(self, X: pd.DataFrame) -> dict[str, Any]:
        proba = self.model.predict_proba(X)
        _check_finite(proba)
        labels = [self.classes[i] for i in proba.argmax(axis=1).tolist()]
        keys = [str(c) for c in self.classes]
        probabilities = [dict(zip(keys, row, strict=True)) for row in proba.tolist()]
        return {
            "attempt": self.attempt,
            "predictions": labels,
            "probabilities": probabilities,
        }

    def _predict_only(self, X: pd.DataFrame) -> dict[str, Any]:
        y = np.asarray(self.model.predict(X))
        if y.dtype.kind in "fc":
            _check_finite(y)
        return {"attempt": self.attempt, "predictions": y.tolist()}

    def _feature(self, name: str | None) -> dict[str, Any] | None:
        for feature in self.features:
            if feature["name"] == name:
                return feature
        return None


def build_record_model(
    features: list[dict[str, Any]], example: dict[str, Any] | None
) -> type[BaseModel]:
    """Return a strict pydantic model with one required field per feature.

    Fields are keyed by position (``f0``, ``f1``...) with the feature's name
    as alias, so any column name works, even one that is not an identifier.
    """
    config = ConfigDict(
        extra="forbid",
        strict=True,
        allow_inf_nan=False,
        validate_by_alias=True,
        validate_by_name=False,
        title="Record",
        json_schema_extra={"examples": [example]} if example else None,
    )
    fields = {f"f{i}": _field(feature) for i, feature in enumerate(features)}
    return create_pydantic_model("Record", __config__=config, **fields)


def describe_run(
    project: Project, served: ServedRun, max_records: int, max_body_bytes: int
) -> dict[str, Any]:
    """Return what ``GET /model`` tells: run, metric against baseline, schema."""
    run, schema = served.run, served.schema
    scores = run.get("scores") or {}
    return {
        "attempt": served.attempt,
        "date": run.get("date"),
        "task": schema.get("task", "regression"),
        "estimator": schema.get("estimator"),
        "classes": schema.get("classes"),
        "metric": _describe_metric(project, scores),
        "scores": scores,
        "features": schema["features"],
        "example": schema.get("example"),
        "versions": {
            "trained": schema.get("versions", {}),
            "serving": library_versions(),
        },
        "limits": {"max_records": max_records, "max_body_bytes": max_body_bytes},
    }


class BodyLimit:
    """ASGI middleware: answer 413 to a body over the limit before parsing it.

    The declared ``Content-Length`` is checked first, then the streamed size,
    so neither a large declared body nor a chunked one is read past the limit.
    """

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        if _content_length(scope) > self.max_bytes:
            await self._too_large(send)
            return

        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                await self._too_large(send)
                return
            more = message.get("more_body", False)
        await self.app(scope, _replay(b"".join(chunks), receive), send)

    async def _too_large(self, send: Any) -> None:
        msg = (
            f"the body is larger than {self.max_bytes} bytes; send smaller "
            "batches (GET /model tells the limits)"
        )
        body = json.dumps({"detail": [_problem("body_too_large", msg)]}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _replay(body: bytes, receive: Any) -> Any:
    sent = False

    async def replay() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def _content_length(scope: dict) -> int:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0
    return 0


async def _reject(request: Request, err: RequestRejected) -> JSONResponse:
    return JSONResponse({"detail": err.errors}, status_code=err.status_code)


def _field(feature: dict[str, Any]) -> tuple[Any, Any]:
    kind = feature["type"]
    constraints: dict[str, Any] = {}
    if kind == "number":
        annotation: Any = float
    elif kind == "integer":
        annotation = Annotated[int, BeforeValidator(_whole_float_to_int)]
        constraints = {"ge": INT64[0], "le": INT64[1]}
    elif kind == "boolean":
        annotation = bool
    else:
        annotation = Literal[tuple(feature["categories"])]
    if feature.get("nullable"):
        annotation = annotation | None
    info = Field(
        alias=feature["name"],
        title=feature["name"],
        description=_describe_feature(feature),
        **constraints,
    )
    return annotation, info


def _whole_float_to_int(value: Any) -> Any:
    # JSON Schema counts 2007.0 as an integer; strings and booleans stay refused.
    if type(value) is float and value.is_integer():
        return int(value)
    return value


def _describe_feature(feature: dict[str, Any]) -> str:
    text = _expected(feature)
    if feature.get("min") is not None and feature.get("max") is not None:
        text += f"; from {feature['min']} to {feature['max']} in training"
    return text


def _expected(feature: dict[str, Any]) -> str:
    kind = feature["type"]
    if kind == "category":
        text = "one of " + ", ".join(repr(c) for c in feature["categories"])
    else:
        text = {
            "number": "a finite number",
            "integer": "an integer",
            "boolean": "true or false",
        }[kind]
    return text + (", or null" if feature.get("nullable") else "")


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, float) and not math.isfinite(value):
        return {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}[str(value)]
    if isinstance(value, str):
        return f"{_cut(value)!r} (a string)"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return "null" if value is None else repr(value)


def _problem(
    kind: str, msg: str, loc: list | None = None, value: Any = None
) -> dict[str, Any]:
    problem = {"loc": loc or ["body"], "type": kind, "msg": msg}
    if isinstance(value, (bool, int, str)) or value is None:
        problem["input"] = _cut(value) if isinstance(value, str) else value
    elif isinstance(value, float):
        problem["input"] = value if math.isfinite(value) else _show(value)
    return problem


def _cut(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _column(values: list[Any], kind: str) -> Any:
    has_null = any(value is None for value in values)
    if kind == "number" or (kind == "integer" and has_null):
        return np.array(values, dtype=float)
    if kind == "integer":
        return np.array(values, dtype=np.int64)
    if kind == "boolean" and not has_null:
        return np.array(values, dtype=bool)
    return values


def _plain_number(value: float) -> int | float:
    """2700.0 as 2700, for messages; other numbers as they are."""
    value = float(value)
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


def _check_finite(values: np.ndarray) -> None:
    if not np.isfinite(values).all():
        msg = (
            "the model returned a value that is not finite; some features are "
            "probably far outside their range in training (GET /model)"
        )
        raise RequestRejected(422, [_problem("model_not_finite", msg)])


def _describe_metric(project: Project, scores: dict[str, Any]) -> dict[str, Any]:
    name = project.metric
    baseline = None
    if project.baseline is not None:
        run = read_runs(project).get(project.baseline) or {}
        value = (
            (run.get("scores") or {}).get(name) if run.get("status") == "ok" else None
        )
        baseline = {"attempt": project.baseline, "value": value}
    value = scores.get(name)
    versus = None
    if baseline and baseline["value"] is not None and value is not None:
        versus = value - baseline["value"]
    return {
        "name": name,
        "greater_is_better": project.greater_is_better,
        "value": value,
        "std": scores.get(f"{name}_std"),
        "baseline": baseline,
        "difference_to_baseline": versus,
    }


def _describe_api(card: dict[str, Any]) -> str:
    metric = card["metric"]
    limits = card["limits"]
    value = metric["value"]
    score = f"{value:.4g}" if isinstance(value, (int, float)) else "not recorded"
    return (
        f"Predictions from attempt **{card['attempt']}** ({card['date']}), "
        f"{metric['name']} = {score}.\n\n"
        f"`POST /predict` takes one record or a list of at most "
        f"{limits['max_records']} records, in a body of at most "
        f"{limits['max_body_bytes']} bytes. Unknown fields, missing fields, "
        "strings or booleans for numbers, NaN and Infinity, and categories "
        "unseen in training are answered with 422 naming the field. Numbers "
        "outside their range in training are predicted and listed in "
        "`outside_training`. `GET /model` tells the features and their ranges."
    )


def _openapi(app: FastAPI, predictor: Predictor) -> dict[str, Any]:
    if app.openapi_schema is None:
        spec = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        record = predictor.record_model.model_json_schema(by_alias=True)
        spec.setdefault("components", {}).setdefault("schemas", {})["Record"] = record
        app.openapi_schema = spec
    return app.openapi_schema
