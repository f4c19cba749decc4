"""Tag a record (``tag_record``): a run's tag also tags its version."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tui.modals.prompt import PromptModal

if TYPE_CHECKING:
    from tui.app import GoldfishApp


class TagModal(PromptModal):
    def __init__(self, ref: str) -> None:
        from goldfish import names

        super().__init__(
            f"Tag {ref}", "Tag name (unique in the workspace; tagging a run also tags its version):",
            names.tag_name, confirm="Tag", placeholder="e.g. best-v1",
        )
        self.ref = ref


def ask_tag(app: GoldfishApp, ref: str) -> None:
    from tui import actions

    def done(tag: str | None) -> None:
        if tag:
            app.perform("tag", actions.tag_record, ref, tag)

    app.push_screen(TagModal(ref), done)
