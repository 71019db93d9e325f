"""Fixtures shared by the tests: small projects in a temporary folder."""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
SCENARIOS = TESTS / "notebooks"
CASE_PARAMS = TESTS / "params"

PROJECT_YAML = """\
metric: accuracy
greater_is_better: true
timeout: 60
"""


def write_project(
    root: Path,
    attempts: dict[str, str],
    project_yaml: str = PROJECT_YAML,
    notebooks: list[str] | None = None,
) -> Path:
    """Lay out a project: scenario notebooks, ``params/`` files and settings.

    ``attempts`` maps a params file name (without ``.yaml``) to its text.
    """
    (root / "params").mkdir(parents=True, exist_ok=True)
    (root / "notebooks").mkdir(exist_ok=True)
    for notebook in notebooks or [p.name for p in SCENARIOS.glob("*.ipynb")]:
        shutil.copy(SCENARIOS / notebook, root / "notebooks" / notebook)
    (root / "params" / "project.yaml").write_text(textwrap.dedent(project_yaml))
    for name, text in attempts.items():
        (root / "params" / f"{name}.yaml").write_text(textwrap.dedent(text))
    return root


@pytest.fixture
def make_project(tmp_path: Path) -> Callable[..., Path]:
    """Return a function that lays out a project under ``tmp_path``."""

    def make(attempts: dict[str, str], **kwargs) -> Path:
        return write_project(tmp_path / "project", attempts, **kwargs)

    return make
