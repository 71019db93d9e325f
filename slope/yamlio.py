"""Reading slope's YAML files strictly: positions on errors, no duplicate keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class _StrictLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """A safe loader (libyaml's where built) that refuses duplicate keys."""


def _construct_mapping(
    loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False
):
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate key {key!r} (first at line {seen[key] + 1}); keep one",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping
)


def load_yaml(path: Path) -> Any:
    """Parse a YAML file strictly; raise ``ValueError`` with the position on error."""
    text = path.read_text(encoding="utf-8")
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "?"
        problem = err.problem or err.context or "cannot be parsed"
        hint = " (YAML indents with spaces, never tabs)" if "\t" in text else ""
        raise ValueError(f"is not valid YAML at {where}: {problem}{hint}") from err
    except yaml.YAMLError as err:
        raise ValueError(f"is not valid YAML: {err}") from err
    except ValueError as err:
        # PyYAML's own date constructor raises a bare ValueError (2026-13-45).
        raise ValueError(_bad_date_message(text, err)) from err


def load_yaml_mapping(
    path: Path, error: type[Exception], label: str, kind: str
) -> dict[str, Any]:
    """Parse a YAML file that must hold a mapping; raise ``error`` naming the file.

    ``label`` is how messages name the file (``params/004-rf.yaml``) and
    ``kind`` what it is (``attempt file``).
    """
    try:
        data = load_yaml(path)
    except (ValueError, UnicodeDecodeError) as err:
        raise error(f"{label} {err}") from err
    if data is None:
        raise error(f"{label} is an empty {kind}; write it as 'key: value' lines")
    if not isinstance(data, dict):
        raise error(
            f"{label} holds a {type(data).__name__}, but an {kind} is a mapping "
            "of 'key: value' lines"
        )
    return data


def yaml11_booleans(path: Path, section: str) -> dict[str, str]:
    """The keys under ``section`` whose value is a YAML 1.1 word for a boolean.

    PyYAML reads an unquoted ``yes``, ``no``, ``on`` or ``off`` as True or
    False; returns each such key with the word as written.
    """
    try:
        root = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except (OSError, ValueError, yaml.YAMLError):
        return {}
    found: dict[str, str] = {}
    for key, value in _pairs(root):
        if key.value == section:
            for name, word in _pairs(value):
                plain = isinstance(word, yaml.ScalarNode) and word.style is None
                if plain and word.value.lower() in YAML11_BOOLEAN_WORDS:
                    found[name.value] = word.value
    return found


YAML11_BOOLEAN_WORDS = ("yes", "no", "on", "off")


def _pairs(node: Any) -> list[tuple[Any, Any]]:
    if not isinstance(node, yaml.MappingNode):
        return []
    return [(k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode)]


def _bad_date_message(text: str, err: ValueError) -> str:
    """Find the scalar that looks like a date but is not one, for the message."""
    resolver = yaml.resolver.Resolver()
    nodes = [(yaml.compose(text, Loader=yaml.SafeLoader), None)]  # (node, its key)
    while nodes:
        node, key = nodes.pop()
        if isinstance(node, yaml.MappingNode):
            for name, value in node.value:
                nodes += [(name, None), (value, getattr(name, "value", None))]
        elif isinstance(node, yaml.SequenceNode):
            nodes.extend((item, None) for item in node.value)
        elif (
            node is not None
            and node.tag
            == resolver.resolve(yaml.ScalarNode, node.value, (True, False))
            == "tag:yaml.org,2002:timestamp"
        ):
            try:
                yaml.safe_load(node.value)
            except ValueError:
                where = f"line {node.start_mark.line + 1}"
                fix = "write a real date as YYYY-MM-DD or YYYY-MM-DDTHH:MM"
                if key != "date":
                    fix += ", or quote the value to keep it as text"
                return (
                    f"has {node.value!r} at {where}, which YAML reads as a date but "
                    f"is not one ({err}); {fix}"
                )
    return f"has a value YAML reads as a date but is not one ({err})"
