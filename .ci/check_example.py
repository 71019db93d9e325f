"""Fail unless the example's report exists, every example attempt ran ok, and
the README's prediction request is answered by the best attempt's API."""

import csv
import json
import re
import sys
from pathlib import Path

from fastapi.testclient import TestClient

from slope.api import create_app

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

readme = (root / "README.md").read_text(encoding="utf-8")
request = json.loads(
    re.search(r"localhost:8000/predict .*?-d '(\{.*?\})'", readme, re.S)[1]
)
with TestClient(create_app(root)) as client:
    answer = client.post("/predict", json=request)
if answer.status_code != 200:
    problems.append(f"README's /predict example: {answer.status_code} {answer.text}")
state = "present" if report.is_file() else "missing"
print(f"{len(attempts)} example attempts, report {state}")
for problem in problems:
    print("problem:", problem)
sys.exit(1 if problems else 0)
