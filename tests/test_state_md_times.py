"""STATE.md is read long after it is written (by an agent that lost its context): every relative
time stands beside an absolute UTC time, and no action line ends in an empty text."""

from __future__ import annotations

import re
from pathlib import Path

from goldfish.timefmt import stamped, utc
from tests.ws_helpers import REASON, make_project, write

ABSOLUTE = r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC"


def test_relative_times_stand_beside_absolute_ones_and_actions_are_never_empty(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    project.workspaces.create("exp", "beat the baseline accuracy", REASON)
    project.workspaces.mount("exp", "w1", REASON)
    write(project.slot_path("w1"), {"train.py": "x = 1\n"})
    project.workspaces.save_version("w1", "first version saved")
    [record_id] = [d["id"] for d in project.store.table("records", "ws/exp").iter_raw()]
    project.records.tag_record(record_id, "baseline")  # audited with no reason

    for text in (project.state_md.read_global() or "", project.state_md.read_slot("w1") or ""):
        assert re.search(r"^Written \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC;", text, re.M), text
        for line in text.splitlines():
            if re.search(r"\bago\b", line) and not line.startswith("Written"):
                assert re.search(ABSOLUTE + r", \d+[smhd] ago", line), line
        actions = text.split("## Recent Actions\n")[1].split("\n\n")[0].splitlines()
        assert actions and all(re.match(r"- \[" + ABSOLUTE + r"\] \S", a) for a in actions), actions
        assert all(not a.rstrip().endswith(":") for a in actions), actions
        [tagged] = [a for a in actions if "tag_record" in a]
        assert f"tagged {record_id} as 'baseline' (v1)" in tagged, tagged
    assert "(last: v1, " in (project.state_md.read_global() or "")


def test_time_formats() -> None:
    assert utc("2026-01-02T03:04:05.123456Z") == "2026-01-02 03:04 UTC"
    assert utc(None) == "?" and utc("garbage") == "?"
    from datetime import UTC, datetime

    now = datetime(2026, 1, 2, 3, 9, 5, tzinfo=UTC)
    assert stamped("2026-01-02T03:04:05Z", now=now) == "2026-01-02 03:04 UTC, 5m ago"
