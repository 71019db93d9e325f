"""Saving a fitted model with the schema of the features it was trained on.

The run's output folder then holds ``model.joblib`` and ``model.json``; the
prediction API builds its request model from the schema and loads the model
only when its hash matches the one the engine recorded in ``run.json``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
from pathlib import Path
from typing import Any

from slope.exceptions import ModelError

logger = logging.getLogger(__name__)

MODEL_FILE = "model.joblib"
SCHEMA_FILE = "model.json"


def save_model(model: Any, X: Any, output_dir: str | Path | None) -> Path | None:
    """Save a fitted model and the schema of its input features.

    Parameters
    ----------
    model
        A fitted scikit-learn estimator or pipeline that takes ``X`` as it is.
    X : pandas.DataFrame
        The features the model was trained on (not the target): their names,
        types, categories and first row become the API's schema.
    output_dir
        The run's output folder, which ``run_all.py`` injects. ``None`` (the
        default in JupyterLab) saves nothing and says so.

    Returns
    -------
    Path or None
        The model file, or None when nothing was saved.
    """
    if output_dir is None:
        logger.warning(
            "output_dir is None: the model is not saved (run_all.py sets it)"
        )
        return None

    import joblib

    folder = Path(output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    model_file = folder / MODEL_FILE
    joblib.dump(model, model_file)
    schema = describe_model(model, X)
    (folder / SCHEMA_FILE).write_text(json.dumps(schema, indent=2, ensure_ascii=False))
    return model_file


def describe_model(model: Any, X: Any) -> dict[str, Any]:
    """Return the JSON-ready schema of a model: features, classes, example, versions."""
    import pandas as pd

    if not isinstance(X, pd.DataFrame):
        raise ModelError(
            f"save_model() needs X as a pandas DataFrame with named columns, "
            f"got {type(X).__name__}; pass the feature frame the model was fitted on"
        )
    classes = getattr(model, "classes_", None)
    features = [_describe_feature(name, X[name]) for name in X.columns]
    complete = X.dropna()
    if len(complete):
        _mark_imputed_numbers(model, complete.iloc[[0]], features)
    return {
        "task": "classification" if classes is not None else "regression",
        "estimator": type(model).__name__,
        "classes": [_plain(c) for c in classes] if classes is not None else None,
        "features": features,
        "example": {str(k): _plain(v) for k, v in complete.iloc[0].items()}
        if len(complete)
        else None,
        "versions": library_versions(),
    }


def _mark_imputed_numbers(model: Any, row: Any, features: list[dict]) -> None:
    """Mark nullable the numbers the model takes missing, though training had none.

    A model that imputes, or a tree that routes missing values, predicts a row
    with a NaN in such a feature; one that cannot raises. Each feature is
    tried alone on a complete row of the training frame.
    """
    import warnings

    import numpy as np

    for position, feature in enumerate(features):
        if feature["nullable"] or feature["type"] not in ("number", "integer"):
            continue
        probe = row.astype({row.columns[position]: float})
        probe.iloc[0, position] = np.nan
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                answer = np.asarray(model.predict(probe))
        except Exception:  # noqa: BLE001 - any refusal means "not nullable"
            continue
        if answer.dtype.kind not in "fc" or np.isfinite(answer).all():
            feature["nullable"] = True


def load_model(folder: str | Path, expected_sha256: str | None = None) -> Any:
    """Load the model saved in a run folder, checking its hash when one is given.

    Raises
    ------
    ModelError
        The file is missing, or its hash differs from ``expected_sha256``.
    """
    model_file = Path(folder) / MODEL_FILE
    if not model_file.is_file():
        raise ModelError(
            f"{model_file} does not exist; the notebook must call "
            "slope.save_model(model, X, output_dir)"
        )
    if expected_sha256 is not None and file_sha256(model_file) != expected_sha256:
        raise ModelError(
            f"{model_file} does not match the sha256 recorded for its run; "
            "it changed after the run: run the attempt again with --force"
        )

    import joblib

    return joblib.load(model_file)


def file_sha256(path: str | Path) -> str:
    """Return the hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def library_versions() -> dict[str, str]:
    """Return the versions that decide whether a saved model loads the same."""
    from importlib.metadata import PackageNotFoundError, version

    versions = {"python": platform.python_version()}
    for package in ("scikit-learn", "pandas", "numpy", "joblib", "papermill", "slope"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            continue
    return versions


def _describe_feature(name: object, column: Any) -> dict[str, Any]:
    import pandas as pd

    feature: dict[str, Any] = {"name": str(name), "nullable": bool(column.isna().any())}
    if pd.api.types.is_bool_dtype(column):
        feature["type"] = "boolean"
    elif pd.api.types.is_integer_dtype(column):
        feature["type"] = "integer"
    elif pd.api.types.is_numeric_dtype(column):
        feature["type"] = "number"
    else:
        feature["type"] = "category"
        feature["categories"] = sorted(str(v) for v in column.dropna().unique())
    if feature["type"] in ("integer", "number"):
        feature["min"] = _plain(column.min())
        feature["max"] = _plain(column.max())
    return feature


def _plain(value: Any) -> Any:
    """Turn numpy scalars into the JSON types they stand for."""
    return value.item() if hasattr(value, "item") else value
