"""The command line: ``python run_all.py [run|report|status|new|serve]``.

Only this module prints and configures logging; the steps it calls log.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import logging
import re
import sys
from collections import Counter
from pathlib import Path

from slope.exceptions import SlopeError

logger = logging.getLogger("slope")

COMMANDS = ("run", "report", "status", "new", "serve")
FAILED = ("failed", "timeout", "kernel_died", "no_score", "invalid")


def main(argv: list[str] | None = None, project_dir: Path | None = None) -> int:
    """Parse the command line, run the command, and return the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not any(arg in COMMANDS for arg in argv) and not {"-h", "--help"} & set(argv):
        argv.insert(0, "run")
    args = build_parser().parse_args(argv)
    _configure_logging(args.verbose - args.quiet)
    root = Path(args.project or project_dir or Path.cwd())
    try:
        return args.command(root, args)
    except SlopeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; every run that ended before was kept", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--project", help="the project folder (default: run_all.py's)")
    common.add_argument("-v", "--verbose", action="count", default=0, help="say more")
    common.add_argument("-q", "--quiet", action="count", default=0, help="say less")
    parser = argparse.ArgumentParser(
        prog="run_all.py",
        description="Run the attempts in params/, then build reports/index.html. "
        "Without a command, 'run'.",
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    add = functools.partial(commands.add_parser, parents=[common])

    run = add("run", help="run new or changed attempts (the default)")
    run.add_argument("--force", action="store_true", help="run even unchanged attempts")
    run.add_argument(
        "--only",
        action="append",
        metavar="ID_OR_GLOB",
        help="run only these attempts (repeatable; globs such as '00*')",
    )
    run.add_argument(
        "--workers", type=_positive_int, help="attempts at once (default: cores)"
    )
    run.add_argument(
        "--timeout", type=float, help="seconds per attempt, over every setting"
    )
    run.add_argument("--no-report", action="store_true", help="skip building reports/")
    run.add_argument(
        "--cold-kernels",
        action="store_true",
        help="start every kernel afresh instead of forking it from a preloaded server",
    )
    run.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run on a Dask cluster: tcp://HOST:PORT, or 'local' (processes here)",
    )
    run.set_defaults(command=cmd_run)

    report = add("report", help="rebuild reports/ from the runs")
    report.set_defaults(command=cmd_report)

    status = add("status", help="show the progress table")
    status.set_defaults(command=cmd_status)

    new = add("new", help="copy an attempt's params file, dated now")
    new.add_argument("source", help="the attempt to copy, such as 004-random-forest")
    new.add_argument("name", help="the new attempt's id, such as 009-deeper-forest")
    new.set_defaults(command=cmd_new)

    serve = add("serve", help="serve the best attempt's model over HTTP")
    serve.add_argument("--attempt", help="serve this attempt instead of the best")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(command=cmd_serve)
    return parser


def cmd_run(root: Path, args: argparse.Namespace) -> int:
    from slope.attempts import load_attempts
    from slope.project import load_project
    from slope.runner import (
        LocalBackend,
        Runner,
        default_workers,
        plan_runs,
        project_lock,
        selected,
    )

    project = load_project(root)
    lock = project_lock(project)
    backend, workers = None, args.workers
    if not args.scheduler:
        # Its fork server imports for seconds: let it start while attempts load.
        workers = workers or default_workers()
        backend = LocalBackend(project, workers, args.cold_kernels)
    try:
        attempts = load_attempts(project)
        for attempt in attempts:
            if not attempt.valid and selected(attempt.id, args.only):
                for problem in attempt.error.splitlines():
                    logger.error("invalid: %s", problem)
        plan = plan_runs(project, attempts, only=args.only, force=args.force)
        if plan.skipped:
            logger.info(
                "unchanged since their last ok run, not run again: %s",
                ", ".join(a.id for a in plan.skipped),
            )
        if args.scheduler and plan.pending:
            from slope.cluster import DaskBackend

            backend = DaskBackend(project, args.scheduler, workers=args.workers)
            workers = workers or backend.slots
        with _progress_bar(len(plan.pending)) as bar:
            runner = Runner(
                project,
                plan,
                workers=workers,
                timeout=args.timeout,
                backend=backend,
                on_done=lambda record: _done(record, project.metric, bar),
                cold_kernels=args.cold_kernels,
            )
            runner.run()
    finally:
        if backend is not None:
            backend.close()
        lock.release()
    return _finish(project, attempts, build=not args.no_report)


def cmd_report(root: Path, args: argparse.Namespace) -> int:
    from slope.attempts import load_attempts
    from slope.project import load_project

    project = load_project(root)
    return _finish(project, load_attempts(project), build=True)


def cmd_status(root: Path, args: argparse.Namespace) -> int:
    import pandas as pd

    from slope.attempts import load_attempts
    from slope.progress import build_progress
    from slope.project import load_project

    project = load_project(root)
    table = build_progress(project, load_attempts(project))
    wide = ["run_page", "notes", "error", "changes", "author"]
    shown = table.drop(columns=[c for c in wide if c in table]).copy()
    shown["date"] = shown["date"].dt.strftime("%Y-%m-%d %H:%M")
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        # scores to four digits, as the report shows them
        print(shown.fillna("").to_string(index=False, float_format="{:.4g}".format))
    for attempt, error in zip(table["attempt"], table["error"], strict=True):
        if error:
            print(f"\n{attempt}: {error}")
    return 0


def cmd_new(root: Path, args: argparse.Namespace) -> int:
    from slope.attempts import SAFE_ID
    from slope.project import load_project

    project = load_project(root)
    # "params/004-x.yaml", "004-x.yaml" and "004-x" all name attempt 004-x
    args.source = Path(args.source).name.removesuffix(".yaml")
    args.name = Path(args.name).name.removesuffix(".yaml")
    source = project.params_dir / f"{args.source}.yaml"
    target = project.params_dir / f"{args.name}.yaml"
    if not source.is_file() or args.source == "project":
        stems = (p.stem for p in project.params_dir.glob("*.yaml"))
        known = ", ".join(sorted(stem for stem in stems if stem != "project"))
        raise SlopeError(
            f"there is no attempt {args.source!r} in params/; the attempts are: {known}"
        )
    if not SAFE_ID.fullmatch(args.name):
        raise SlopeError(
            f"{args.name!r} cannot be an attempt id; use letters, digits, '-', '_', '.'"
        )
    if target.exists():
        raise SlopeError(f"params/{target.name} exists already; pick another name")

    now = dt.datetime.now(project.tzinfo).replace(microsecond=0, tzinfo=None)
    text = source.read_text(encoding="utf-8")
    line = f"date: {now.isoformat()}"
    text, count = re.subn(r"(?m)^date:.*$", line, text, count=1)
    text = text if count else f"{line}\n{text}"
    origin = f"# copied from {args.source}: say in notes what this attempt tries\n"
    target.write_text(origin + text, encoding="utf-8")
    print(
        f"wrote params/{target.name}, dated {now.isoformat()}, a copy of "
        f"{args.source}: edit its notes and parameters"
    )
    return 0


def cmd_serve(root: Path, args: argparse.Namespace) -> int:
    from slope.serve import serve

    serve(root, attempt=args.attempt, host=args.host, port=args.port)
    return 0


def _finish(project, attempts, build: bool) -> int:
    from slope.progress import build_progress, write_progress

    table = build_progress(project, attempts)
    index = None
    if build:
        write_progress(table, project.reports_dir)
        from slope.report import render_report

        index = render_report(project, table, kernel_name=project.kernel)

    counts = Counter(table["status"])
    summary = ", ".join(f"{counts[s]} {s}" for s in sorted(counts, key=_status_order))
    print(f"{len(table)} attempts: {summary}")
    if index is not None:
        print(f"report: {index}")
    return 1 if any(counts[s] for s in FAILED) else 0


def _status_order(status: str) -> int:
    from slope.progress import STATUSES

    return STATUSES.index(status) if status in STATUSES else len(STATUSES)


def _done(record: dict, metric: str, bar) -> None:
    from slope.runs import describe_error

    score = record["scores"].get(metric)
    shown = f", {metric} {score:.4g}" if score is not None else ""
    error = describe_error(record.get("error"))
    shown += f": {error}" if error else ""
    logger.info(
        "%s: %s in %.1f s%s",
        record["attempt"],
        record["status"],
        record["duration_s"],
        shown,
    )
    if bar is not None:
        bar.update(1)


class _progress_bar:
    """A tqdm bar over attempts on a terminal; nothing when output is piped."""

    def __init__(self, total: int) -> None:
        self.total = total

    def __enter__(self):
        if not sys.stderr.isatty() or self.total == 0:
            self.bar = self.redirect = None
            return None
        from tqdm import tqdm
        from tqdm.contrib.logging import logging_redirect_tqdm

        self.bar = tqdm(total=self.total, unit="attempt", dynamic_ncols=True)
        self.redirect = logging_redirect_tqdm(loggers=[logging.getLogger("slope")])
        self.redirect.__enter__()
        return self.bar

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.redirect.__exit__(*exc)
            self.bar.close()


def _configure_logging(verbosity: int) -> None:
    level = {-1: logging.WARNING, 0: logging.INFO}.get(min(verbosity, 1), logging.DEBUG)
    if verbosity < -1:
        level = logging.ERROR
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    slope_logger = logging.getLogger("slope")
    slope_logger.handlers[:] = [handler]
    slope_logger.setLevel(level)
    slope_logger.propagate = False


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value
