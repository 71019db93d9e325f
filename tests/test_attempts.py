"""Validation of params files, before any kernel starts."""

from __future__ import annotations

import datetime as dt
import shutil

import nbformat
import pytest
from conftest import CASE_PARAMS

from slope.attempts import load_attempts
from slope.exceptions import ProjectError
from slope.project import load_project


def _errors(root):
    project = load_project(root)
    return {a.id: a for a in load_attempts(project)}


@pytest.fixture
def case_attempts(make_project):
    root = make_project({})
    for path in CASE_PARAMS.glob("*.yaml"):
        shutil.copy(path, root / "params" / path.name)
    return _errors(root)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        (
            "bad_yaml",
            r"params/bad_yaml\.yaml is not valid YAML at line 4, column 1.*tabs",
        ),
        (
            "bad_date",
            r"params/bad_date\.yaml has '2026-13-45' at line 2.*YYYY-MM-DD(?!.*quote)",
        ),
        (
            "bad_date_parameter",
            r"has '2026-02-30' at line 4.*YYYY-MM-DD.*quote the value to keep it",
        ),
        ("empty", r"params/empty\.yaml is an empty attempt file"),
        ("parameters_is_a_list", r"'parameters' holds a list, but a mapping"),
        ("hyphen_key", r"'learning-rate' is not a Python name.*'learning_rate'"),
        ("typo_key", r"'n_estimaters' is not declared.*did you mean 'n_estimators'"),
        (
            "missing_notebook",
            r"'does_not_exist\.ipynb' does not exist.*echo_text\.ipynb",
        ),
        ("my attempt (v2)", r"cannot be an attempt id.*'my-attempt-v2'\.yaml"),
    ],
    ids=lambda value: value if " " not in str(value) and len(str(value)) < 25 else "",
)
def test_each_kind_of_bad_params_file_gets_its_message(case_attempts, case, message):
    attempt = case_attempts[case]

    assert not attempt.valid
    with pytest.raises(Exception, match=message):
        raise Exception(attempt.error)


def test_valid_cases_arrive_exactly(case_attempts):
    assert case_attempts["float_written_as_1e-3"].parameters == {"learning_rate": 0.001}
    text = case_attempts["quotes_and_unicode"].parameters["text"]
    assert (
        text == "a \"double\" and 'single' quote, a back\\slash, a\ttab,\n"
        "a newline, é, 東京 and 🚀"
    )
    notes = case_attempts["script_in_notes"].notes
    assert notes == '<script>alert("notes")</script><img src=x onerror=alert(2)>'


def test_untagged_parameters_cell_says_how_to_tag(make_project):
    root = make_project({"a": "notebook: untagged_parameters.ipynb\n"})

    attempt = _errors(root)["a"]

    assert (
        "notebooks/untagged_parameters.ipynb has no cell tagged 'parameters'"
        in attempt.error
    )
    assert "Property Inspector" in attempt.error


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "no",
            r"'text' is False \(bool\).*default 'default' is a str.*put it in quotes",
        ),
        ("2026-11-02", r"'text' is datetime\.date\(2026, 11, 2\).*put it in quotes"),
        ("12", r"'text' is 12 \(int\).*put it in quotes"),
        ("[1, 2]", r"'text' is \[1, 2\] \(list\).*give a str"),
    ],
    ids=["yaml11-no", "unquoted-date", "int-for-str", "list-for-str"],
)
def test_value_whose_type_does_not_fit_the_default(make_project, value, message):
    root = make_project(
        {"a": f"notebook: echo_text.ipynb\nparameters:\n  text: {value}\n"}
    )

    with pytest.raises(Exception, match=message):
        raise Exception(_errors(root)["a"].error)


def test_numbers_fit_float_defaults_and_ints_do_not_take_floats(make_project):
    root = make_project(
        {
            "ints": "notebook: echo_text.ipynb\nparameters: {learning_rate: 1}\n",
            "bad": "notebook: echo_text.ipynb\nparameters: {n_estimators: 2.5}\n",
            "word": "notebook: echo_text.ipynb\nparameters: {learning_rate: fast}\n",
        }
    )

    attempts = _errors(root)

    assert attempts["ints"].parameters == {"learning_rate": 1.0}
    assert "'n_estimators' is 2.5 (float)" in attempts["bad"].error
    assert "'learning_rate' is 'fast' (str)" in attempts["word"].error


def test_duplicate_keys_are_an_error_not_a_merge(make_project):
    root = make_project(
        {"a": "notebook: echo_text.ipynb\nparameters:\n  text: one\n  text: two\n"}
    )

    assert "duplicate key 'text' (first at line 3)" in _errors(root)["a"].error


@pytest.mark.parametrize(
    ("notebook", "message"),
    [
        ("../params/project.yaml", r"must be an \.ipynb file inside notebooks/"),
        ("/etc/passwd", r"must be an \.ipynb file inside notebooks/"),
        ("../../outside.ipynb", r"must be an \.ipynb file inside notebooks/"),
        ("[1]", r"'notebook' must be a notebook's file name, got \[1\]"),
    ],
)
def test_notebook_paths_stay_inside_notebooks(make_project, notebook, message):
    root = make_project({"a": f"notebook: {notebook}\n"})

    with pytest.raises(Exception, match=message):
        raise Exception(_errors(root)["a"].error)


def test_unknown_top_level_key_suggests_the_right_one(make_project):
    root = make_project({"a": "notebook: echo_text.ipynb\nparamters: {text: x}\n"})

    assert (
        "unknown key 'paramters' (did you mean 'parameters'?)"
        in _errors(root)["a"].error
    )


def test_every_problem_of_one_file_is_told_at_once(make_project):
    text = """\
    notebook: echo_text.ipynb
    date: yesterday
    timeout: -5
    colour: blue
    parameters:
      text: no
      learning-rate: 0.1
      n_estimaters: 3
      learning_rate: fast
    """
    root = make_project({"a": text, "b": "date: 2026-11-02\nnotes: [1]\n"})

    attempts = _errors(root)

    lines = attempts["a"].error.splitlines()
    assert all(line.startswith("params/a.yaml: ") for line in lines)
    expected = [
        "unknown key 'colour'",
        "'date' 'yesterday' is not a date",
        "'timeout' must be a positive number of seconds, got -5",
        "parameter 'learning-rate' is not a Python name",
        "parameter 'n_estimaters' is not declared",
        "parameter 'text' is False (bool)",
        "parameter 'learning_rate' is 'fast' (str)",
    ]
    assert [next(e for e in expected if e in line) for line in lines] == expected
    lines = attempts["b"].error.splitlines()
    assert ["'notebook' is missing" in line for line in lines] == [True, False]
    assert "'notes' must be text, got a list" in lines[1]


def test_yes_no_on_off_for_a_none_default_is_kept_with_a_warning(make_project, caplog):
    attempts = {
        "words": "notebook: nullable.ipynb\nparameters: {impute: no, shuffle: On}\n",
        "plain": "notebook: nullable.ipynb\nparameters: {impute: false}\n",
        "quoted": "notebook: nullable.ipynb\nparameters: {impute: 'no'}\n",
    }
    root = make_project(attempts, notebooks=[])
    notebook = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("impute = None\nshuffle = None")
    cell.metadata["tags"] = ["parameters"]
    notebook.cells = [cell]
    nbformat.write(notebook, root / "notebooks" / "nullable.ipynb")

    loaded = _errors(root)

    assert loaded["words"].parameters == {"impute": False, "shuffle": True}
    assert loaded["quoted"].parameters == {"impute": "no"}
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warned == [
        "params/words.yaml: parameter 'impute' is no, which YAML reads as False; "
        "the notebook's default gives no type to check it against: write false if "
        "you mean it, null for None, or 'no' in quotes for the text",
        "params/words.yaml: parameter 'shuffle' is On, which YAML reads as True; "
        "the notebook's default gives no type to check it against: write true if "
        "you mean it, null for None, or 'On' in quotes for the text",
    ]


def test_output_dir_belongs_to_the_engine(make_project):
    root = make_project(
        {"a": "notebook: scores.ipynb\nparameters: {output_dir: /tmp}\n"}
    )

    assert "'output_dir' is set by run_all.py itself" in _errors(root)["a"].error


def test_defaults_merge_under_the_attempt_and_only_where_declared(make_project):
    settings = "metric: accuracy\ndefaults: {value: 0.3, spread: 0.2, seed: 7}\n"
    root = make_project(
        {"a": "notebook: scores.ipynb\nparameters: {value: 0.9}\n"},
        project_yaml=settings,
    )

    assert _errors(root)["a"].parameters == {"value": 0.9, "spread": 0.2}


def test_dates_without_zone_take_the_project_timezone(make_project):
    root = make_project(
        {
            "local": "notebook: echo_text.ipynb\ndate: 2026-11-12T10:00:00\n",
            "zoned": "notebook: echo_text.ipynb\ndate: 2026-11-12T10:00:00+01:00\n",
            "day": "notebook: echo_text.ipynb\ndate: 2026-11-12\n",
            "text": "notebook: echo_text.ipynb\ndate: 'last tuesday'\n",
        },
        project_yaml="metric: accuracy\ntimezone: Europe/Paris\n",
    )

    attempts = _errors(root)

    utc = dt.timezone.utc
    assert attempts["local"].date == dt.datetime(2026, 11, 12, 9, 0, tzinfo=utc)
    assert attempts["zoned"].date == dt.datetime(2026, 11, 12, 9, 0, tzinfo=utc)
    assert attempts["day"].date == dt.datetime(2026, 11, 11, 23, 0, tzinfo=utc)
    assert "'date' 'last tuesday' is not a date" in attempts["text"].error


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ("", r"params/project\.yaml is an empty settings file"),
        ("greater_is_better: true\n", r"'metric' is missing"),
        (
            "metric: accuracy\ntimeout: soon\n",
            r"'timeout' must be of type int or float, got 'soon'",
        ),
        (
            "metric: accuracy\ngreater_is_better: yes please\n",
            r"'greater_is_better' must be of type bool.*; write true or false",
        ),
        (
            "metric: accuracy\ntimout: 60\n",
            r"unknown setting 'timout' \(did you mean 'timeout'\?\)",
        ),
        (
            "metric: accuracy\npreload: [xgboost, 3]\n",
            r"'preload' holds 3, which is not",
        ),
        ("metric: accuracy\npreload: xgboost\n", r"'preload' must be of type list"),
        (
            "metric: accuracy\ntimezone: Mars/Olympus\n",
            r"'Mars/Olympus' is not a known time zone",
        ),
    ],
    ids=[
        "empty",
        "no-metric",
        "timeout-text",
        "bool-text",
        "unknown",
        "preload-item",
        "preload-text",
        "zone",
    ],
)
def test_project_settings_errors(make_project, settings, message):
    root = make_project({}, project_yaml=settings)

    with pytest.raises(ProjectError, match=message):
        load_project(root)


def test_every_problem_of_the_settings_is_told_at_once(make_project):
    settings = "metrik: f1\ntimeout: soon\ntimezone: Mars/Olympus\n"
    root = make_project({}, project_yaml=settings)

    with pytest.raises(ProjectError) as caught:
        load_project(root)

    lines = str(caught.value).splitlines()
    assert len(lines) == 4
    assert all(line.startswith(str(root / "params" / "project.yaml")) for line in lines)
    assert "unknown setting 'metrik' (did you mean 'metric'?)" in lines[0]
    assert "'metric' is missing" in lines[1]
    assert "'timeout' must be of type int or float, got 'soon'" in lines[2]
    assert "'Mars/Olympus' is not a known time zone" in lines[3]
