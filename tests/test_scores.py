"""Recording scores in a notebook and reading them back."""

from __future__ import annotations

import math

import nbformat
import pytest

from slope.exceptions import ScoreError
from slope.scores import SCORES_MIMETYPE, collect_scores, record_scores


def _output(scores: dict) -> nbformat.NotebookNode:
    return nbformat.v4.new_output(
        "display_data", data={SCORES_MIMETYPE: scores, "text/plain": "scores"}
    )


def test_collect_scores_merges_calls_in_order_and_ignores_other_outputs():
    nb = nbformat.v4.new_notebook()
    first, second = nbformat.v4.new_code_cell(), nbformat.v4.new_code_cell()
    first.outputs = [_output({"accuracy": 0.5, "f1": 0.4})]
    second.outputs = [
        nbformat.v4.new_output("stream", text="accuracy 0.99"),
        _output({"accuracy": 0.7}),
    ]
    nb.cells = [first, nbformat.v4.new_markdown_cell("accuracy"), second]

    assert collect_scores(nb) == {"accuracy": 0.7, "f1": 0.4}


def test_a_notebook_without_scores_has_none():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("print(1)")]

    assert collect_scores(nb) == {}


@pytest.mark.parametrize(
    ("scores", "message"),
    [
        ({"accuracy": math.nan}, r"score 'accuracy' is nan; a score must be finite"),
        ({"rmse": math.inf}, r"score 'rmse' is inf"),
        ({"accuracy": "0.9"}, r"score 'accuracy' must be a number, got '0\.9' \(str\)"),
        ({"accuracy": True}, r"score 'accuracy' must be a number, got True \(bool\)"),
        ({"": 1.0}, r"a score name must be a non-empty string"),
        ({}, r"record_scores\(\) got no scores"),
    ],
    ids=["nan", "inf", "text", "bool", "no-name", "nothing"],
)
def test_a_score_that_is_not_a_finite_number_is_refused(scores, message):
    with pytest.raises(ScoreError, match=message):
        record_scores(scores)


def test_numpy_scores_become_plain_floats():
    np = pytest.importorskip("numpy")

    recorded = record_scores(accuracy=np.float32(0.25), n=np.int64(3))

    assert recorded == {"accuracy": 0.25, "n": 3.0}
    assert all(type(value) is float for value in recorded.values())
