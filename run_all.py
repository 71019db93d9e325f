"""Run every new or changed attempt in params/, then build reports/index.html.

python run_all.py            # run, then report
python run_all.py --help     # every command and option
"""

import sys
from pathlib import Path

from slope.cli import main

if __name__ == "__main__":
    sys.exit(main(project_dir=Path(__file__).resolve().parent))
