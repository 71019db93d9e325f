"""Where the project is, seen from a notebook, a kernel or the command line."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_DIR_ENV = "SLOPE_PROJECT_DIR"
PROJECT_MARKER = Path("params") / "project.yaml"


def find_project_dir(start: Path | None = None) -> Path:
    """Return the project's root folder.

    The engine tells its kernels through ``SLOPE_PROJECT_DIR``; in JupyterLab
    the root is the nearest folder above the notebook that holds
    ``params/project.yaml``. Failing both, the current folder.
    """
    if os.environ.get(PROJECT_DIR_ENV):
        return Path(os.environ[PROJECT_DIR_ENV]).resolve()

    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / PROJECT_MARKER).is_file():
            return folder
    return here


def project_path(*parts: str | os.PathLike[str]) -> Path:
    """Resolve a path written relative to the project's root, such as a data file.

    The same parameter value (``data/penguins.csv``) then works from
    JupyterLab, where the kernel starts in ``notebooks/``, and from
    ``run_all.py``, where it starts in the run's own folder.
    """
    return find_project_dir().joinpath(*parts)
