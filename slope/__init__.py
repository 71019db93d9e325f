"""slope: run a team's modeling attempts and measure how fast the work improves.

Inside a notebook, three calls are all an attempt needs::

    import slope

    X = pd.read_csv(slope.project_path(data_path))
    slope.record_scores(accuracy=0.91, accuracy_std=0.02)
    slope.save_model(model, X, output_dir)
"""

from __future__ import annotations

import sys

from slope.exceptions import SlopeError
from slope.model import load_model, save_model
from slope.paths import project_path
from slope.scores import record_scores

# TODO: drop once jsonschema imports rfc3987_syntax lazily (jsonschema#1428,
# nbformat#420). Importing nbformat compiles some 35 Lark grammars for
# jsonschema's "iri" format checker, which no notebook schema uses: 1-2 s on
# a quiet machine, more than the notebook's own code for a light attempt, in
# every process that reads or runs a notebook. Without the module, jsonschema
# skips that one checker. Nothing is hidden once it was imported already.
sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]

__version__ = "0.1.0"

__all__ = [
    "SlopeError",
    "__version__",
    "load_model",
    "project_path",
    "record_scores",
    "save_model",
]
