"""What importing slope costs and changes."""

from __future__ import annotations

import subprocess
import sys


def test_reading_notebooks_skips_jsonschemas_slow_iri_grammars():
    # jsonschema#1428: rfc3987_syntax compiles its grammars at import, 1-2 s.
    code = (
        "import sys, slope, nbformat, jsonschema;"
        "print(sys.modules['rfc3987_syntax'] is None,"
        " 'iri' in jsonschema.FormatChecker().checkers,"
        " 'email' in jsonschema.FormatChecker().checkers)"
    )

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)

    assert done.stdout.split() == ["True", "False", "True"]


def test_recording_scores_outside_a_kernel_returns_them(capsys):
    import slope

    assert slope.record_scores({"accuracy": 0.5}, f1=1) == {"accuracy": 0.5, "f1": 1.0}
    assert capsys.readouterr().out == ""
