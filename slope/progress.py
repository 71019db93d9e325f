"""The progress table: one row per attempt, from its params file and its last run."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from slope.attempts import ENGINE_PARAMETERS, Attempt
from slope.exceptions import did_you_mean
from slope.project import PROJECT_FILE, Project
from slope.runs import describe_error, first_success, read_history, read_run
from slope.scores import recorded_scores

logger = logging.getLogger(__name__)

STATUSES = ("ok", "failed", "timeout", "kernel_died", "no_score", "invalid", "pending")


def build_progress(project: Project, attempts: list[Attempt]) -> pd.DataFrame:
    """Return the progress table, one row per attempt, oldest first.

    Columns: ``attempt``, ``date``, ``notebook``, ``status``, the primary
    metric and its ``_std``, the other scores, ``duration_s``, ``notes``,
    ``changes`` (how the attempt differs from the best one before it),
    ``author`` (only where git knows who added the params files), ``error``
    and ``run_page``. A valid attempt that has never run is ``pending``; an
    invalid one is ``invalid`` with its message as ``error``.
    """
    first_ok = first_success(read_history(project.runs_dir))
    rows = [_row(project, attempt, first_ok) for attempt in attempts]
    _check_metric_and_baseline(project, attempts, rows)
    _check_defaults(project, attempts)
    table = pd.DataFrame(rows, columns=_columns(project.metric, rows))
    table["date"] = pd.to_datetime(table["date"], utc=True, format="ISO8601")
    table = table.sort_values(["date", "attempt"], na_position="last", kind="stable")
    table = table.reset_index(drop=True)
    return _add_changes_and_authors(project, attempts, table)


def _add_changes_and_authors(
    project: Project, attempts: list[Attempt], table: pd.DataFrame
) -> pd.DataFrame:
    from slope.changes import describe_changes, find_authors

    changes = describe_changes(
        table, attempts, project.metric, project.greater_is_better
    )
    table.insert(table.columns.get_loc("notes") + 1, "changes", changes)
    authors = find_authors(project.params_dir) if attempts else None
    if authors:
        names = [authors.get(str(a), "") for a in table["attempt"]]
        table.insert(table.columns.get_loc("changes") + 1, "author", names)
    return table


def _row(
    project: Project, attempt: Attempt, first_ok: dict[str, str]
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "attempt": attempt.id,
        "date": attempt.date.isoformat() if attempt.date else None,
        "notebook": attempt.notebook or "",
        "status": "invalid" if not attempt.valid else "pending",
        "duration_s": None,
        "notes": attempt.notes,
        "error": attempt.error or "",
        "run_page": "",
    }
    run = read_run(project.runs_dir, attempt.id) if attempt.valid else None
    if run is None:
        return row

    scores = run.get("scores") or {}
    row.update(scores)
    row["status"] = run["status"]
    row["duration_s"] = run.get("duration_s")
    row["error"] = describe_error(run.get("error"))
    if row["status"] == "ok" and project.metric not in scores:
        # project.yaml's metric changed (or is misspelt) since this run
        row["status"] = "no_score"
        row["error"] = (
            f"NoScore: the run recorded no {project.metric!r} "
            f"(it recorded {recorded_scores(scores)}); set "
            f"'metric' in params/{PROJECT_FILE} to a score it records, or record "
            f"{project.metric!r} in notebooks/{row['notebook']}"
        )
    row["run_page"] = f"runs/{attempt.id}.html"
    if row["date"] is None:
        row["date"] = first_ok.get(attempt.id)
    return row


def _check_metric_and_baseline(
    project: Project, attempts: list[Attempt], rows: list[dict[str, Any]]
) -> None:
    """Warn where project.yaml names a metric no run recorded, or no attempt."""
    where = f"params/{PROJECT_FILE}"
    recorded = {name for row in rows for name in row if name not in _TAIL + _HEAD}
    if recorded and project.metric not in recorded:
        logger.warning(
            "%s: metric %r is recorded by no run%s; the runs record %s. Name one "
            "of them, or record %r in the notebooks",
            where,
            project.metric,
            did_you_mean(project.metric, recorded),
            recorded_scores(recorded),
            project.metric,
        )
    ids = [attempt.id for attempt in attempts]
    if project.baseline is not None and ids and project.baseline not in ids:
        logger.warning(
            "%s: baseline %r is not an attempt%s; write the id of one of the "
            "params files (its name without .yaml), or remove the line",
            where,
            project.baseline,
            did_you_mean(project.baseline, ids),
        )


def _check_defaults(project: Project, attempts: list[Attempt]) -> None:
    """Warn of a default in project.yaml that no attempt's notebook declares."""
    declared = sorted(
        {name for a in attempts if a.spec for name in a.spec.parameters}
        - set(ENGINE_PARAMETERS)
    )
    if not declared:
        return
    for name in project.defaults:
        if name not in declared:
            logger.warning(
                "params/%s: defaults %r is declared by no notebook's parameters "
                "cell%s, so no attempt gets it; the notebooks declare %s",
                PROJECT_FILE,
                name,
                did_you_mean(name, declared),
                ", ".join(declared),
            )


def _columns(metric: str, rows: list[dict[str, Any]]) -> list[str]:
    head = ["attempt", "date", "notebook", "status", metric]
    scores = sorted({k for row in rows for k in row} - set(head) - set(_TAIL))
    spread = [f"{metric}_std"] if f"{metric}_std" in scores else []
    others = [name for name in scores if name not in spread]
    return head + spread + others + list(_TAIL)


_HEAD = ("attempt", "date", "notebook", "status")
_TAIL = ("duration_s", "notes", "error", "run_page")


def write_progress(table: pd.DataFrame, reports_dir: Path) -> list[Path]:
    """Write ``progress.csv`` and ``progress.md``; return their paths."""
    reports_dir.mkdir(parents=True, exist_ok=True)
    csv_path = reports_dir / "progress.csv"
    md_path = reports_dir / "progress.md"
    out = table.copy()
    out["date"] = out["date"].map(lambda d: d.isoformat() if pd.notna(d) else "")
    out.to_csv(csv_path, index=False)

    shown = out.drop(columns=["run_page"]).fillna("")
    shown["notes"] = shown["notes"].str.replace("\n", " ", regex=False)
    shown["error"] = shown["error"].str.replace("\n", " ", regex=False)
    shown["changes"] = shown["changes"].str.replace("|", "\\|", regex=False)
    md_path.write_text(
        shown.to_markdown(index=False, floatfmt=".4g") + "\n", encoding="utf-8"
    )
    return [csv_path, md_path]
