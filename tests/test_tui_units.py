"""The dashboard's parts alone: keyed table refresh, formatting, the finalize form's parsing, the
plain-text rendering, and ``goldfish tui --headless`` as a subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from textual.app import App, ComposeResult

from goldfish.project import Project
from tests.tui_snapshot_data import NOW, build
from tui.data import load_dashboard
from tui.format import age, duration, number, shorten, spark
from tui.modals.finalize_form import parse_number
from tui.text_render import render_text
from tui.widgets.keyed_table import REBUILD_ABOVE, CellCache, KeyedTable

REPO = Path(__file__).resolve().parent.parent


class TableApp(App[None]):
    def compose(self) -> ComposeResult:
        table = KeyedTable(id="t")
        table.set_columns([("a", "a", 6), ("b", "b", 6)])
        yield table


async def test_sync_touches_only_what_changed() -> None:
    app = TableApp()
    async with app.run_test() as pilot:
        t = app.query_one(KeyedTable)
        stats = t.sync({"x": ("1", "2"), "y": ("3", "4"), "z": ("5", "6")})
        assert (stats.added, stats.removed, stats.updated_cells) == (3, 0, 0)
        t.move_cursor(row=2)
        stats = t.sync({"x": ("1", "2"), "y": ("3", "9"), "z": ("5", "6")})
        assert (stats.added, stats.removed, stats.updated_cells, stats.reordered) == (0, 0, 1, False)
        assert t.get_cell("y", "b") == "9" and t.selected_key == "z"  # the cursor stays on its row
        stats = t.sync({"y": ("3", "9"), "z": ("5", "6"), "w": ("7", "8")})
        assert (stats.added, stats.removed, stats.updated_cells) == (1, 1, 0)
        assert t.keys == ["y", "z", "w"] and not stats.reordered
        stats = t.sync({"w": ("7", "8"), "y": ("3", "9"), "z": ("5", "6")})
        assert stats.reordered and t.keys == ["w", "y", "z"]
        assert [t.get_row_at(i)[0] for i in range(3)] == ["7", "3", "5"]
        assert not t.sync({"w": ("7", "8"), "y": ("3", "9"), "z": ("5", "6")}).changed
        many = {f"k{i}": (str(i), "") for i in range(REBUILD_ABOVE + 5)}
        t.sync(many)
        stats = t.sync({"k0": ("0", "")})
        assert stats.removed == REBUILD_ABOVE + 4 and t.keys == ["k0"] and t.row_count == 1
        await pilot.pause()


class TallTableApp(App[None]):
    def compose(self) -> ComposeResult:
        table = KeyedTable(id="t")
        table.set_columns([("a", "a", 6), ("b", "b", 10)])
        yield table


def _line(t: KeyedTable, y: int) -> str:
    return "".join(seg.text for seg in t.render_line(y))


async def test_changed_cells_repaint_only_their_rows() -> None:
    """A changed cell invalidates its own row's cached render, not the table's (DataTable.update_cell
    would re-render every visible row); what is painted is the new value, for few and many changes."""
    app = TallTableApp()
    async with app.run_test(size=(40, 200)) as pilot:
        t = app.query_one(KeyedTable)
        t.sync({f"r{i}": (str(i), "old") for i in range(150)})
        await pilot.pause()
        assert "old" in _line(t, 4)
        generation = t._update_count
        keys = t._row_render_cache.keys()  # LRUCache is not iterable itself
        cached = {k for k in keys if k[0] != "r3"}
        stats = t.sync({f"r{i}": (str(i), "NEW" if i == 3 else "old") for i in range(150)})
        await pilot.pause()
        assert stats.updated_cells == 1 and t._update_count == generation
        assert "NEW" in _line(t, 4) and "old" in _line(t, 3) and "old" in _line(t, 5)  # header is line 0
        assert cached <= set(t._row_render_cache.keys())  # the other rows' renders were kept
        t.sync({f"r{i}": (str(i), f"v{i}") for i in range(150)})  # many rows: one global invalidation
        await pilot.pause()
        assert [_line(t, y).split()[1] for y in (1, 4, 100)] == ["v0", "v3", "v99"]
        assert t.get_cell("r3", "b") == "v3"


def test_cell_cache_reuses_tuples_of_unchanged_items() -> None:
    cache = CellCache()
    built: list[str] = []
    first = cache.get("a", lambda: built.append("a") or ("A",))
    cache.end_round()
    again = cache.get("a", lambda: built.append("a") or ("A",))
    cache.end_round()
    cache.end_round()  # a round without "a" forgets it
    cache.get("a", lambda: built.append("a") or ("A",))
    assert again is first and built == ["a", "a"]


@pytest.mark.parametrize(("seconds", "text"), [(None, ""), (5, "5s"), (65, "1m05s"), (7260, "2h01m"),
                                               (90000, "1d01h"), (-3, "0s")])
def test_duration(seconds: float | None, text: str) -> None:
    assert duration(seconds) == text


def test_small_formatters() -> None:
    assert age(7200) == "2h ago" and age(None) == ""
    assert spark([1, 2, 3, 4]) == "▁▃▆█" and spark([2, 2]) == "▄▄" and spark([float("nan"), None]) == ""
    assert number(0.123456) == "0.1235" and number(1e-5) == "1.00e-05" and number(None) == ""
    assert number(float("nan")) == "nan" and number(1234.5678) == "1235"
    assert shorten("a  b\nc", 10) == "a b c" and shorten("abcdefghijkl", 5) == "abcd…"


def test_form_sends_numbers_as_numbers_and_text_as_text() -> None:
    assert parse_number("0.25") == 0.25 and parse_number(" 3 ") == 3 and parse_number("nope") == "nope"
    assert parse_number("-1") == -1


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return build(tmp_path_factory.mktemp("units"))


def test_text_rendering_lists_every_section(demo: Project) -> None:
    text = render_text(load_dashboard(demo, NOW))
    for needle in ("at 2026-01-15 12:00:00 UTC", "1 active, 2 awaiting finalization, 2 alert(s)",
                   "w1    sentiment  v3       2 changed", "stage-0000a001", "59m55s", "loss_spike",
                   "review_blocked", "1 failure pattern(s) await review", "Width helped last time"):
        assert needle in text, needle


def test_regression_alerts_are_the_experiment_contexts(tmp_path: Path) -> None:
    """Tagging the finalized baseline best, then finalizing a worse run (beyond its tolerance), raises
    the context's regression alert on the dashboard, with get_experiment_context's own message."""
    project = build(tmp_path)
    assert not any(a.kind == "regression" for a in load_dashboard(project, NOW).alerts)
    project.records.tag_record("stage-0000a005", "best")
    project.records.finalize_run("stage-0000a002", {
        "primary_metric": "val_acc", "direction": "maximize", "value": 0.75, "dataset_split": "val",
        "ml_outcome": "partial", "notes": "Worse than the baseline: the wider LSTM overfits."})
    context = project.records.get_experiment_context("sentiment")
    [expected] = context.regression_alerts
    alerts = [a for a in load_dashboard(project, NOW).alerts if a.kind == "regression"]
    assert [(a.key, a.run_id, a.severity, a.message) for a in alerts] == [
        ("regression:stage-0000a002", "stage-0000a002", "warning", expected.message)]
    assert "beyond its tolerance 0.005" in expected.message


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "goldfish", *args], capture_output=True, text=True, cwd=REPO,
                          timeout=120)


def test_headless_cli_renders_text_and_svg_and_fails_on_alerts(demo: Project, tmp_path: Path) -> None:
    svg = tmp_path / "dash.svg"
    done = _cli("tui", "--project", str(demo.root), "--headless", "--text", "--screenshot", str(svg))
    assert done.returncode == 0, done.stderr
    assert "Awaiting finalization (2)" in done.stdout and "stage-0000a003" in done.stdout
    assert svg.read_text().startswith("<svg") and "Awaiting finalization" in svg.read_text().replace("&#160;", " ")
    failing = _cli("tui", "--project", str(demo.root), "--headless", "--fail-on-alerts")
    assert failing.returncode == 1, failing.stderr


def test_headless_cli_on_a_quiet_project_passes(tmp_path: Path) -> None:
    from goldfish.init import init_project

    init_project(tmp_path / "quiet", "quiet")
    done = _cli("--project", str(tmp_path / "quiet"), "tui", "--headless", "--fail-on-alerts", "--text")
    assert done.returncode == 0, done.stderr
    assert "nothing running" in done.stdout and "no alerts" in done.stdout


@pytest.mark.parametrize("args", [["--text"], ["--screenshot", "x.svg"], ["--headless", "--size", "10x10"],
                                  ["--headless", "--size", "wide"]])
def test_headless_cli_bad_flags_are_named_and_change_nothing(tmp_path: Path, args: list[str]) -> None:
    from goldfish.init import init_project

    init_project(tmp_path / "p", "p")
    store = tmp_path / "p-dev" / ".goldfish" / "store"
    before = sorted((p.name, p.stat().st_mtime_ns) for p in store.rglob("*"))
    done = _cli("tui", "--project", str(tmp_path / "p"), *args)
    assert done.returncode == 2
    assert "Fix:" in done.stderr and ("--headless" in done.stderr or "--size" in done.stderr)
    assert sorted((p.name, p.stat().st_mtime_ns) for p in store.rglob("*")) == before
    assert not (tmp_path / "x.svg").exists()


def test_tui_without_a_project_says_how_to_make_one(tmp_path: Path) -> None:
    done = _cli("tui", "--project", str(tmp_path / "nowhere"), "--headless")
    assert done.returncode == 2 and "goldfish init" in done.stderr


def test_finalize_form_offers_null_for_a_run_that_produced_no_value() -> None:
    from tui.modals.finalize_form import form_defaults

    spec = {"primary_metric": "acc", "direction": "maximize", "min_value": 0.5, "goal_value": 0.9,
            "dataset_split": "val", "tolerance": 0.01, "context": "A spec for the finalize form test."}
    crashed = {"results_spec": spec, "results_auto": {"primary_metric": "acc", "value": None},
               "infra_outcome": "crashed", "results_final": None}
    defaults = form_defaults(crashed)
    assert (defaults["value"], defaults["ml_outcome"]) == ("null", "miss")
    skipped = {**crashed, "infra_outcome": "skipped", "upstream_outcome": "preempted"}
    assert form_defaults(skipped)["value"] == "null"  # the result stage skipped because fit was preempted
    completed = {**crashed, "infra_outcome": "completed", "results_auto": {"primary_metric": "acc", "value": 0.7}}
    assert form_defaults(completed)["value"] == "0.7"
