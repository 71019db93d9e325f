"""``python -m slope``: the same command line as ``run_all.py``."""

import sys

from slope.cli import main

sys.exit(main())
