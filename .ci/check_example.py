"""Fail unless the example's report exists and every example attempt ran ok."""

import csv
import sys
from pathlib import Path

root = Path(__file__).resolve().parent.parent
attempts = sorted(
    p.stem for p in (root / "params").glob("*.yaml") if p.stem != "project"
)
report = root / "reports" / "index.html"
with open(root / "reports" / "progress.csv", encoding="utf-8") as table:
    rows = {row["attempt"]: row for row in csv.DictReader(table)}

problems = [f"{report} is missing"] if not report.is_file() else []
for attempt in attempts:
    status = rows.get(attempt, {}).get("status", "missing")
    if status != "ok":
        problems.append(f"{attempt}: {status}")
    if not (root / "reports" / "runs" / f"{attempt}.html").is_file():
        problems.append(f"{attempt}: no run page")
state = "present" if report.is_file() else "missing"
print(f"{len(attempts)} example attempts, report {state}")
for problem in problems:
    print("problem:", problem)
sys.exit(1 if problems else 0)
