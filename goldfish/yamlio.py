"""Reading user YAML documents (pipeline.yaml, configs/<stage>.yaml) with line-numbered errors.

Plain ``yaml.safe_load`` keeps the last of two equal keys, so a pipeline with two ``features:``
inputs would silently lose one. This loader rejects duplicate keys instead.
"""

from __future__ import annotations

from typing import Any

import yaml

from goldfish.issues import Issue, issues_error

_MERGE_TAG = "tag:yaml.org,2002:merge"


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: dict[Any, yaml.Node] = {}
    # Only the node's own keys: keys pulled in by a `<<: *anchor` merge may legitimately be overridden.
    for key_node, _ in node.value:
        if key_node.tag == _MERGE_TAG:
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            duplicate = key in seen
        except TypeError:  # unhashable key: let the base constructor report it
            break
        if duplicate:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping",
                node.start_mark,
                f"found duplicate key {key!r} (first at line {seen[key].start_mark.line + 1})",
                key_node.start_mark,
            )
        seen[key] = key_node
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def yaml_issue(exc: yaml.YAMLError, source: str) -> Issue:
    """Describe a YAML error with its line and column."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is not None:
        where = f"line {mark.line + 1}, column {mark.column + 1}"
        return Issue(
            location=f"{source} {where}",
            message=f"invalid YAML: {problem}",
            fix=f"Fix the YAML syntax at {where} of {source} (indentation, a missing ':' or an unclosed quote"
            " are the usual causes; keys must be unique).",
        )
    return Issue(location=source, message=f"invalid YAML: {problem}", fix=f"Fix the YAML syntax of {source}.")


def parse_yaml(text: str, source: str) -> Any:
    """Parse one YAML document; raise InvalidInput naming the line on a syntax error."""
    try:
        return yaml.load(text, Loader=_StrictLoader)  # _StrictLoader derives from SafeLoader
    except yaml.YAMLError as exc:
        raise issues_error(f"{source} is not valid YAML.", [yaml_issue(exc, source)]) from None
