"""The errors slope raises: one root, one subclass per stage of the flow."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class SlopeError(Exception):
    """Root of every error slope raises on purpose; its message is for the user."""


class ProjectError(SlopeError):
    """``params/project.yaml`` or the project's layout cannot be used."""


class AttemptError(SlopeError):
    """An attempt's params file or notebook is invalid; the attempt does not run."""


class ScoreError(SlopeError, ValueError):
    """A notebook tried to record a score that is not a finite number."""


class ModelError(SlopeError):
    """A saved model or its schema cannot be written, found or trusted."""


class ReportError(SlopeError):
    """The report notebook failed, or a page of the report cannot be written."""


class LockError(SlopeError):
    """Another ``run_all.py`` holds the project's lock."""


def did_you_mean(word: object, choices: Iterable[str]) -> str:
    """Return `` (did you mean 'x'?)`` for the closest choice, or nothing."""
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
