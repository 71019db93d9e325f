"""Discovering the attempts in ``params/`` and validating each before any kernel starts.

Validation never stops at the first bad attempt, nor at the first problem of
one: each attempt comes back either valid, with its resolved parameters, or
invalid, with one line per problem, each naming the file, the key, the value
and the fix.
"""

from __future__ import annotations

import datetime as dt
import keyword
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slope.exceptions import AttemptError, did_you_mean
from slope.inspection import UNKNOWN, NotebookSpec, inspect_notebook
from slope.project import PROJECT_FILE, Project
from slope.yamlio import load_yaml_mapping, yaml11_booleans

logger = logging.getLogger(__name__)

ATTEMPT_KEYS = ("notebook", "date", "notes", "parameters", "timeout")
ENGINE_PARAMETERS = ("output_dir",)
SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


@dataclass
class Attempt:
    """One params file: valid, with everything needed to run it, or invalid."""

    id: str
    path: Path
    notebook: str | None = None
    date: dt.datetime | None = None
    notes: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    timeout: float | None = None
    spec: NotebookSpec | None = None
    error: str | None = None

    @property
    def valid(self) -> bool:
        return self.error is None


def load_attempts(project: Project) -> list[Attempt]:
    """Read and validate every ``params/*.yaml`` but ``project.yaml``, sorted by id."""
    files = sorted(
        p for p in project.params_dir.glob("*.y*ml") if p.name != PROJECT_FILE
    )
    specs: dict[Path, NotebookSpec | AttemptError] = {}
    return [load_attempt(project, path, specs) for path in files]


def load_attempt(
    project: Project,
    path: Path,
    specs: dict[Path, NotebookSpec | AttemptError] | None = None,
) -> Attempt:
    """Validate one params file; an invalid one carries its problems in ``error``.

    ``error`` then holds one line per problem found.
    """
    attempt = Attempt(id=path.stem, path=path)
    problems = _Problems()
    try:
        _fill_attempt(attempt, project, specs if specs is not None else {}, problems)
    except AttemptError as err:
        problems.add(err)
    if problems.messages:
        attempt.error = "\n".join(problems.messages)
    return attempt


class _Problems:
    """The problems of one params file, gathered so that all are told at once."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def add(self, err: AttemptError) -> None:
        self.messages.append(str(err))

    def check(self, step: Any, *args: Any) -> Any:
        """Return ``step(*args)``, or None once its AttemptError is noted."""
        try:
            return step(*args)
        except AttemptError as err:
            self.add(err)
            return None


def _fill_attempt(
    attempt: Attempt, project: Project, specs: dict[Path, Any], problems: _Problems
) -> None:
    path = attempt.path
    if not SAFE_ID.fullmatch(attempt.id):
        problems.add(
            AttemptError(
                f"{_at(path)}: the file name {attempt.id!r} cannot be an attempt id, "
                "which names its run folder; use letters, digits, '-', '_' and '.', "
                f"for example {_safe_id(attempt.id)!r}.yaml"
            )
        )
    content = load_yaml_mapping(
        path, AttemptError, label=_at(path), kind="attempt file"
    )
    problems.check(_check_keys, path, content)

    attempt.notes = problems.check(_notes, path, content.get("notes")) or ""
    attempt.date = problems.check(parse_date, path, content.get("date"), project.tzinfo)
    attempt.timeout = problems.check(_timeout, path, content.get("timeout"))
    if "notebook" not in content:
        return
    attempt.notebook = _notebook_name(path, content.get("notebook"))
    spec = _notebook_spec(project, path, attempt.notebook, specs)
    attempt.spec = spec
    attempt.parameters = resolve_parameters(
        path, spec, project.defaults, content.get("parameters")
    )


def _check_keys(path: Path, content: dict[str, Any]) -> None:
    problems = [
        f"{_at(path)}: unknown key {key!r}{did_you_mean(key, ATTEMPT_KEYS)}; "
        f"an attempt file has {', '.join(ATTEMPT_KEYS)}, and the notebook's "
        "parameters go under 'parameters:'"
        for key in content
        if key not in ATTEMPT_KEYS
    ]
    if "notebook" not in content:
        problems.append(
            f"{_at(path)}: 'notebook' is missing; name a notebook in notebooks/, "
            "such as 'notebook: train.ipynb'"
        )
    if problems:
        raise AttemptError("\n".join(problems))


def _notes(path: Path, notes: Any) -> str:
    if notes is None:
        return ""
    if not isinstance(notes, str | int | float):
        raise AttemptError(
            f"{_at(path)}: 'notes' must be text, got a {type(notes).__name__}; "
            "quote it, or use a '|' block for several lines"
        )
    return str(notes)


def _timeout(path: Path, timeout: Any) -> float | None:
    if timeout is None:
        return None
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or timeout <= 0
    ):
        raise AttemptError(
            f"{_at(path)}: 'timeout' must be a positive number of seconds, "
            f"got {timeout!r}"
        )
    return float(timeout)


def parse_date(path: Path, value: Any, tz: dt.tzinfo) -> dt.datetime | None:
    """Turn an attempt's ``date`` into an aware UTC time.

    A date alone means midnight; a time without a zone is taken in the
    project's ``timezone`` (UTC unless set).
    """
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip())
        except ValueError as err:
            raise AttemptError(
                f"{_at(path)}: 'date' {value!r} is not a date; write it as "
                "YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS][+HH:MM]"
            ) from err
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime.combine(value, dt.time())
    if not isinstance(value, dt.datetime):
        raise AttemptError(
            f"{_at(path)}: 'date' must be a date such as 2026-11-12, got {value!r}"
        )
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return value.astimezone(dt.timezone.utc)


def _notebook_name(path: Path, name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise AttemptError(
            f"{_at(path)}: 'notebook' must be a notebook's file name, got {name!r}"
        )
    return name.strip()


def _notebook_spec(
    project: Project, path: Path, name: str, specs: dict[Path, Any]
) -> NotebookSpec:
    folder = project.notebooks_dir.resolve()
    notebook = (folder / name).resolve()
    if not notebook.is_relative_to(folder) or notebook.suffix != ".ipynb":
        raise AttemptError(
            f"{_at(path)}: 'notebook' {name!r} must be an .ipynb file inside "
            "notebooks/; write its path relative to that folder"
        )
    if not notebook.is_file():
        known = sorted(
            str(p.relative_to(folder))
            for p in folder.rglob("*.ipynb")
            if ".ipynb_checkpoints" not in p.parts
        )
        raise AttemptError(
            f"{_at(path)}: 'notebook' {name!r} does not exist in notebooks/"
            f"{did_you_mean(name, known)}; the notebooks are: "
            f"{', '.join(known) or 'none'}"
        )
    if notebook not in specs:
        try:
            specs[notebook] = inspect_notebook(notebook, project.kernel)
        except AttemptError as err:
            specs[notebook] = err
    spec = specs[notebook]
    if isinstance(spec, AttemptError):
        raise AttemptError(f"{_at(path)}: {spec}")
    return spec


def resolve_parameters(
    path: Path, spec: NotebookSpec, defaults: dict[str, Any], given: Any
) -> dict[str, Any]:
    """Merge the project's defaults under the attempt's parameters and check each.

    A project default applies only to notebooks that declare it; the attempt's
    own keys must all be declared. Raises AttemptError with one line for each
    key that is not declared and each value that does not fit.
    """
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise AttemptError(
            f"{_at(path)}: 'parameters' holds a {type(given).__name__}, but a mapping "
            "of 'name: value' lines is expected, one per notebook parameter"
        )
    problems = _Problems()
    for key in given:
        problems.check(_check_key, path, spec, key)
    merged = {k: v for k, v in defaults.items() if k in spec.parameters}
    merged.update((k, v) for k, v in given.items() if k in spec.parameters)
    resolved = {
        key: problems.check(fit_value, path, key, value, spec.parameters[key])
        for key, value in merged.items()
    }
    if problems.messages:
        raise AttemptError("\n".join(problems.messages))
    _warn_of_yaml11_booleans(path, spec, given, resolved)
    return resolved


def _warn_of_yaml11_booleans(
    path: Path, spec: NotebookSpec, given: dict[str, Any], resolved: dict[str, Any]
) -> None:
    """Say where an unquoted yes/no/on/off became a boolean no default checks."""
    unchecked = [
        key
        for key in given
        if isinstance(resolved.get(key), bool)
        and spec.parameters.get(key, None) in (None, UNKNOWN)
    ]
    words = yaml11_booleans(path, "parameters") if unchecked else {}
    for key in unchecked:
        if key in words:
            logger.warning(
                "%s: parameter %r is %s, which YAML reads as %s; the notebook's "
                "default gives no type to check it against: write %s if you mean "
                "it, null for None, or %r in quotes for the text",
                _at(path),
                key,
                words[key],
                resolved[key],
                str(resolved[key]).lower(),
                words[key],
            )


def _check_key(path: Path, spec: NotebookSpec, key: Any) -> None:
    where = f"{_at(path)}: parameter {key!r}"
    if not isinstance(key, str) or not key.isidentifier() or keyword.iskeyword(key):
        fix = _safe_id(str(key)).replace("-", "_").replace(".", "_")
        raise AttemptError(
            f"{where} is not a Python name; notebook parameters are Python "
            f"variables, such as {fix!r}"
        )
    if key in ENGINE_PARAMETERS:
        raise AttemptError(
            f"{where} is set by run_all.py itself; remove it from the attempt"
        )
    if key not in spec.parameters:
        declared = [k for k in spec.parameters if k not in ENGINE_PARAMETERS]
        raise AttemptError(
            f"{where} is not declared in the parameters cell of "
            f"notebooks/{spec.path.name}{did_you_mean(key, declared)}; it declares "
            f"{', '.join(declared) or 'nothing'}"
        )


def fit_value(path: Path, key: str, value: Any, default: Any) -> Any:
    """Return ``value`` fitted to the type of the notebook's default, or raise.

    YAML 1.1 reads ``1e-3`` as a string: for a float default it becomes 0.001.
    A default of None, or one that is an expression, accepts any value.
    """
    if default is None or default is UNKNOWN or value is None:
        return value
    expected = type(default)
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if expected is float and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    if expected is tuple and isinstance(value, list):
        return value
    if type(value) is expected or (expected is float and type(value) is float):
        return value
    raise AttemptError(
        f"{_at(path)}: parameter {key!r} is {value!r} ({type(value).__name__}), but "
        f"the notebook's default {default!r} is {_a(expected.__name__)}"
        f"{_yaml_hint(value, expected)}"
    )


def _yaml_hint(value: Any, expected: type) -> str:
    if expected is str and isinstance(value, bool | int | float | dt.date):
        return (
            "; YAML read the unquoted value as a "
            f"{type(value).__name__}: put it in quotes"
        )
    if expected is bool and isinstance(value, str):
        return "; write true or false"
    return f"; give {_a(expected.__name__)}"


def _a(noun: str) -> str:
    return f"an {noun}" if noun[0] in "aeiou" else f"a {noun}"


def _at(path: Path) -> str:
    """How messages name an attempt's file."""
    return f"params/{path.name}"


def _safe_id(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")
    return cleaned or "attempt"
