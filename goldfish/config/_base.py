"""Shared base for every goldfish.yaml section."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic_core import PydanticCustomError

RULE_ERROR = "goldfish_rule"


class Section(BaseModel):
    """A goldfish.yaml mapping: unknown keys are errors, YAML types are taken as written.

    ``strict`` because YAML already types scalars: a quoted "3600" where a number belongs is a
    mistake worth reporting, not coercing. Frozen: a reload builds a new config object.
    """

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        frozen=True,
        validate_by_name=True,
        validate_by_alias=True,
        validate_default=False,
    )

    @model_validator(mode="before")
    @classmethod
    def _empty_subsections(cls, data: Any) -> Any:
        # `svs:` with every key commented out is YAML null; it means "this section's defaults".
        if not isinstance(data, dict):
            return data
        out = dict(data)
        for name, field in cls.model_fields.items():
            for key in (name, field.alias):
                if key in out and out[key] is None and _is_section(field.annotation):
                    out[key] = {}
        return out


def _is_section(annotation: Any) -> bool:
    """A required (non-optional) sub-section: optional ones keep null as "not configured"."""
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def rule_error(message: str, *, at: tuple[str | int, ...] = ()) -> PydanticCustomError:
    """A validation error whose message already says what to do.

    ``at`` is a key path relative to the validator's location, so a check made on a whole section
    can still point at the key (and line) at fault.
    """
    return PydanticCustomError(RULE_ERROR, message, {"goldfish_at": at})


def relative_inside(value: str, what: str, example: str) -> str:
    """A relative path that stays inside its root (no absolute path, no '..')."""
    path = PurePosixPath(value.replace("\\", "/"))
    if not value.strip():
        raise rule_error(f"{what} must not be empty.")
    if path.is_absolute() or value.startswith("~"):
        raise rule_error(
            f"{what} must be a relative path, got {value!r}. Fix: write a path such as {example!r}."
        )
    if not path.parts:
        raise rule_error(
            f"{what} must name a directory below its root, got {value!r}. Fix: write {example!r}."
        )
    if ".." in path.parts:
        raise rule_error(f"{what} must stay inside its root, got {value!r}. Fix: remove the '..'.")
    return value
