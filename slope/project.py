"""The project's shared settings, ``params/project.yaml``, and its folders."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
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
    "baseline": "write an attempt's id, its params file's name without .yaml",
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
        The file is missing, does not parse, lacks ``metric``, or a setting
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
        problems.append("'metric' is missing; name the primary score")
    for key, expected in SETTINGS.items():
        problems += _check_setting(key, settings.get(key), expected)
    if isinstance(settings.get("timezone"), str):
        problems += _check_timezone(settings["timezone"])
    if isinstance(settings.get("preload"), list):
        problems += _check_preload(settings["preload"])
    if problems:
        raise ProjectError("\n".join(f"{path}: {problem}" for problem in problems))

    return Project(root=root, **settings)


def _check_setting(key: str, value: Any, expected: Any) -> list[str]:
    if value is None:
        return []
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
    if key == "timeout" and value <= 0:
        return [f"'timeout' must be a positive number of seconds, got {value!r}"]
    return []


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
