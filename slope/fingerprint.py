"""An attempt's fingerprint: what decides whether its last run is still current.

It covers the notebook's source (not its outputs), the kernel, the resolved
parameters, the content of every data file a parameter names, and the
engine's version. An attempt whose last run is ``ok`` with the same
fingerprint is not run again unless forced.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from slope.attempts import Attempt
from slope.model import file_sha256


def fingerprint_attempt(
    attempt: Attempt, project_root: Path, file_digests: dict[Path, str]
) -> str:
    """Return the hex sha256 of everything the attempt's result depends on.

    ``file_digests`` caches data-file hashes across attempts that share them.
    """
    from slope import __version__
    from slope.inspection import UNKNOWN

    defaults = {k: v for k, v in attempt.spec.parameters.items() if v is not UNKNOWN}
    values = {**defaults, **attempt.parameters}
    data = {
        _label(path, project_root): _digest(path, file_digests)
        for path in data_files(values, project_root)
    }
    payload = {
        "engine": __version__,
        "notebook": attempt.spec.source_digest,
        "kernel": attempt.spec.kernel,
        "parameters": attempt.parameters,
        "data": data,
    }
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def data_files(parameters: dict[str, Any], project_root: Path) -> list[Path]:
    """The files that parameter values name, relative to the project or absolute."""
    files = set()
    for value in _strings(parameters):
        if len(value) > 4096 or "\0" in value or not value.strip():
            continue
        candidate = project_root / value
        try:
            if candidate.is_file():
                files.add(candidate.resolve())
        except OSError:
            continue
    return sorted(files)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def _label(path: Path, project_root: Path) -> str:
    return str(
        path.relative_to(project_root) if path.is_relative_to(project_root) else path
    )


def _digest(path: Path, cache: dict[Path, str]) -> str:
    if path not in cache:
        cache[path] = file_sha256(path)
    return cache[path]
