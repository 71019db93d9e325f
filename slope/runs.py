"""Run records: ``runs/<id>/run.json``, the swap into place, and the history.

A run is written into a staging folder and replaces ``runs/<id>/`` only once
it is complete; the run it displaces is kept as ``runs/<id>/previous/``.
``runs/history.jsonl`` gains one line per execution and is never rewritten.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

RUN_FILE = "run.json"
HISTORY_FILE = "history.jsonl"
STAGING_DIR = ".staging"
PREVIOUS_DIR = "previous"


def read_run(runs_dir: Path, attempt_id: str) -> dict[str, Any] | None:
    """Return the record of an attempt's current run, or None if it has none."""
    path = runs_dir / attempt_id / RUN_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        logger.warning("%s cannot be read (%s); the attempt will run again", path, err)
        return None


def commit_run(runs_dir: Path, staging: Path, record: dict[str, Any]) -> Path:
    """Write ``run.json`` into the staging folder and move it to ``runs/<id>/``."""
    (staging / RUN_FILE).write_text(
        json.dumps(record, indent=2, ensure_ascii=False), encoding="utf-8"
    )
    target = runs_dir / record["attempt"]
    if target.exists():
        shutil.rmtree(target / PREVIOUS_DIR, ignore_errors=True)
        os.replace(target, staging / PREVIOUS_DIR)
    os.replace(staging, target)
    return target


def append_history(runs_dir: Path, record: dict[str, Any]) -> None:
    """Add one line to ``runs/history.jsonl`` and make sure it reached the disk."""
    line = json.dumps(record, ensure_ascii=False, sort_keys=True)
    with open(runs_dir / HISTORY_FILE, "a", encoding="utf-8") as stream:
        stream.write(line + "\n")
        stream.flush()
        os.fsync(stream.fileno())


def read_history(runs_dir: Path) -> list[dict[str, Any]]:
    """Return every execution recorded in the history, oldest first."""
    path = runs_dir / HISTORY_FILE
    if not path.is_file():
        return []
    records = []
    with open(path, encoding="utf-8") as stream:
        for number, line in enumerate(stream, start=1):
            try:
                records.append(json.loads(line))
            except ValueError:
                logger.warning("%s:%d is not a JSON line; skipped", path, number)
    return records


def first_success(history: list[dict[str, Any]]) -> dict[str, str]:
    """Map each attempt id to the start time of its first ``ok`` run."""
    first: dict[str, str] = {}
    for record in history:
        if record.get("status") == "ok":
            first.setdefault(record["attempt"], record["started"])
    return first


def describe_error(error: dict[str, Any] | None) -> str:
    """One line for the table and the log: the error's name, value and cell.

    The cell is named by its prompt, ``In [n]``, as the run page and
    JupyterLab show it; older records name its index in the notebook.
    """
    if not error:
        return ""
    if error.get("execution_count") is not None:
        cell = f" (In [{error['execution_count']}])"
    elif error.get("cell") is not None:
        cell = f" (cell {error['cell']})"
    else:
        cell = ""
    return f"{error.get('ename', 'Error')}: {error.get('evalue', '')}{cell}"


def staging_dir(runs_dir: Path, attempt_id: str) -> Path:
    """Return a new, empty staging folder for one execution of an attempt."""
    import tempfile

    root = runs_dir / STAGING_DIR
    root.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f"{attempt_id}-", dir=root))
    folder.chmod(0o755)  # mkdtemp's 0700 would outlive the swap into runs/
    return folder
