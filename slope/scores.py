"""Scores: recorded by a notebook as it runs, read back from the executed notebook.

A notebook calls :func:`record_scores` once; the scores travel inside the
notebook's own output under a slope mimetype, so an executed notebook carries
its results and a run folder explains itself. JupyterLab shows the same output
as a small table.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping
from numbers import Real
from typing import Any

from slope.exceptions import ScoreError

SCORES_MIMETYPE = "application/vnd.slope.scores+json"


def record_scores(
    scores: Mapping[str, float] | None = None, **more: float
) -> dict[str, float]:
    """Record named scores in the notebook's output and show them.

    Write a spread as ``<name>_std`` beside its score: ``accuracy=0.91,
    accuracy_std=0.02``. Call it once, at the end of the notebook; a later call
    adds to and overrides an earlier one.

    Parameters
    ----------
    scores, **more
        Score names and values; each value must be a finite real number.

    Returns
    -------
    dict
        The scores as plain floats.

    Raises
    ------
    ScoreError
        A name is not a non-empty string, or a value is not a finite number.
    """
    recorded = {**(scores or {}), **more}
    if not recorded:
        raise ScoreError("record_scores() got no scores; pass them as name=value")
    clean = {name: _as_score(name, value) for name, value in recorded.items()}
    _display(clean)
    return clean


def collect_scores(notebook: Mapping[str, Any]) -> dict[str, float]:
    """Read the scores an executed notebook recorded; an empty dict if none."""
    scores: dict[str, float] = {}
    for cell in notebook.get("cells", []):
        for output in (
            cell.get("outputs", []) if cell.get("cell_type") == "code" else []
        ):
            payload = output.get("data", {}).get(SCORES_MIMETYPE)
            if isinstance(payload, Mapping):
                scores.update(payload)
    return scores


def recorded_scores(names: Iterable[str]) -> str:
    """Say which scores were recorded, spreads (``accuracy_std``) left out.

    For messages about a missing metric: ``"accuracy, f1"``, or
    ``"no scores"``.
    """
    names = set(names)
    shown = sorted(n for n in names if n.removesuffix("_std") not in names - {n})
    return ", ".join(shown) or "no scores"


def _as_score(name: object, value: object) -> float:
    if not isinstance(name, str) or not name:
        raise ScoreError(f"a score name must be a non-empty string, got {name!r}")
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ScoreError(
            f"score {name!r} must be a number, got {value!r} "
            f"({type(value).__name__}); pass float(...) of it"
        )
    if not math.isfinite(value):
        raise ScoreError(
            f"score {name!r} is {value!r}; a score must be finite "
            "(did a cross-validation fold fail? see error_score='raise')"
        )
    return float(value)


def _display(scores: dict[str, float]) -> None:
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        return
    if get_ipython() is None:  # plain Python: the return value is the record
        return

    rows = "".join(
        f"<tr><th>{html.escape(name)}</th><td>{value:.4g}</td></tr>"
        for name, value in scores.items()
    )
    text = "\n".join(f"{name}: {value:.4g}" for name, value in scores.items())
    bundle = {
        SCORES_MIMETYPE: scores,
        "text/html": f"<table class='slope-scores'>{rows}</table>",
        "text/plain": text,
    }
    display(bundle, raw=True)
