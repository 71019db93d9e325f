"""The command line: subcommands, their help, the summary and the exit codes."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys

import pytest
import yaml

from slope.cli import main


def test_every_subcommand_has_help(capsys):
    for command in ("run", "report", "status", "new", "serve"):
        with pytest.raises(SystemExit) as exit_:
            main([command, "--help"])
        assert exit_.value.code == 0
        assert "usage: run_all.py" in capsys.readouterr().out


def test_run_is_the_default_command(make_project, capsys):
    root = make_project({"a": "notebook: scores.ipynb\nparameters: {value: 0.25}\n"})

    code = main(["--project", str(root), "--no-report"])

    assert code == 0
    assert capsys.readouterr().out.splitlines()[-1] == "1 attempts: 1 ok"


def test_piped_output_says_one_line_per_attempt(make_project):
    root = make_project(
        {"a": "notebook: scores.ipynb\n", "b": "notebook: raises.ipynb\n"}
    )
    command = [
        sys.executable,
        "-m",
        "slope",
        "run",
        "--project",
        str(root),
        "--no-report",
    ]

    done = subprocess.run(command, capture_output=True, text=True, timeout=300)

    assert done.returncode == 1
    assert "a: ok in " in done.stderr and ", accuracy 0.5" in done.stderr
    assert "b: failed in " in done.stderr
    # Named by its prompt, as the run page and JupyterLab show it (no
    # parameters, so no injected cell before it).
    assert "ValueError: the data has only 10 rows (In [3])" in done.stderr
    assert "\r" not in done.stderr  # no progress bar when piped
    assert done.stdout.splitlines()[-1] == "2 attempts: 1 ok, 1 failed"


def test_status_prints_the_table_without_running(make_project, capsys):
    root = make_project(
        {
            "001-base": "notebook: scores.ipynb\ndate: 2026-11-01\n",
            "002-typo": "notebook: scores.ipynb\nparameters: {valeu: 1}\n",
        }
    )

    code = main(["status", "--project", str(root)])

    out = capsys.readouterr().out
    assert code == 0
    assert re.search(r"001-base\s+2026-11-01 00:00\s+scores.ipynb\s+pending", out)
    assert "invalid" in out and "did you mean 'value'" in out
    assert not (root / "runs").exists() or not any((root / "runs").iterdir())


def test_new_copies_an_attempt_dated_now(make_project, capsys):
    root = make_project(
        {
            "001-base": "# keep me\nnotebook: scores.ipynb\ndate: 2026-11-01\n"
            "parameters: {value: 0.1}\n"
        }
    )

    code = main(["new", "--project", str(root), "001-base.yaml", "002-better"])

    text = (root / "params" / "002-better.yaml").read_text()
    copied = yaml.safe_load(text)
    assert code == 0
    assert text.startswith("# copied from 001-base: say in notes what this attempt")
    assert "\n# keep me\n" in text
    assert copied["parameters"] == {"value": 0.1}
    assert copied["date"].date() == dt.datetime.now(dt.timezone.utc).date()
    assert "wrote params/002-better.yaml" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("source", "name"),
    [("params/001-base.yaml", "002-x"), ("001-base", "002-x.yaml")],
    ids=["source-as-path", "name-with-suffix"],
)
def test_new_takes_paths_and_file_names(make_project, source, name):
    root = make_project({"001-base": "notebook: scores.ipynb\n"})

    code = main(["new", "--project", str(root), source, name])

    assert code == 0
    assert sorted(p.name for p in (root / "params").glob("00*.yaml")) == [
        "001-base.yaml",
        "002-x.yaml",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["nope", "002-x"],
            r"there is no attempt 'nope' in params/; the attempts are: 001-base$",
        ),
        (["001-base", "bad name"], r"'bad name' cannot be an attempt id"),
        (["001-base", "001-base"], r"params/001-base\.yaml exists already"),
        (
            ["project", "002-x"],
            r"there is no attempt 'project' in params/; the attempts are: 001-base$",
        ),
    ],
    ids=["missing-source", "unsafe-name", "exists", "settings"],
)
def test_new_refuses_what_it_cannot_do(make_project, capsys, args, message):
    root = make_project({"001-base": "notebook: scores.ipynb\n"})

    code = main(["new", "--project", str(root), *args])

    assert code == 2
    assert re.search(message, capsys.readouterr().err)


def test_a_missing_project_file_is_a_clear_error(tmp_path, capsys):
    code = main(["run", "--project", str(tmp_path)])

    assert code == 2
    assert "params/project.yaml does not exist" in capsys.readouterr().err


def test_a_metric_no_run_recorded_is_named_with_the_fix(make_project, capsys):
    root = make_project({"001-a": "notebook: scores.ipynb\ndate: 2026-11-01\n"})
    assert main(["--project", str(root), "--no-report"]) == 0
    project_yaml = root / "params" / "project.yaml"
    project_yaml.write_text("metric: acuracy\nbaseline: 001-b\n")

    code = main(["status", "--project", str(root)])

    out, err = capsys.readouterr()
    assert code == 0
    assert re.search(r"001-a\s+2026-11-01 00:00\s+scores.ipynb\s+no_score", out)
    assert "the run recorded no 'acuracy' (it recorded accuracy" in out
    assert (
        "params/project.yaml: metric 'acuracy' is recorded by no run "
        "(did you mean 'accuracy'?)" in err
    )
    assert (
        "params/project.yaml: baseline '001-b' is not an attempt "
        "(did you mean '001-a'?)" in err
    )
