"""slope: run a team's modeling attempts and measure how fast the work improves.

Inside a notebook, three calls are all an attempt needs::

    import slope

    X = pd.read_csv(slope.project_path(data_path))
    slope.record_scores(accuracy=0.91, accuracy_std=0.02)
    slope.save_model(model, X, output_dir)
"""

from __future__ import annotations

from slope.exceptions import SlopeError
from slope.model import load_model, save_model
from slope.paths import project_path
from slope.scores import record_scores

__version__ = "0.1.0"

__all__ = [
    "SlopeError",
    "__version__",
    "load_model",
    "project_path",
    "record_scores",
    "save_model",
]
