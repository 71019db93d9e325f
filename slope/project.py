"""The project's shared settings, ``params/project.yaml``, and its folders."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slope.exceptions import ProjectError
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

    unknown = sorted(set(settings) - set(SETTINGS))
    if unknown:
        raise ProjectError(
            f"{path}: unknown setting {unknown[0]!r}; the settings are "
            f"{', '.join(SETTINGS)}"
        )
    if "metric" not in settings:
        raise ProjectError(f"{path}: 'metric' is missing; name the primary score")
    for key, expected in SETTINGS.items():
        _check_setting(path, key, settings.get(key), expected)
    _check_timezone(path, settings.get("timezone", "UTC"))
    _check_preload(path, settings.get("preload", []))

    return Project(root=root, **settings)


def _check_setting(path: Path, key: str, value: Any, expected: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) and expected is not bool:
        ok = False
    else:
        ok = isinstance(value, expected)
    if not ok:
        names = " or ".join(
            t.__name__
            for t in (expected if isinstance(expected, tuple) else (expected,))
        )
        raise ProjectError(
            f"{path}: {key!r} must be of type {names}, "
            f"got {value!r} ({type(value).__name__})"
        )
    if key == "timeout" and value <= 0:
        raise ProjectError(
            f"{path}: 'timeout' must be a positive number of seconds, got {value!r}"
        )


def _check_preload(path: Path, modules: list[Any]) -> None:
    for name in modules:
        if not isinstance(name, str) or not all(
            part.isidentifier() for part in name.split(".")
        ):
            raise ProjectError(
                f"{path}: 'preload' holds {name!r}, which is not a module name; "
                "list importable modules such as 'xgboost' or 'sklearn.svm'"
            )


def _check_timezone(path: Path, name: str) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise ProjectError(
            f"{path}: 'timezone' {name!r} is not a known time zone; "
            "use an IANA name such as 'UTC' or 'Europe/Paris'"
        ) from err
