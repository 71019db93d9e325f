"""The main job end to end: three attempts, real kernels, the report."""

from __future__ import annotations

import pandas as pd
import pytest

from slope.cli import main

ATTEMPTS = {
    "001-baseline": """\
        notebook: scores.ipynb
        date: 2026-11-02T09:00:00
        notes: Always the commonest class.
        parameters: {value: 0.5, spread: 0.0}
        """,
    "002-logistic": """\
        notebook: tiny_model.ipynb
        date: 2026-11-05
        notes: Logistic regression, <b>default</b> C.
        """,
    "003-weaker": """\
        notebook: scores.ipynb
        date: 2026-11-09T17:30:00+01:00
        notes: A worse idea.
        parameters: {value: 0.6, spread: 0.05}
        """,
}
SETTINGS = """\
    metric: accuracy
    greater_is_better: true
    baseline: 001-baseline
    timeout: 120
    """


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    from conftest import write_project

    root = tmp_path_factory.mktemp("e2e") / "project"
    write_project(root, ATTEMPTS, project_yaml=SETTINGS)
    (root / "data").mkdir()
    rows = "\n".join(f"{i},{(i * 7) % 5},{int(i % 4 > 1)}" for i in range(40))
    (root / "data" / "tiny.csv").write_text("x1,x2,label\n" + rows + "\n")
    code = main(["run", "--project", str(root)])
    return root, code


def test_the_progress_table_holds_each_attempts_values(example):
    root, code = example

    table = pd.read_csv(root / "reports" / "progress.csv")
    row = table.set_index("attempt")

    assert code == 0
    assert list(table["attempt"]) == ["001-baseline", "002-logistic", "003-weaker"]
    assert list(table["status"]) == ["ok", "ok", "ok"]
    assert row.loc["001-baseline", "accuracy"] == 0.5
    assert row.loc["003-weaker", "accuracy_std"] == 0.05
    assert row.loc["003-weaker", "date"] == "2026-11-09T16:30:00+00:00"
    assert 0 <= row.loc["002-logistic", "accuracy"] <= 1
    assert row.loc["002-logistic", "notes"] == "Logistic regression, <b>default</b> C."
    assert (row["duration_s"] > 0).all()


def test_the_report_holds_the_plot_and_the_table(example):
    root, _ = example

    page = (root / "reports" / "index.html").read_text()

    assert "<svg" in page or "data:image/png;base64," in page
    for attempt in ATTEMPTS:
        assert f'href="runs/{attempt}.html"' in page
        assert (root / "reports" / "runs" / f"{attempt}.html").is_file()
    assert "Logistic regression, &lt;b&gt;default&lt;/b&gt; C." in page
    assert (root / "reports" / "learning_rate.png").stat().st_size > 10_000
    assert (root / "reports" / "progress.md").read_text().count("\n") == 5


def test_a_second_run_reruns_nothing(example, capsys):
    root, _ = example
    before = (root / "runs" / "history.jsonl").read_text()

    code = main(["run", "--project", str(root), "--no-report"])

    assert code == 0
    assert (root / "runs" / "history.jsonl").read_text() == before
    assert "3 attempts: 3 ok" in capsys.readouterr().out
