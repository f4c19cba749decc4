"""Tag a record (``tag_record``): a run's tag also tags its version."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tui.modals.prompt import PromptModal

if TYPE_CHECKING:
    from tui.app import GoldfishApp


def check_tag(text: str) -> None:
    """What ``tag_record`` checks before it looks at the store (name rules, not a version number)."""
    from goldfish import names
    from goldfish.errors import InvalidInput

    tag = names.tag_name(text)
    if names.VERSION_RE.fullmatch(tag):
        raise InvalidInput(f"Tag {tag!r} looks like a version number, which would make refs ambiguous.",
                           fix="Use a descriptive tag such as best-v1 or baseline.")


class TagModal(PromptModal):
    def __init__(self, ref: str) -> None:
        from tui import actions

        super().__init__(
            f"Tag {ref}", "Tag name (unique in the workspace; tagging a run also tags its version):",
            check_tag, confirm="Tag", placeholder="e.g. best-v1", action="tag",
            submit=lambda project, tag: actions.tag_record(project, ref, tag),
        )
        self.ref = ref


def ask_tag(app: GoldfishApp, ref: str) -> None:
    app.push_screen(TagModal(ref))
