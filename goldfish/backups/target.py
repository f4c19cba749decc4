"""Where backups live: an object store (a directory or a bucket) and a key prefix.

Layout under the prefix::

    manifests/<created>-<backup id>.json   one per live backup (sorted by time)
    deleted/<created>-<backup id>.json     tombstones of backups cleanup removed
    blobs/<aa>/<sha256>                    parts, gzip-compressed, named by the sha256 of their content

Parts are content-addressed, so a backup stores only what the previous one did not have, and a part
is deleted only when no live manifest names it.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from goldfish.errors import GoldfishError
from goldfish.storage.base import ObjectStorage, StorageError

if TYPE_CHECKING:
    from goldfish.config import GoldfishConfig

FORMAT = 1


class BackupError(GoldfishError):
    kind = "backup"


@dataclass
class Target:
    storage: ObjectStorage
    prefix: str  # "" or "backups/" (ends with "/")
    uri: str
    local_disk: bool  # on the same disk as the project (does not survive losing it)

    def key(self, rel: str) -> str:
        return f"{self.prefix}{rel}"

    # --------------------------------------------------------------- blobs
    def blob_key(self, sha: str) -> str:
        return self.key(f"blobs/{sha[:2]}/{sha}")

    def has_blob(self, sha: str) -> bool:
        return self.storage.stat(self.blob_key(sha)) is not None

    def put_blob(self, data: bytes, sha: str | None = None) -> tuple[str, int]:
        """Store ``data`` (compressed) under its sha256; returns (sha256, stored bytes)."""
        sha = sha or hashlib.sha256(data).hexdigest()
        packed = gzip.compress(data, compresslevel=6, mtime=0)
        self.storage.put_bytes(packed, self.blob_key(sha))
        return sha, len(packed)

    def get_blob(self, sha: str) -> bytes:
        """A part's content, checked against its sha256; BackupError when absent or different."""
        packed = self.storage.get_bytes(self.blob_key(sha))
        if packed is None:
            raise BackupError(f"Backup part {self.storage.uri(self.blob_key(sha))} is missing.",
                              fix="Restore from another backup (`goldfish restore <id>`; `list_backups` lists them).")
        try:
            data = gzip.decompress(packed)
        except (OSError, EOFError) as exc:
            raise BackupError(f"Backup part {self.storage.uri(self.blob_key(sha))} is corrupt ({exc}).",
                              fix="Restore from another backup (`goldfish restore <id>`).") from exc
        got = hashlib.sha256(data).hexdigest()
        if got != sha:
            raise BackupError(f"Backup part {self.storage.uri(self.blob_key(sha))} fails its checksum "
                              f"(sha256 {got[:12]}… != {sha[:12]}…).",
                              fix="Restore from another backup (`goldfish restore <id>`).")
        return data

    def blob_shas(self) -> dict[str, int]:
        out = {}
        for info in self.storage.list(self.key("blobs/")):
            out[info.key.rsplit("/", 1)[-1]] = info.size
        return out

    # ----------------------------------------------------------- manifests
    def manifest_key(self, manifest: dict[str, Any], *, deleted: bool = False) -> str:
        stamp = manifest["created_at"].replace("-", "").replace(":", "").replace(".", "").replace("+0000", "")
        return self.key(f"{'deleted' if deleted else 'manifests'}/{stamp}-{manifest['backup_id']}.json")

    def put_manifest(self, manifest: dict[str, Any], *, deleted: bool = False) -> str:
        key = self.manifest_key(manifest, deleted=deleted)
        self.storage.put_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2), key)
        return self.storage.uri(key)

    def manifests(self, *, deleted: bool = False) -> list[dict[str, Any]]:
        """Every manifest, oldest first (a damaged one is skipped: it names no restorable backup)."""
        out = []
        for info in self.storage.list(self.key("deleted/" if deleted else "manifests/")):
            if not info.key.endswith(".json"):
                continue
            try:
                data = self.storage.get_bytes(info.key)
                manifest = orjson.loads(data) if data else None
            except (StorageError, orjson.JSONDecodeError):
                continue
            if isinstance(manifest, dict) and manifest.get("format") == FORMAT:
                manifest["_key"] = info.key
                out.append(manifest)
        out.sort(key=lambda m: (m["created_at"], m["backup_id"]))
        return out

    def delete_manifest(self, manifest: dict[str, Any], deleted_at: str) -> None:
        tomb = {k: v for k, v in manifest.items() if k != "_key"}
        tomb["deleted_at"] = deleted_at
        self.put_manifest(tomb, deleted=True)
        self.storage.delete(manifest["_key"])


def parse_target(value: str, base: Path, config: GoldfishConfig | None) -> Target:
    """A target from ``gs://bucket/prefix/`` or a directory (relative to ``base``)."""
    if value.startswith("gs://"):
        from goldfish.storage.base import split_uri
        from goldfish.storage.gcs import GcsStorage

        bucket, prefix = split_uri(value)
        prefix = prefix.rstrip("/") + "/" if prefix else ""
        project = config.gce.project_id if config is not None and config.gce is not None else None
        return Target(GcsStorage(bucket, project=project), prefix, value if value.endswith("/") else value + "/",
                      local_disk=False)
    from goldfish.storage.local import LocalStorage

    path = Path(value).expanduser()
    path = path if path.is_absolute() else (base / path)
    path = path.resolve()
    return Target(LocalStorage(path), "", str(path), local_disk=_same_disk(path, base))


def _same_disk(path: Path, base: Path) -> bool:
    import os

    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        return os.stat(probe).st_dev == os.stat(base).st_dev
    except OSError:
        return True


def project_target(config: GoldfishConfig, project_root: Path, gf_dir: Path) -> Target:
    """The project's backup target (backups.target, else the gcs bucket, else .goldfish/backups)."""
    value = config.backups.target
    if value is None and config.gcs is not None:
        value = f"gs://{config.gcs.bucket}/backups/"
    if value is None:
        target = parse_target(str(gf_dir / "backups"), project_root, config)
        target.local_disk = True
        return target
    return parse_target(value, project_root, config)
