"""The errors slope raises: one root, one subclass per stage of the flow."""

from __future__ import annotations


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
