"""How each attempt differs from the best before it, and who made it (git)."""

from __future__ import annotations

import math
import subprocess
from types import SimpleNamespace

import pandas as pd
import pytest

from slope.attempts import load_attempts
from slope.changes import describe_changes, diff_parameters, find_authors, show_value
from slope.inspection import UNKNOWN
from slope.progress import build_progress, write_progress
from slope.project import load_project

NAN = math.nan


def attempt(id_, notebook="train.ipynb", **parameters):
    return SimpleNamespace(id=id_, notebook=notebook, parameters=parameters)


def table(rows):
    return pd.DataFrame(
        {
            "attempt": [r[0] for r in rows],
            "status": [r[1] for r in rows],
            "accuracy": [r[2] for r in rows],
        }
    )


HISTORY = [
    attempt("001-dummy", estimator="sklearn.dummy.DummyClassifier"),
    attempt(
        "002-logreg",
        estimator="sklearn.linear_model.LogisticRegression",
        estimator_params={"C": 1.0},
    ),
    attempt(
        "003-forest",
        estimator="sklearn.ensemble.RandomForestClassifier",
        estimator_params={"max_depth": 6},
    ),
    attempt("004-broken", estimator="sklearn.svm.SVC", scale=True),
    attempt("005-ratio", notebook="ratio.ipynb", C=10.0),
]


@pytest.mark.parametrize(
    ("greater_is_better", "scores", "expected"),
    [
        (
            True,
            [0.5, 0.8, 0.7, NAN, 0.9],
            [
                "first attempt",
                "vs 001-dummy: estimator: DummyClassifier → LogisticRegression; "
                "C: – → 1.0",
                "vs 002-logreg: estimator: LogisticRegression → "
                "RandomForestClassifier; max_depth: – → 6; C: 1.0 → –",
                "vs 002-logreg: estimator: LogisticRegression → SVC; "
                "scale: – → true; C: 1.0 → –",
                "vs 002-logreg: notebook: train.ipynb → ratio.ipynb; C: – → 10.0",
            ],
        ),
        (
            False,
            [0.5, 0.8, 0.4, NAN, 0.9],
            [
                "first attempt",
                "vs 001-dummy: estimator: DummyClassifier → LogisticRegression; "
                "C: – → 1.0",
                "vs 001-dummy: estimator: DummyClassifier → "
                "RandomForestClassifier; max_depth: – → 6",
                "vs 003-forest: estimator: RandomForestClassifier → SVC; "
                "scale: – → true; max_depth: 6 → –",
                "vs 003-forest: notebook: train.ipynb → ratio.ipynb; C: – → 10.0",
            ],
        ),
    ],
    ids=["higher-is-better", "lower-is-better"],
)
def test_each_attempt_is_compared_with_the_best_before_it(
    greater_is_better, scores, expected
):
    statuses = ["ok", "ok", "ok", "failed", "ok"]
    progress = table(
        [(a.id, s, v) for a, s, v in zip(HISTORY, statuses, scores, strict=True)]
    )

    texts = describe_changes(progress, HISTORY, "accuracy", greater_is_better)

    assert texts == expected


def test_a_tie_compares_with_the_latest_best_and_failures_never_count():
    history = [
        attempt("a", impute=None),
        attempt("b", impute="median"),
        attempt("c", impute="median", scale=True),
        attempt("d", impute="median", scale=False),
    ]
    progress = table([("a", "ok", 0.9), ("b", "ok", 0.9), ("c", "timeout", 0.99)])
    progress.loc[3] = ["d", "pending", NAN]

    texts = describe_changes(progress, history, "accuracy")

    assert texts[1] == "vs a: impute: null → median"
    assert texts[2] == "vs b: scale: – → true"
    assert texts[3] == "vs b: scale: – → false"


def test_unscored_start_invalid_attempt_and_no_difference():
    history = [
        attempt("a", seed=0),
        attempt("b", seed=0),
        attempt("c", seed=0),
        SimpleNamespace(id="d", notebook=None, parameters={}, error="bad YAML"),
    ]
    progress = table(
        [
            ("a", "failed", NAN),
            ("b", "ok", 0.7),
            ("c", "ok", 0.6),
            ("d", "invalid", NAN),
        ]
    )

    texts = describe_changes(progress, history, "accuracy")

    assert texts == [
        "first attempt",
        "no scored attempt before it",
        "same notebook and parameters as b",
        "",
    ]


def test_notebook_defaults_fill_parameters_left_out():
    spec = SimpleNamespace(parameters={"scale": False, "impute": None, "n": UNKNOWN})
    before = attempt("a", scale=True, impute="median")
    after = attempt("b", impute="median")
    before.spec = after.spec = spec

    texts = describe_changes(
        table([("a", "ok", 0.5), ("b", "ok", 0.6)]), [before, after], "accuracy"
    )

    assert texts[1] == "vs a: scale: true → false"


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("sklearn.ensemble.RandomForestClassifier", "RandomForestClassifier"),
        ("data/penguins.csv", "data/penguins.csv"),
        ("penguins.csv", "penguins.csv"),
        ("", "''"),
        (None, "null"),
        (True, "true"),
        (1e-3, "0.001"),
        (0.1 + 0.2, "0.3"),
        (["year", "island"], "[year, island]"),
        ({"C": [0.1, 1.0]}, "{C: [0.1, 1.0]}"),
        ("x" * 50, "x" * 35 + "…"),
    ],
    ids=lambda v: repr(v)[:20],
)
def test_values_are_shown_compactly(value, shown):
    assert show_value(value) == shown


def test_paths_that_shorten_alike_are_shown_in_full():
    changes = diff_parameters(
        {"estimator": "sklearn.svm.SVC"}, {"estimator": "mylib.SVC"}, ["estimator"]
    )
    assert changes == [("estimator", "sklearn.svm.SVC", "mylib.SVC")]


# -- authors, from git ----------------------------------------------------------

PROJECT = "metric: accuracy\ngreater_is_better: true\n"
PARAMS = (
    "notebook: scores.ipynb\ndate: 2026-11-0{day}\nparameters: {{value: {value}}}\n"
)


def git(root, *args, name="Ann"):
    subprocess.run(
        ["git", "-c", f"user.name={name}", "-c", "user.email=x@example.com", *args],
        cwd=root,
        check=True,
        capture_output=True,
    )


def write_attempts(make_project, n: int):
    attempts = {
        f"00{i}-try": PARAMS.format(day=i, value=0.1 * i) for i in range(1, n + 1)
    }
    return make_project(attempts, project_yaml=PROJECT, notebooks=["scores.ipynb"])


def test_authors_come_from_the_commit_that_added_each_params_file(make_project):
    root = write_attempts(make_project, 3)
    git(root, "init", "-q", ".")
    git(root, "add", "params/001-try.yaml", "params/002-try.yaml")
    git(root, "commit", "-qm", "first two", name="Ann Lee")
    git(root, "add", "params/003-try.yaml")
    git(root, "commit", "-qm", "third", name="Bo")
    (root / "params" / "001-try.yaml").write_text(PARAMS.format(day=1, value=0.9))
    git(root, "commit", "-qam", "Bo edits Ann's attempt", name="Bo")
    (root / "params" / "004-new.yaml").write_text(PARAMS.format(day=4, value=0.4))

    project = load_project(root)
    progress = build_progress(project, load_attempts(project))

    assert find_authors(root / "params") == {
        "001-try": "Ann Lee",
        "002-try": "Ann Lee",
        "003-try": "Bo",
    }
    assert list(progress["author"]) == ["Ann Lee", "Ann Lee", "Bo", ""]
    assert list(progress.columns[-4:]) == ["changes", "author", "error", "run_page"]
    markdown = write_progress(progress, project.reports_dir)[1].read_text()
    assert "| author" in markdown and "Ann Lee" in markdown


def test_outside_git_there_is_no_author_column(make_project, monkeypatch):
    root = write_attempts(make_project, 2)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(root.parent))

    project = load_project(root)
    progress = build_progress(project, load_attempts(project))

    assert find_authors(root / "params") is None
    assert "author" not in progress
    assert list(progress["changes"]) == ["first attempt", "no scored attempt before it"]


def test_without_git_installed_there_is_no_author_column(make_project, monkeypatch):
    root = write_attempts(make_project, 1)
    monkeypatch.setenv("PATH", str(root))  # no git on it

    assert find_authors(root / "params") is None
