"""Backup time and size for a 10,000-record project, beside `tar czf` of the same files in the same run.

    python benchmarks/backup_bench.py [--records 10000]

Rows: a full backup into an empty target; an incremental one after one more version and record
(save_version); `tar czf` of exactly what a backup holds (the store directory with its event logs,
the dev repo's .git, goldfish.yaml and STATE.md). Sizes are bytes written to the target.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from goldfish.init import init_project
from goldfish.project import Project
from tests.scale_rows import write_scale_rows


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=10_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "proj"
        init_project(root)
        text = (root / "goldfish.yaml").read_text()
        (root / "goldfish.yaml").write_text(text.replace("backups:\n  auto: true", "backups:\n  auto: false", 1)
                                            .replace("  target: null", f"  target: {Path(tmp) / 'target'}", 1))
        write_scale_rows(root, args.records)
        project = Project.open(root, source="test")
        project.workspaces.save_version("w1", "baseline before the benchmark backups")
        store_bytes = _du(project.store_dir)

        t0 = time.perf_counter()
        full = project.backups.create(details="full")
        t_full = time.perf_counter() - t0

        (project.slot_path("w1") / "train.py").write_text("lr = 0.001\n")
        project.workspaces.save_version("w1", "one more version and its checkpoint record")
        t0 = time.perf_counter()
        inc = project.backups.create(details="incremental")
        t_inc = time.perf_counter() - t0

        tar = Path(tmp) / "same-files.tar.gz"
        rel = [str(project.store_dir.relative_to(Path(tmp))), str((project.dev_path / ".git").relative_to(Path(tmp))),
               str(project.config_path.relative_to(Path(tmp))), str(project.state_md_path.relative_to(Path(tmp)))]
        t0 = time.perf_counter()
        subprocess.run(["tar", "czf", str(tar), "--exclude=.lock", "-C", tmp, *rel], check=True)
        t_tar = time.perf_counter() - t0
        tar_size = tar.stat().st_size

        t0 = time.perf_counter()
        from goldfish.backups.restore import restore

        restore(inc.backup_id, from_target=str(Path(tmp) / "target"), to=Path(tmp) / "restored" / "proj")
        t_restore = time.perf_counter() - t0

    print(f"project: {args.records} records, store {store_bytes / 1e6:.1f} MB")
    print(f"{'what':<34}{'seconds':>9}{'bytes written':>15}  vs tar czf")
    rows = [("full backup", t_full, full.new_bytes), ("incremental (1 version + record)", t_inc, inc.new_bytes),
            ("tar czf of the same files", t_tar, tar_size)]
    for what, secs, size in rows:
        print(f"{what:<34}{secs:>9.2f}{size:>15,}{secs / t_tar:>8.2f}x time {size / tar_size:.3f}x size")
    print(f"{'restore (fetch, verify, rebuild)':<34}{t_restore:>9.2f}")


if __name__ == "__main__":
    main()
