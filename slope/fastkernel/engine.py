"""papermill's nbclient engine, saving the output notebook at most once a second.

papermill writes the whole output notebook when each cell starts and when it
ends: some fifty writes for the example's notebook, 10-30 ms each, more time
than its kernel start once that is forked. This engine keeps the first save
and the last one (made on every ending, as papermill's), and in between saves
only when a second has passed: the notebook on disk is never more than a
second behind, and the final notebook is the same.
"""

from __future__ import annotations

import time
from typing import Any

from papermill.engines import (
    NBClientEngine,
    NotebookExecutionManager,
    papermill_engines,
)

ENGINE_NAME = "slope-fast"
SAVE_EVERY_S = 1.0


class ThrottledExecutionManager(NotebookExecutionManager):
    """A NotebookExecutionManager whose saves in the middle of a run are spaced."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.saved_at: float | None = None
        self.finishing = False

    def save(self, **kwargs: Any) -> None:
        now = time.monotonic()
        due = self.saved_at is None or now - self.saved_at >= SAVE_EVERY_S
        if due or self.finishing:
            super().save(**kwargs)
            self.saved_at = now

    def notebook_complete(self, **kwargs: Any) -> None:
        self.finishing = True
        super().notebook_complete(**kwargs)


class ThrottledEngine(NBClientEngine):
    """The nbclient engine with :class:`ThrottledExecutionManager`."""

    @classmethod
    def execute_notebook(
        cls,
        nb,
        kernel_name,
        output_path=None,
        progress_bar=True,
        log_output=False,
        autosave_cell_every=30,
        **kwargs,
    ):
        nb_man = ThrottledExecutionManager(
            nb,
            output_path=output_path,
            progress_bar=progress_bar,
            log_output=log_output,
            autosave_cell_every=autosave_cell_every,
        )
        nb_man.notebook_start()
        try:
            cls.execute_managed_notebook(
                nb_man, kernel_name, log_output=log_output, **kwargs
            )
        finally:
            nb_man.cleanup_pbar()
            nb_man.notebook_complete()
        return nb_man.nb


papermill_engines.register(ENGINE_NAME, ThrottledEngine)
