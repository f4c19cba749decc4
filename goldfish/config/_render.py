"""Walking the models for the template and the reference docs."""

from __future__ import annotations

import json
import re
import types
from collections.abc import Iterator
from typing import Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

_SENTENCE_END = re.compile(r"(?<!e\.g)(?<!i\.e)\.(\s|$)")


def section_model(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds (``X`` or ``X | None``), or None for plain values."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) in (Union, types.UnionType):
        for arg in get_args(annotation):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                return arg
    return None


def fields(model: type[BaseModel]) -> Iterator[tuple[str, FieldInfo]]:
    yield from model.model_fields.items()


def is_required(field: FieldInfo) -> bool:
    return field.default is PydanticUndefined and field.default_factory is None


def default_of(field: FieldInfo) -> Any:
    if field.default_factory is not None:
        return field.default_factory()  # type: ignore[call-arg]
    return field.default


def yaml_inline(value: Any) -> str:
    """One-line YAML for a value (quoted only where YAML needs it)."""
    if isinstance(value, BaseModel):
        value = value.model_dump(by_alias=False)
    text = yaml.safe_dump(
        value, default_flow_style=True, width=1_000_000, allow_unicode=True, sort_keys=False
    )
    text = text.removesuffix("\n...\n").strip()
    # YAML folds line breaks inside quoted scalars across lines; JSON escapes keep it on one line.
    return json.dumps(value, ensure_ascii=False) if "\n" in text else text


def first_sentence(text: str) -> str:
    match = _SENTENCE_END.search(text)
    return text[: match.start() + 1] if match else text
