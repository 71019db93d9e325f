"""Choosing the run to serve, checking that it can be trusted, and serving it.

The best run is the ``ok`` run with a saved model and the best primary score,
in the project's direction. Its model is loaded only when the installed
scikit-learn is the one that trained it and the file's hash is the one the
engine recorded in ``run.json``.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from slope.exceptions import ModelError, SlopeError, did_you_mean
from slope.model import SCHEMA_FILE, load_model
from slope.project import Project
from slope.scores import recorded_scores

logger = logging.getLogger(__name__)

RUN_FILE = "run.json"
FEATURE_TYPES = ("number", "integer", "boolean", "category")
WARNED_PACKAGES = ("numpy", "pandas", "joblib")


@dataclass(frozen=True)
class ServedRun:
    """A run ready to serve: its record, its model's schema and its model."""

    folder: Path
    run: dict[str, Any]
    schema: dict[str, Any]
    model: Any

    @property
    def attempt(self) -> str:
        return self.run.get("attempt") or self.folder.name


def read_runs(project: Project) -> dict[str, dict[str, Any]]:
    """Return every readable ``runs/*/run.json``, by attempt id.

    A run file that does not parse is skipped with a warning: it cannot be
    served, and it should not hide the others.
    """
    runs = {}
    for path in sorted(project.runs_dir.glob(f"*/{RUN_FILE}")):
        try:
            run = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            logger.warning("%s cannot be read, skipped: %s", path, err)
            continue
        if isinstance(run, dict):
            runs[path.parent.name] = run
    return runs


def select_run(project: Project, attempt: str | None = None) -> Path:
    """Return the folder of the run to serve.

    Parameters
    ----------
    project
        The project whose ``runs/`` folder holds the runs.
    attempt
        An attempt id to serve; by default the best ``ok`` run with a model,
        by the project's metric and direction (ties go to the earlier date).

    Raises
    ------
    SlopeError
        No run can be served, or the named attempt has no ``ok`` run with a
        model.
    """
    runs = read_runs(project)
    if attempt is not None:
        _check_named(project, runs, attempt)
        return project.runs_dir / attempt

    candidates = [
        (run_id, run) for run_id, run in runs.items() if _servable(run, project.metric)
    ]
    if not candidates:
        recorded = {name for run in runs.values() for name in run.get("scores") or {}}
        if recorded and project.metric not in recorded:
            fix = (
                f"no run recorded {project.metric!r}, the metric in "
                f"params/project.yaml{did_you_mean(project.metric, recorded)}; "
                f"the runs record {recorded_scores(recorded)}"
            )
        else:
            fix = "run `python run_all.py` first, or name an attempt with --attempt"
        raise SlopeError(
            f"no run in {project.runs_dir} is 'ok' with a saved model and a "
            f"finite {project.metric!r} score; {fix}"
        )
    best_id, _ = min(candidates, key=lambda item: _rank(item, project))
    logger.info("best run: %s", best_id)
    return project.runs_dir / best_id


def load_served_run(folder: Path) -> ServedRun:
    """Read a run folder and load its model, refusing what cannot be trusted.

    Raises
    ------
    ModelError
        ``model.json`` is missing or malformed, scikit-learn's version differs
        from the one that trained the model, or the model's hash differs from
        the one in ``run.json``.
    """
    run = json.loads((folder / RUN_FILE).read_text(encoding="utf-8"))
    schema = read_schema(folder)
    check_versions(folder, schema)

    model_record = run.get("model") or {}
    if not model_record.get("sha256"):
        raise ModelError(
            f"{folder / RUN_FILE} records no sha256 for the model; only a model "
            "the run made is served: run the attempt again"
        )
    model = load_model(folder, model_record["sha256"])
    return ServedRun(folder=folder, run=run, schema=schema, model=model)


def read_schema(folder: Path) -> dict[str, Any]:
    """Return the model's schema, ``model.json``, after checking its shape."""
    path = folder / SCHEMA_FILE
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise ModelError(
            f"{path} does not exist; the notebook must save its model with "
            "slope.save_model(model, X, output_dir)"
        ) from err
    except ValueError as err:
        raise ModelError(f"{path} is not valid JSON: {err}") from err

    features = schema.get("features") if isinstance(schema, dict) else None
    if not features:
        raise ModelError(f"{path} lists no features; save the model again")
    for feature in features:
        if feature.get("type") not in FEATURE_TYPES:
            raise ModelError(
                f"{path}: feature {feature.get('name')!r} has type "
                f"{feature.get('type')!r}; the types are {', '.join(FEATURE_TYPES)}"
            )
    return schema


def check_versions(folder: Path, schema: dict[str, Any]) -> None:
    """Refuse a model trained with another scikit-learn than the installed one.

    Raises
    ------
    ModelError
        The versions differ; the message gives both and the two ways out.
    """
    versions = schema.get("versions", {})
    for package in WARNED_PACKAGES:
        if versions.get(package, installed_version(package)) != installed_version(
            package
        ):
            logger.warning(
                "%s: trained with %s %s, serving with %s",
                folder.name,
                package,
                versions[package],
                installed_version(package),
            )
    trained = versions.get("scikit-learn")
    installed = installed_version("scikit-learn")
    if trained is None or trained == installed:
        return
    raise ModelError(
        f"{folder / SCHEMA_FILE}: the model was trained with scikit-learn "
        f"{trained}, but scikit-learn {installed} is installed; install the "
        f"training version (pip install scikit-learn=={trained}) or run the "
        f"attempt again with this one (python run_all.py --force {folder.name})"
    )


def installed_version(package: str) -> str | None:
    """Return the installed version of a package, or None when it is absent."""
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def serve(
    project_dir: str | Path | None = None,
    attempt: str | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
) -> None:
    """Serve the best run's model (or the named attempt's) with uvicorn.

    ``project_dir`` defaults as in :func:`slope.api.create_app`. The app is
    built, and the model checked and loaded, before uvicorn starts, so a run
    that cannot be served raises here with its reason.

    Raises
    ------
    SlopeError
        No run can be served, or its model cannot be trusted.
    """
    import uvicorn

    from slope.api import create_app

    app = create_app(project_dir, attempt)
    logger.info("serving %s on http://%s:%d", app.state.served.attempt, host, port)
    uvicorn.run(app, host=host, port=port, log_level="info")


def _check_named(project: Project, runs: dict[str, dict[str, Any]], attempt: str):
    run = runs.get(attempt)
    if run is None:
        known = ", ".join(runs) or "none"
        raise SlopeError(
            f"attempt {attempt!r} has no run in {project.runs_dir} (the runs are: "
            f"{known}); run `python run_all.py` first"
        )
    if run.get("status") != "ok":
        raise SlopeError(
            f"the run of attempt {attempt!r} has status {run.get('status')!r}, "
            "not 'ok'; "
            f"see {project.runs_dir / attempt / 'notebook.ipynb'}, fix the attempt "
            "and run it again"
        )
    if not run.get("model"):
        raise SlopeError(
            f"the run of attempt {attempt!r} saved no model; its notebook must call "
            "slope.save_model(model, X, output_dir)"
        )


def _servable(run: dict[str, Any], metric: str) -> bool:
    score = (run.get("scores") or {}).get(metric)
    return (
        run.get("status") == "ok"
        and bool(run.get("model"))
        and isinstance(score, (int, float))
        and not isinstance(score, bool)
        and math.isfinite(score)
    )


def _rank(item: tuple[str, dict[str, Any]], project: Project) -> tuple:
    run_id, run = item
    score = run["scores"][project.metric]
    return (
        -score if project.greater_is_better else score,
        run.get("date") or "",
        run_id,
    )
