"""``goldfish doctor``: what is installed, what works, and what each optional piece enables."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    enables: str
    required: bool = False


def _cmd_version(cmd: list[str]) -> str | None:
    if shutil.which(cmd[0]) is None:
        return None
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (out.stdout or out.stderr).strip().splitlines()[0] if out.returncode == 0 else None


def _docker_daemon() -> tuple[bool, str]:
    """The daemon Goldfish would use (docker.host / DOCKER_HOST / scripts/setup-docker.sh's socket)
    and whether the CPU base image is on it."""
    from goldfish.runs.backends import dockerd

    found = dockerd.daemon_availability()
    if not found.ok:
        return False, found.render()
    from goldfish.images.base import base_exists
    from goldfish.images.recipes import base_tag

    version = dockerd.client().version().get("Version", "?")
    if base_exists(dockerd.client(), "cpu") is None:
        return False, (f"daemon {version} at {dockerd.resolve_host()}; base image {base_tag('cpu')} missing."
                       " Fix: run scripts/setup-docker.sh (builds it from Debian packages)")
    return True, f"daemon {version} at {dockerd.resolve_host()}; base image {base_tag('cpu')} present"


def _gcloud_credentials() -> tuple[bool, str]:
    explicit = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    if explicit:
        return Path(explicit).is_file(), f"GOOGLE_APPLICATION_CREDENTIALS={explicit}"
    adc = Path.home() / ".config" / "gcloud" / "application_default_credentials.json"
    if adc.is_file():
        return True, f"application default credentials at {adc}"
    return False, "no GOOGLE_APPLICATION_CREDENTIALS and no gcloud application default credentials"


def _rust_check() -> Check:
    from goldfish.runs.rust_stage import rust_toolchain_status

    st = rust_toolchain_status()
    if st["ok"]:
        detail = f"{st['cargo_version']}; offline crates in {st['registry']}"
    elif st["cargo_version"] is None:
        detail = f"cargo not found. Fix: {st['fix']}"
    else:
        detail = f"{st['cargo_version']}; missing crates {', '.join(st['missing_crates'])}. Fix: {st['fix']}"
    return Check("cargo", st["ok"], detail, "runtime: rust stages")


def collect_checks(project_path: str | None) -> list[Check]:
    checks = [
        Check("python", sys.version_info >= (3, 11), sys.version.split()[0], "everything", required=True),
    ]
    git = _cmd_version(["git", "--version"])
    checks.append(Check("git", git is not None, git or "not found", "versions (the hidden dev repo)", required=True))
    ok, detail = _docker_daemon()
    checks.append(Check("docker", ok, detail, "jobs.backend: docker (stages in containers)"))
    checks.append(_rust_check())
    ok, detail = _gcloud_credentials()
    checks.append(Check("google cloud credentials", ok, detail, "jobs.backend: gce and gcs storage"))
    has_key = bool(os.environ.get("ANTHROPIC_API_KEY"))
    checks.append(Check("ANTHROPIC_API_KEY", has_key, "set" if has_key else "not set",
                        "svs.agent_provider: anthropic (Claude pre-run review); the offline 'rules' review needs nothing"))
    checks.extend(_project_checks(project_path))
    return checks


def _project_checks(project_path: str | None) -> list[Check]:
    from goldfish.errors import GoldfishError, NotInitialized
    from goldfish.project import Project

    try:
        project = Project.open(project_path)
    except NotInitialized as exc:
        return [Check("project", False, str(exc), "all project commands")]
    except GoldfishError as exc:
        return [Check("project", False, str(exc), "all project commands", required=True)]
    out = [Check("project", True, f"{project.config.project_name} at {project.root}", "all project commands")]
    if project.config.gce is not None:
        from goldfish.runs.cloud_checks import doctor_checks

        required = project.config.jobs.backend == "gce"
        out += [Check(name, ok, detail, "jobs.backend: gce", required=required)
                for name, ok, detail in doctor_checks(project)]
    out.append(_history_index_check(project))
    out.append(_store_check(project))
    out.append(_backup_check(project))
    return out


def _store_check(project: Any) -> Check:
    """Every partition, shard and shard directory, parsed and checked against each other."""
    from goldfish.errors import GoldfishError
    from goldfish.store import integrity

    try:
        damage = integrity.check_store(project.store)
    except GoldfishError as exc:
        return Check("store", False, str(exc), "records, runs, sources", required=True)
    if not damage:
        return Check("store", True, f"{project.store_dir}: every partition, shard and directory checks out",
                     "records, runs, sources", required=True)
    lines = "; ".join(d.render() for d in damage[:10]) + (f"; … {len(damage) - 10} more" if len(damage) > 10 else "")
    return Check("store", False, f"{len(damage)} damaged: {lines}. Fix: {integrity.fix_text(project.store_dir)}",
                 "records, runs, sources", required=True)


def _backup_check(project: Any) -> Check:
    from goldfish.errors import GoldfishError

    try:
        status = project.backups.status()
    except GoldfishError as exc:
        return Check("backups", False, str(exc), "goldfish restore, goldfish doctor --repair")
    last = (f"last {status.last_backup.backup_id} ({status.last_backup.tier}, {status.last_backup.created_at})"
            if status.last_backup else "no backup yet (create_backup() takes one)")
    detail = f"{status.target}: {last}; auto {'on' if status.enabled else 'off'}"
    if status.advice:
        detail += f". {status.advice}"
    return Check("backups", status.last_backup is not None and status.survives_disk_loss, detail,
                 "goldfish restore, goldfish doctor --repair")


def _history_index_check(project: Any) -> Check:
    """The derived history indexes: verified against the records and runs, rebuilt where they differ."""
    from goldfish.errors import GoldfishError
    from goldfish.records.index import doctor_check

    try:
        ok, detail = doctor_check(project)
    except GoldfishError as exc:  # a damaged store: the store check below names the file and the fix
        return Check("history indexes", False, f"not checked: {exc}", "list_history, the finalization gate, STATE.md",
                     required=True)
    return Check("history indexes", ok, detail, "list_history, the finalization gate, STATE.md", required=True)


def run_doctor(project_path: str | None) -> int:
    checks = collect_checks(project_path)
    width = max(len(c.name) for c in checks)
    for c in checks:
        mark = "ok " if c.ok else ("ERR" if c.required else "-- ")
        print(f"[{mark}] {c.name:<{width}}  {c.detail}")
        print(f"      {'':<{width}}  enables: {c.enables}")
    return 1 if any(c.required and not c.ok for c in checks) else 0
