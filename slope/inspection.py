"""What a notebook declares: its kernel and the parameters in its tagged cell.

papermill and nbformat are imported when a notebook is read, not with this
module: ``run_all.py`` starts its fork server first, and they would delay it.
"""

from __future__ import annotations

import ast
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from slope.exceptions import AttemptError

if TYPE_CHECKING:
    import nbformat

PARAMETERS_TAG = "parameters"
UNKNOWN = object()  # a default that is an expression, not a literal


@dataclass(frozen=True)
class NotebookSpec:
    """The facts about a notebook that validation and execution need."""

    path: Path
    kernel: str
    kernel_from_metadata: bool
    language: str
    parameters: dict[str, Any]  # name -> default value, or UNKNOWN
    source_digest: str  # over the cells' sources, not their outputs


def inspect_notebook(path: Path, default_kernel: str) -> NotebookSpec:
    """Read a notebook's kernel and declared parameters without starting it.

    Raises
    ------
    AttemptError
        The file is not a notebook, or has no cell tagged ``parameters``.
    """
    from papermill.translators import papermill_translators
    from papermill.utils import find_first_tagged_cell_index

    nb = read_notebook(path)
    kernelspec = nb.metadata.get("kernelspec") or {}
    kernel = kernelspec.get("name") or default_kernel
    language = (nb.metadata.get("language_info") or {}).get("name") or kernelspec.get(
        "language", "python"
    )

    index = find_first_tagged_cell_index(nb, PARAMETERS_TAG)
    if index < 0:
        raise AttemptError(_untagged_message(path, nb))
    translator = papermill_translators.find_translator(kernel, language)
    declared = {
        param.name: _literal(param.default)
        for param in translator.inspect(nb.cells[index])
    }
    return NotebookSpec(
        path=path,
        kernel=kernel,
        kernel_from_metadata=bool(kernelspec.get("name")),
        language=language,
        parameters=declared,
        source_digest=_source_digest(nb),
    )


def read_notebook(path: Path) -> nbformat.NotebookNode:
    """Read a notebook as papermill does; raise AttemptError if it is broken."""
    import nbformat
    from papermill.iorw import load_notebook_node

    try:
        with warnings.catch_warnings():
            # nbformat fills in missing cell ids itself; its warning names no file.
            warnings.simplefilter("ignore", nbformat.warnings.MissingIDFieldWarning)
            return load_notebook_node(str(path))
    except (OSError, ValueError, nbformat.ValidationError) as err:
        raise AttemptError(f"{path} is not a readable notebook: {err}") from err


def _literal(source: str) -> Any:
    try:
        return ast.literal_eval(source)
    except (ValueError, SyntaxError):
        return UNKNOWN


def _untagged_message(path: Path, nb: nbformat.NotebookNode) -> str:
    first_code = next((c for c in nb.cells if c.cell_type == "code"), None)
    hint = ""
    if first_code is not None and first_code.source.strip():
        line = first_code.source.strip().splitlines()[0]
        hint = f" (the first code cell starts {line!r}: is that the one?)"
    return (
        f"notebooks/{path.name} has no cell tagged 'parameters'{hint}; in "
        "JupyterLab select the cell that sets the defaults, open the Property "
        "Inspector (gear icon, right sidebar), and add the tag 'parameters' "
        "under Cell Tags"
    )


def _source_digest(nb: nbformat.NotebookNode) -> str:
    import hashlib

    digest = hashlib.sha256()
    for cell in nb.cells:
        tags = ",".join(cell.get("metadata", {}).get("tags", []))
        digest.update(f"{cell.cell_type}\0{tags}\0{cell.source}\0".encode())
    return digest.hexdigest()
