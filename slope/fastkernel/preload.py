"""What a fork server imports before it forks kernels.

Every kernel imports ipykernel's modules; notebooks in a scikit-learn
project usually import the rest. ``preload:`` in ``params/project.yaml``, or
``$SLOPE_PRELOAD``, adds modules or replaces the list.
"""

from __future__ import annotations

import os

PRELOAD_ENV = "SLOPE_PRELOAD"
# What every kernel imports, then what this project's notebooks usually do.
KERNEL_MODULES = (
    "ipykernel.kernelapp",
    "ipykernel.ipkernel",
    "ipykernel.zmqshell",
    "ipykernel.debugger",
    "ipykernel.comm",
    "IPython.core.completer",
    "IPython.core.completerlib",
    "IPython.core.debugger",
    "IPython.core.logger",
    "IPython.core.oinspect",
    "IPython.core.pylabtools",
    "IPython.extensions.storemagic",
    "IPython.utils.wildcard",
    "sqlite3",
    "tornado.platform.asyncio",
    "jupyter_client.session",
    "tornado.ioloop",
    "zmq.eventloop.zmqstream",
)
DEFAULT_PRELOAD = (
    "numpy",
    "pandas",
    "pandas.io.formats.html",
    "pandas.io.formats.string",
    "scipy.stats",
    "sklearn.base",
    "sklearn.compose",
    "sklearn.dummy",
    "sklearn.ensemble",
    "sklearn.impute",
    "sklearn.linear_model",
    "sklearn.metrics",
    "sklearn.model_selection",
    "sklearn.neighbors",
    "sklearn.pipeline",
    "sklearn.preprocessing",
    "sklearn.tree",
    "joblib",
    "narwhals._pandas_like.dataframe",  # scikit-learn reads frames through it
    "narwhals._pandas_like.namespace",
    "narwhals.stable.v2",
    "sklearn.utils._pprint",  # an estimator's repr in a notebook
    "matplotlib.pyplot",
    "matplotlib.backends.backend_agg",
    "PIL.PngImagePlugin",
    "PIL.JpegImagePlugin",
    "PIL.BmpImagePlugin",
    "PIL.GifImagePlugin",
    "PIL.PpmImagePlugin",
    "seaborn",
    "slope",
)


def preload_modules(env: dict[str, str] | None = None) -> list[str]:
    """The modules a fork server imports: ``$SLOPE_PRELOAD`` or the default.

    ``SLOPE_PRELOAD`` is a comma-separated list; a leading ``+`` adds to the
    default instead of replacing it (``+xgboost,lightgbm``).
    """
    text = (os.environ if env is None else env).get(PRELOAD_ENV, "").strip()
    if not text:
        return list(DEFAULT_PRELOAD)
    extra = text.startswith("+")
    names = [n.strip() for n in text.lstrip("+").split(",") if n.strip()]
    return [*DEFAULT_PRELOAD, *names] if extra else names
