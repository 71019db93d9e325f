"""Fixtures shared by the tests: small projects in a temporary folder."""

from __future__ import annotations

import shutil
import textwrap
import time
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


def processes_whose_cwd(matches: Callable[[Path], bool]) -> list[int]:
    """Processes whose working directory ``matches`` (a kernel runs in its run's)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            cwd = (entry / "cwd").resolve()
        except OSError:
            continue
        if entry.name.isdigit() and matches(cwd):
            found.append(int(entry.name))
    return found


def kernel_processes_in(folder: Path) -> list[int]:
    """Processes whose working directory lies in ``folder`` (kernels run there)."""
    return processes_whose_cwd(lambda cwd: cwd.is_relative_to(folder))


def wait_for(condition: Callable[[], bool], seconds: float) -> None:
    """Wait until ``condition()`` holds; fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {seconds} s: {condition}")
        time.sleep(0.2)


def fork_servers_of(root: Path) -> list[int]:
    """Fork servers (and forked kernels) started for the project in ``root``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if b"slope.fastkernel.server" in command and str(root).encode() in environ:
            found.append(int(entry.name))
    return found
