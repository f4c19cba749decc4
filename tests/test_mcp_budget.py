"""fit_page: a page stops early at the byte budget and says there is more."""

from __future__ import annotations

from pydantic import BaseModel

from mcp_server.budget import fit_page, result_bytes


class Row(BaseModel):
    text: str


class Page(BaseModel):
    rows: list[Row] | None
    total: int
    has_more: bool


def test_cuts_to_the_budget_and_sets_has_more() -> None:
    page = Page(rows=[Row(text="x" * 100) for _ in range(100)], total=100, has_more=False)
    fitted = fit_page(page, "rows", budget=2_000)
    assert fitted.rows is not None and 0 < len(fitted.rows) < 100
    assert fitted.has_more is True and result_bytes(fitted) <= 2_000
    assert fitted.rows == page.rows[: len(fitted.rows)]
    assert page.rows is not None and len(page.rows) == 100, "the original is untouched"


def test_small_pages_none_and_single_rows_are_kept() -> None:
    small = Page(rows=[Row(text="a")], total=1, has_more=False)
    assert fit_page(small, "rows", budget=10) == small
    assert fit_page(Page(rows=None, total=0, has_more=False), "rows", budget=10).rows is None
    two = Page(rows=[Row(text="y" * 500), Row(text="z")], total=2, has_more=False)
    fitted = fit_page(two, "rows", budget=100)
    assert fitted.rows == [Row(text="y" * 500)] and fitted.has_more


def test_clip_text_cuts_the_longest_strings_with_a_note() -> None:
    from mcp_server.budget import clip_text

    class Entry(BaseModel):
        title: str
        notes: str

    class One(BaseModel):
        entry: Entry
        count: int

    huge = One(entry=Entry(title="short title", notes="n" * 1_000_000), count=3)
    clipped = clip_text(huge, budget=5_000)
    assert result_bytes(clipped) <= 5_000
    assert clipped.entry.title == "short title" and clipped.count == 3
    assert clipped.entry.notes.startswith("nnn") and "truncated by Goldfish" in clipped.entry.notes
    assert "of 1000000 characters shown" in clipped.entry.notes
    small = One(entry=Entry(title="t", notes="n"), count=1)
    assert clip_text(small, budget=5_000) is small
