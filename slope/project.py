"""The project's shared settings, ``params/project.yaml``, and its folders."""

from __future__ import annotations

import datetime as dt
import keyword
import math
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from slope.exceptions import ProjectError, did_you_mean
from slope.yamlio import load_yaml_mapping

PROJECT_FILE = "project.yaml"
SETTINGS = {
    "metric": str,
    "greater_is_better": bool,
    "baseline": str,
    "timeout": (int, float),
    "timezone": str,
    "kernel": str,
    "defaults": dict,
    "preload": list,
}
# what to write instead of a value of the wrong type
HOW_TO_WRITE = {
    "metric": "write the name of a score the notebooks record, e.g. accuracy",
    "greater_is_better": "write true or false",
    "baseline": "write an attempt's id (its params file's name without .yaml)",
    "timeout": "write a number of seconds, e.g. 600",
    "timezone": "write an IANA zone name such as UTC or Europe/Paris",
    "kernel": "write a kernel's name from `jupyter kernelspec list`, e.g. python3",
    "defaults": "write a mapping, one 'name: value' line per parameter, indented",
    "preload": "write a list of module names, e.g. [xgboost, sklearn.svm]",
}


@dataclass(frozen=True)
class Project:
    """A project's root folder and the settings in ``params/project.yaml``."""

    root: Path
    metric: str
    greater_is_better: bool = True
    baseline: str | None = None
    timeout: float = 600.0
    timezone: str = "UTC"
    kernel: str = "python3"
    defaults: dict[str, Any] = field(default_factory=dict)
    preload: list[str] = field(default_factory=list)  # more modules for fork servers

    @property
    def params_dir(self) -> Path:
        return self.root / "params"

    @property
    def notebooks_dir(self) -> Path:
        return self.root / "notebooks"

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    @property
    def reports_dir(self) -> Path:
        return self.root / "reports"

    @property
    def tzinfo(self) -> dt.tzinfo:
        """The zone that dates written without one are taken in."""
        from zoneinfo import ZoneInfo

        return ZoneInfo(self.timezone)


def load_project(root: str | Path) -> Project:
    """Read ``params/project.yaml`` under ``root``.

    Raises
    ------
    ProjectError
        The file is missing or does not parse; or, one line per problem, it
        lacks ``metric``, names an unknown setting, or a setting is empty or
        has the wrong type.
    """
    root = Path(root).resolve()
    path = root / "params" / PROJECT_FILE
    if not path.is_file():
        raise ProjectError(
            f"{path} does not exist; create it with at least 'metric: <score name>' "
            "(see README.md, 'The project's settings')"
        )
    settings = load_yaml_mapping(
        path, ProjectError, label=f"params/{PROJECT_FILE}", kind="settings file"
    )

    problems = [
        f"unknown setting {key!r}{did_you_mean(key, SETTINGS)}; the settings are "
        f"{', '.join(SETTINGS)}"
        for key in sorted(set(settings) - set(SETTINGS), key=str)
    ]
    if "metric" not in settings:
        problems.append(f"'metric' is missing; {HOW_TO_WRITE['metric']}")
    for key, expected in SETTINGS.items():
        if key in settings:
            problems += _check_setting(key, settings[key], expected)
    if isinstance(settings.get("timezone"), str) and settings["timezone"].strip():
        problems += _check_timezone(settings["timezone"])
    if isinstance(settings.get("preload"), list):
        problems += _check_preload(settings["preload"])
    if isinstance(settings.get("defaults"), dict):
        problems += _check_defaults(settings["defaults"])
    if problems:
        raise ProjectError("\n".join(f"{path}: {problem}" for problem in problems))

    # an empty 'baseline:' line means no baseline
    return Project(root=root, **{k: v for k, v in settings.items() if v is not None})


def _check_setting(key: str, value: Any, expected: Any) -> list[str]:
    if key == "baseline" and value is None:
        return []
    if value is None or (isinstance(value, str) and not value.strip()):
        keep = "" if key == "metric" else f", or remove the line{_default_of(key)}"
        return [f"{key!r} is empty; {HOW_TO_WRITE[key]}{keep}"]
    if isinstance(value, bool) and expected is not bool:
        ok = False
    else:
        ok = isinstance(value, expected)
    if not ok:
        names = " or ".join(
            t.__name__
            for t in (expected if isinstance(expected, tuple) else (expected,))
        )
        return [
            f"{key!r} must be of type {names}, got {value!r} "
            f"({type(value).__name__}); {HOW_TO_WRITE[key]}"
        ]
    if key == "timeout" and not (math.isfinite(value) and value > 0):
        return [
            f"'timeout' must be a positive number of seconds, got {value!r}; "
            f"{HOW_TO_WRITE['timeout']}"
        ]
    return []


def _default_of(key: str) -> str:
    """`` for the default, 600`` as YAML writes it; nothing for a mapping or list."""
    default = {f.name: f.default for f in fields(Project)}[key]
    if isinstance(default, bool):
        return f" for the default, {str(default).lower()}"
    if isinstance(default, float):
        return f" for the default, {default:g}"
    return f" for the default, {default}" if isinstance(default, str) else ""


def _check_defaults(defaults: dict[Any, Any]) -> list[str]:
    return [
        f"'defaults' holds {name!r}, which is not a Python name; notebook "
        f"parameters are Python variables{_python_name(name)}"
        for name in defaults
        if not _is_python_name(name)
    ]


def _is_python_name(name: Any) -> bool:
    return isinstance(name, str) and name.isidentifier() and not keyword.iskeyword(name)


def _python_name(name: Any) -> str:
    fix = re.sub(r"\W+", "_", str(name)).strip("_")
    fix = f"{fix}_" if keyword.iskeyword(fix) else fix
    if _is_python_name(fix):
        return f", such as {fix!r}"
    return ": letters, digits and '_', not starting with a digit"


def _check_preload(modules: list[Any]) -> list[str]:
    return [
        f"'preload' holds {name!r}, which is not a module name; "
        "list importable modules such as 'xgboost' or 'sklearn.svm'"
        for name in modules
        if not isinstance(name, str)
        or not all(part.isidentifier() for part in name.split("."))
    ]


def _check_timezone(name: str) -> list[str]:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return [
            f"'timezone' {name!r} is not a known time zone; "
            "use an IANA name such as 'UTC' or 'Europe/Paris'"
        ]
    return []
