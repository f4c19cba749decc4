"""Validation issues: one problem at one location, with its fix.

Validators collect ``Issue`` objects instead of raising at the first problem, so the agent sees
every problem of a document at once. ``issues_error`` turns a list of them into one error.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel, Field
from pydantic_core import PydanticCustomError

from goldfish.errors import GoldfishError, InvalidInput

# Error type used for our own pydantic errors; its ctx carries the fix (pydantic errors have none).
CUSTOM_ERROR_TYPE = "goldfish"


class Issue(BaseModel):
    """One validation problem (error or warning)."""

    location: str = Field(description="Where the problem is, e.g. stages[1].inputs.features.schema")
    message: str = Field(description="What is wrong")
    fix: str | None = Field(default=None, description="What to change to fix it")

    def render(self) -> str:
        text = f"{self.location}: {self.message}"
        return f"{text} Fix: {self.fix}" if self.fix else text


def custom_error(
    message: str,
    fix: str | None = None,
    *,
    sub: str = "",
    issues: Iterable[Issue] = (),
) -> PydanticCustomError:
    """A pydantic error that keeps our fix text.

    ``sub`` is appended to the pydantic location (e.g. ``[2]`` for one list item checked by a
    validator of the whole list); ``issues`` carries several problems found by one cross-field
    validator, each with its own absolute location.
    """
    # The template is only "{message}": pydantic substitutes ctx values once, so braces inside the
    # message (e.g. "{param}" placeholders) are kept verbatim.
    return PydanticCustomError(
        CUSTOM_ERROR_TYPE,
        "{message}",
        {"message": message, "fix": fix or "", "sub": sub, "issues": [i.model_dump() for i in issues]},
    )


def issues_error(
    summary: str, issues: list[Issue], *, cls: type[GoldfishError] = InvalidInput
) -> GoldfishError:
    """One error listing every issue; ``details["issues"]`` holds them as dicts."""
    if len(issues) == 1:
        only = issues[0]
        return cls(
            f"{summary} {only.location}: {only.message}",
            fix=only.fix,
            details={"issues": [only.model_dump()]},
        )
    lines = "\n".join(f"- {issue.render()}" for issue in issues)
    return cls(
        f"{summary} {len(issues)} problems:\n{lines}",
        fix="Correct each problem listed above at its location, then retry.",
        details={"issues": [i.model_dump() for i in issues]},
    )
