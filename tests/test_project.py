"""The project's settings, params/project.yaml: told at once, each with its fix."""

from __future__ import annotations

import json
import logging
import re

import pytest

from slope.attempts import load_attempts
from slope.cli import main
from slope.exceptions import ProjectError
from slope.progress import build_progress
from slope.project import load_project

SCORED = "notebook: scores.ipynb\ndate: 2026-11-01\n"


@pytest.fixture
def warnings(caplog):
    """The warnings logged, even after the command line stopped slope's propagation."""
    slope_logger = logging.getLogger("slope")
    propagate, slope_logger.propagate = slope_logger.propagate, True
    caplog.set_level(logging.WARNING, logger="slope")
    yield lambda: [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    slope_logger.propagate = propagate


def _write_run(root, attempt, scores, status="ok"):
    """Write ``runs/<attempt>/run.json`` as the engine would, without a kernel."""
    folder = root / "runs" / attempt
    folder.mkdir(parents=True)
    run = {"attempt": attempt, "status": status, "scores": scores, "error": None}
    (folder / "run.json").write_text(json.dumps(run))


def _progress(root):
    project = load_project(root)
    return build_progress(project, load_attempts(project)).set_index("attempt")


def _problems(make_project, settings):
    root = make_project({}, project_yaml=settings)
    with pytest.raises(ProjectError) as caught:
        load_project(root)
    return str(caught.value).splitlines()


# 1. an unknown setting suggests the one meant


@pytest.mark.parametrize(
    ("key", "meant"),
    [
        ("timout", "timeout"),
        ("metrics", "metric"),
        ("greater_is_beter", "greater_is_better"),
    ],
)
def test_an_unknown_setting_suggests_the_closest(make_project, key, meant):
    (line,) = _problems(make_project, f"metric: accuracy\n{key}: 1\n")

    assert f"unknown setting {key!r} (did you mean {meant!r}?)" in line
    assert line.endswith(
        "the settings are metric, greater_is_better, baseline, "
        "timeout, timezone, kernel, defaults, preload"
    )


def test_an_unknown_setting_like_none_suggests_nothing(make_project):
    (line,) = _problems(make_project, "metric: accuracy\ncolour: blue\n")

    assert "unknown setting 'colour'; the settings are" in line


# 2. a value of the wrong type says what to write


WRONG_TYPES = [
    (
        "metric: 3",
        r"'metric' must be of type str, got 3 \(int\); write the name "
        r"of a score the notebooks record, e\.g\. accuracy$",
    ),
    (
        "greater_is_better: yes please",
        r"'greater_is_better' must be of type bool, "
        r"got 'yes please' \(str\); write true or false$",
    ),
    (
        "baseline: [001-a]",
        r"'baseline' must be of type str, got \['001-a'\] "
        r"\(list\); write an attempt's id \(its params file's name without "
        r"\.yaml\)$",
    ),
    (
        "timeout: soon",
        r"'timeout' must be of type int or float, got 'soon' "
        r"\(str\); write a number of seconds, e\.g\. 600$",
    ),
    ("timeout: true", r"'timeout' must be of type int or float, got True"),
    (
        "timezone: 1",
        r"'timezone' must be of type str, got 1 \(int\); write an "
        r"IANA zone name such as UTC or Europe/Paris$",
    ),
    (
        "kernel: {name: python3}",
        r"'kernel' must be of type str.*; write a "
        r"kernel's name from `jupyter kernelspec list`, e\.g\. python3$",
    ),
    (
        "defaults: [seed]",
        r"'defaults' must be of type dict.*; write a mapping, "
        r"one 'name: value' line per parameter, indented$",
    ),
    (
        "preload: xgboost",
        r"'preload' must be of type list.*; write a list of "
        r"module names, e\.g\. \[xgboost, sklearn\.svm\]$",
    ),
]


@pytest.mark.parametrize("timeout", ["0", "-5", ".nan", ".inf"])
def test_a_timeout_must_be_a_positive_finite_number(make_project, timeout):
    (line,) = _problems(make_project, f"metric: accuracy\ntimeout: {timeout}\n")

    assert "'timeout' must be a positive number of seconds, got" in line
    assert line.endswith("write a number of seconds, e.g. 600")


EMPTY = [
    ("metric:", r"'metric' is empty; write the name of a score .*accuracy$"),
    ("metric: ''", r"'metric' is empty; write the name of a score"),
    (
        "greater_is_better:",
        r"write true or false, or remove the line for the default, true$",
    ),
    ("timeout:", r"'timeout' is empty;.*remove the line for the default, 600$"),
    ("timezone: ' '", r"'timezone' is empty;.*for the default, UTC$"),
    ("kernel:", r"'kernel' is empty;.*for the default, python3$"),
    ("defaults:", r"'defaults' is empty; write a mapping.*, or remove the line$"),
    ("preload:", r"'preload' is empty; write a list.*, or remove the line$"),
    ("baseline: ''", r"'baseline' is empty; write an attempt's id"),
]


@pytest.mark.parametrize(
    ("setting", "message"),
    WRONG_TYPES + EMPTY,
    ids=[setting for setting, _ in WRONG_TYPES + EMPTY],
)
def test_a_wrong_or_empty_setting_says_what_to_write(make_project, setting, message):
    text = f"{setting}\n" if setting.startswith("metric") else f"metric: a\n{setting}\n"

    (line,) = _problems(make_project, text)

    assert re.search(message, line)


def test_an_empty_baseline_line_means_no_baseline(make_project):
    root = make_project({}, project_yaml="metric: accuracy\nbaseline:\n")

    assert load_project(root).baseline is None


def test_defaults_must_be_python_names(make_project):
    settings = "metric: a\ndefaults: {data-path: x.csv, class: 1, 2: 3, seed: 0}\n"

    lines = _problems(make_project, settings)

    assert [line.split(": ", 1)[1] for line in lines] == [
        "'defaults' holds 'data-path', which is not a Python name; notebook "
        "parameters are Python variables, such as 'data_path'",
        "'defaults' holds 'class', which is not a Python name; notebook "
        "parameters are Python variables, such as 'class_'",
        "'defaults' holds 2, which is not a Python name; notebook parameters are "
        "Python variables: letters, digits and '_', not starting with a digit",
    ]


# 3. every problem of the file at once, one line each


def test_every_problem_is_one_line_naming_the_file(make_project):
    settings = (
        "timout: 600\n"
        "greater_is_better: yes please\n"
        "baseline: 1\n"
        "kernel:\n"
        "defaults: {bad-name: 1}\n"
    )

    lines = _problems(make_project, settings)

    assert len(lines) == 6
    assert all(re.match(r"/.*/params/project\.yaml: '?\w", line) for line in lines)
    assert "unknown setting 'timout' (did you mean 'timeout'?)" in lines[0]
    assert "'metric' is missing; write the name of a score" in lines[1]
    assert "'greater_is_better' must be of type bool" in lines[2]
    assert "'baseline' must be of type str, got 1 (int)" in lines[3]
    assert "'kernel' is empty" in lines[4]
    assert "'defaults' holds 'bad-name'" in lines[5]


def test_a_file_that_does_not_parse_is_one_project_error(make_project):
    root = make_project({}, project_yaml="metric: a\nmetric: b\n")

    with pytest.raises(ProjectError, match=r"duplicate key 'metric'.*keep one"):
        load_project(root)


# 4. a metric that no run recorded


def test_a_metric_no_run_recorded_is_named_with_the_scores_it_could_be(
    make_project, warnings
):
    root = make_project(
        {"001-a": SCORED, "002-b": SCORED}, project_yaml="metric: acuracy\n"
    )
    _write_run(root, "001-a", {"accuracy": 0.8, "accuracy_std": 0.01, "f1": 0.7})
    _write_run(root, "002-b", {"accuracy": 0.9, "balanced_accuracy": 0.9})

    table = _progress(root)

    assert warnings() == [
        "params/project.yaml: metric 'acuracy' is recorded by no run (did you mean "
        "'accuracy'?); the runs record accuracy, balanced_accuracy, f1. Name one "
        "of them, or record 'acuracy' in the notebooks"
    ]
    assert list(table["status"]) == ["no_score", "no_score"]
    assert table.loc["001-a", "error"] == (
        "NoScore: the run recorded no 'acuracy' (it recorded accuracy, f1); set "
        "'metric' in params/project.yaml to a score it records, or record "
        "'acuracy' in notebooks/scores.ipynb"
    )


def test_an_ok_run_without_the_metric_is_no_score_beside_those_with_it(
    make_project, warnings
):
    root = make_project({"001-a": SCORED, "002-b": SCORED}, project_yaml="metric: f1\n")
    _write_run(root, "001-a", {"accuracy": 0.8})
    _write_run(root, "002-b", {"accuracy": 0.9, "f1": 0.85})

    table = _progress(root)

    assert warnings() == []
    assert table.loc["001-a", "status"] == "no_score"
    assert (
        "the run recorded no 'f1' (it recorded accuracy)" in table.loc["001-a", "error"]
    )
    assert table.loc["002-b", "status"] == "ok"
    assert table.loc["002-b", "f1"] == 0.85


def test_a_metric_is_not_judged_before_anything_ran(make_project, warnings):
    root = make_project({"001-a": SCORED}, project_yaml="metric: acuracy\n")

    table = _progress(root)

    assert warnings() == []
    assert list(table["status"]) == ["pending"]


def test_a_spread_can_be_the_metric(make_project, warnings):
    root = make_project({"001-a": SCORED}, project_yaml="metric: accuracy_std\n")
    _write_run(root, "001-a", {"accuracy": 0.8, "accuracy_std": 0.01})

    assert list(_progress(root)["status"]) == ["ok"]
    assert warnings() == []


# 5. a baseline that is no attempt, and a default no notebook declares


def test_a_baseline_that_is_no_attempt_is_named_with_the_ids(make_project, warnings):
    root = make_project(
        {"001-majority-class": SCORED, "002-logreg": SCORED},
        project_yaml="metric: accuracy\nbaseline: 001-majority\n",
    )

    _progress(root)

    assert warnings() == [
        "params/project.yaml: baseline '001-majority' is not an attempt (did you "
        "mean '001-majority-class'?); write the id of one of the params files (its "
        "name without .yaml), or remove the line"
    ]


def test_a_baseline_that_is_an_attempt_is_quiet(make_project, warnings):
    root = make_project(
        {"001-majority-class": SCORED},
        project_yaml="metric: accuracy\nbaseline: 001-majority-class\n",
    )

    _progress(root)

    assert warnings() == []


def test_a_default_no_notebook_declares_is_named(make_project, warnings):
    root = make_project(
        {"001-a": SCORED},
        project_yaml="metric: accuracy\ndefaults: {valeu: 0.3, spread: 0.1}\n",
    )

    _progress(root)

    assert warnings() == [
        "params/project.yaml: defaults 'valeu' is declared by no notebook's "
        "parameters cell (did you mean 'value'?), so no attempt gets it; the "
        "notebooks declare spread, value"
    ]


def test_the_warnings_show_in_run_all_output(make_project, capsys):
    root = make_project(
        {"001-majority-class": SCORED},
        project_yaml="metric: acuracy\nbaseline: 001-majority\n",
    )
    _write_run(root, "001-majority-class", {"accuracy": 0.8})

    code = main(["status", "--project", str(root), "-q"])

    out, err = capsys.readouterr()
    assert code == 0
    assert re.search(r"001-majority-class .* no_score", out)
    assert err.splitlines() == [
        "params/project.yaml: metric 'acuracy' is recorded by no run (did you mean "
        "'accuracy'?); the runs record accuracy. Name one of them, or record "
        "'acuracy' in the notebooks",
        "params/project.yaml: baseline '001-majority' is not an attempt (did you "
        "mean '001-majority-class'?); write the id of one of the params files (its "
        "name without .yaml), or remove the line",
    ]
