"""What changed from one attempt to the next, and who made each attempt.

Each attempt is compared with the *reference*: the best-scoring ``ok``
attempt among the rows before it in the progress table (which is in date
order), so that every step of the plot says what moved it. Among equal best
scores the latest wins, since that is the attempt the next one most likely
started from.

The parameters compared are the attempt's resolved parameters over its
notebook's literal defaults, so that leaving out ``scale: true`` reads
``scale: true → false``. Nested mappings (``estimator_params``) are compared
key by key; a key missing on one side shows as ``–``. When the notebook
changed, only the parameters the new notebook declares are compared.

Authors come from git: the author of the commit that added each params file,
read with one ``git log`` call. Outside a git repository there are none.
"""

from __future__ import annotations

import logging
import math
import re
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

logger = logging.getLogger(__name__)

MISSING = "–"
ARROW = " → "
SEPARATOR = "; "
FIRST = "first attempt"
NO_REFERENCE = "no scored attempt before it"
MAX_ITEMS = 6
VALUE_CHARS = 36
ENGINE_PARAMETERS = ("output_dir",)
IMPORT_PATH = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*\.([A-Z]\w*)")
_ABSENT = object()


def describe_changes(
    progress: pd.DataFrame,
    attempts: Iterable[Any],
    metric: str,
    greater_is_better: bool = True,
) -> list[str]:
    """Say, for each row of the progress table, how it differs from the best before it.

    Parameters
    ----------
    progress
        The progress table in date order, with ``attempt``, ``status`` and the
        metric's column.
    attempts
        The attempts (:class:`slope.attempts.Attempt`, or anything with
        ``id``, ``notebook``, ``parameters`` and optionally ``spec``); an
        invalid one (``error`` set) gets an empty text.
    metric, greater_is_better
        The primary score and its direction.

    Returns
    -------
    list of str
        One line per row, such as ``vs 004-rf: estimator: RandomForestClassifier
        → GradientBoostingClassifier; max_depth: 6 → –``, or ``first attempt``.
    """
    by_id = {str(attempt.id): attempt for attempt in attempts}
    scores = pd.to_numeric(progress.get(metric), errors="coerce")
    texts, best, best_score = [], None, math.nan
    for row, (name, status) in enumerate(
        zip(progress["attempt"].astype(str), progress["status"], strict=True)
    ):
        texts.append(_describe(by_id.get(name), by_id.get(best), row == 0))
        score = float(scores.iloc[row]) if scores is not None else math.nan
        scored = status == "ok" and math.isfinite(score)
        if scored and (best is None or _at_least(score, best_score, greater_is_better)):
            best, best_score = name, score
    return texts


def diff_parameters(
    before: Mapping[str, Any], after: Mapping[str, Any], keys: Sequence[str]
) -> list[tuple[str, str, str]]:
    """Return ``(name, old, new)`` for each of ``keys`` whose value differs.

    Mappings on both sides are compared key by key; a nested key is named by
    its own name unless a top-level key has the same one.
    """
    changes = []
    for key in keys:
        old, new = before.get(key, _ABSENT), after.get(key, _ABSENT)
        if _mapping_or_absent(old) and _mapping_or_absent(new):
            inner = _keys(_as_dict(old), _as_dict(new))
            for name, a, b in diff_parameters(_as_dict(old), _as_dict(new), inner):
                clash = name in before or name in after
                changes.append((f"{key}.{name}" if clash else name, a, b))
        elif not _same(old, new):
            changes.append((key, *show_pair(old, new)))
    return changes


def show_value(value: Any) -> str:
    """Show a parameter value compactly: class names for import paths, YAML words."""
    text = _show(value)
    if len(text) > VALUE_CHARS:
        text = text[: VALUE_CHARS - 1] + "…"
    return text


def show_pair(old: Any, new: Any) -> tuple[str, str]:
    """Show two values; in full when their short forms would read the same."""
    a, b = show_value(old), show_value(new)
    if a == b and isinstance(old, str) and isinstance(new, str):
        return old, new
    return a, b


def find_authors(params_dir: str | Path) -> dict[str, str] | None:
    """Map each attempt id to the author of the commit that added its params file.

    One ``git log --diff-filter=A`` call reads every file. Returns None when
    ``params_dir`` is not inside a git repository, or git is not installed;
    an attempt whose file was never committed is not in the mapping.
    """
    command = [
        "git",
        "-c",
        "core.quotePath=false",
        "log",
        "--diff-filter=A",
        "--no-renames",
        "--name-only",
        "--relative",
        "--format=%x00%an",
        "--",
        ".",
    ]
    try:
        done = subprocess.run(
            command,
            cwd=params_dir,
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        logger.debug("no authors: git log failed in %s: %s", params_dir, err)
        return None
    if done.returncode != 0:
        logger.debug("no authors: %s is not in a git repository", params_dir)
        return None
    return _parse_log(done.stdout)


def count_by_author(authors: Iterable[str]) -> list[tuple[str, int]]:
    """Return ``(author, attempts)`` pairs, most attempts first; blanks left out."""
    counts = pd.Series([a for a in authors if a]).value_counts(sort=False)
    return sorted(counts.items(), key=lambda pair: (-pair[1], pair[0]))


def _describe(attempt: Any, reference: Any, first: bool) -> str:
    if attempt is None or getattr(attempt, "error", None):
        return ""
    if reference is None:
        return FIRST if first else NO_REFERENCE

    before, after = _effective(reference), _effective(attempt)
    items = []
    if reference.notebook != attempt.notebook:
        items.append(("notebook", str(reference.notebook), str(attempt.notebook)))
        keys = list(after)
    else:
        keys = _keys(before, after)
    items += diff_parameters(before, after, keys)

    if not items:
        return f"same notebook and parameters as {reference.id}"
    shown = [f"{name}: {old}{ARROW}{new}" for name, old, new in items[:MAX_ITEMS]]
    if len(items) > MAX_ITEMS:
        shown.append(f"and {len(items) - MAX_ITEMS} more")
    return f"vs {reference.id}: " + SEPARATOR.join(shown)


def _effective(attempt: Any) -> dict[str, Any]:
    """The notebook's literal defaults under the attempt's resolved parameters."""
    from slope.inspection import UNKNOWN

    spec = getattr(attempt, "spec", None)
    declared = getattr(spec, "parameters", None) or {}
    values = {k: v for k, v in declared.items() if v is not UNKNOWN}
    values.update(attempt.parameters or {})
    return {k: v for k, v in values.items() if k not in ENGINE_PARAMETERS}


def _keys(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    return list(after) + [key for key in before if key not in after]


def _at_least(score: float, best: float, greater_is_better: bool) -> bool:
    return score >= best if greater_is_better else score <= best


def _mapping_or_absent(value: Any) -> bool:
    return value is _ABSENT or isinstance(value, Mapping)


def _as_dict(value: Any) -> dict[str, Any]:
    return {} if value is _ABSENT else {str(k): v for k, v in value.items()}


def _same(old: Any, new: Any) -> bool:
    return type(old) is type(new) and old == new


def _show(value: Any) -> str:
    if value is _ABSENT:
        return MISSING
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float):
        text = repr(value)
        return text if len(text) <= 8 else format(value, ".6g")
    if isinstance(value, str):
        match = IMPORT_PATH.fullmatch(value)
        return match.group(2) if match else (value or "''")
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {_show(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return str(value)


def _parse_log(text: str) -> dict[str, str]:
    """Read ``%x00%an`` headers and file names; git lists newest first."""
    authors: dict[str, str] = {}
    author = ""
    for line in text.splitlines():
        if line.startswith("\0"):
            author = line[1:].strip()
        elif line and "/" not in line and Path(line).suffix in (".yaml", ".yml"):
            authors[Path(line).stem] = author  # the oldest commit is read last
    return authors
