"""Where a data source lives and what its bytes were when it was registered.

A source is never copied: the registry records its location and an identity of its content
(size, mtime and inode for a cheap check, sha256 for the real one; size and generation for a GCS
object). ``goldfish.sources.service`` compares that identity again before every run that reads it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import unquote, urlparse

from goldfish.errors import ConfigError, GoldfishError

if TYPE_CHECKING:
    from goldfish.project import Project

UriKind = Literal["local", "gcs"]

# GCS bucket names: 3-63 characters of lowercase letters, digits, '-', '_' and '.', alphanumeric ends.
_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]", re.ASCII)
GCS_TIMEOUT = 30.0

DIRECTORY_REJECTED = (
    "Directory sources are rejected: register one file (save the arrays as one npz, or pack the "
    "directory into an archive and register it with format file)."
)


class LocationProblem(Exception):
    """A location that cannot be registered; ``message`` names the problem and the fix."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Location:
    kind: UriKind
    uri: str  # absolute path for local files, gs://bucket/object for GCS
    path: Path | None = None
    bucket: str | None = None
    blob: str | None = None


@dataclass(frozen=True)
class LocalIdentity:
    size: int
    mtime_ns: int
    inode: int


@dataclass(frozen=True)
class GcsObject:
    size: int
    generation: int | None
    md5_hash: str | None
    crc32c: str | None


def parse_location(project_root: Path, value: str) -> Location:
    """``gcs_path`` as the agent gave it → a Location; LocationProblem when it cannot be a source."""
    text = value.strip()
    if not text:
        raise LocationProblem("gcs_path is empty; give a file path, a file:// URI or a gs://bucket/object URI.")
    if text.startswith("gs://"):
        return _parse_gcs(text)
    if text.startswith("file://"):
        parsed = urlparse(text)
        if parsed.netloc not in ("", "localhost"):
            raise LocationProblem(
                f"{text!r} names host {parsed.netloc!r}; a file:// URI must be local, e.g. file:///data/x.npy."
            )
        text = unquote(parsed.path)
        if not text.startswith("/"):
            raise LocationProblem(f"{value!r} is not an absolute file:// URI; write file:///absolute/path.")
    elif "://" in text:
        scheme = text.split("://", 1)[0]
        raise LocationProblem(
            f"URI scheme {scheme!r} is not supported; use a local path, a file:// URI or a gs:// URI."
        )
    path = Path(text).expanduser()
    if not path.is_absolute():
        path = project_root / path
    # Resolved, so the registry records the file actually read (a symlink retargeted later is a
    # different source).
    path = path.resolve()
    return Location(kind="local", uri=str(path), path=path)


def _parse_gcs(text: str) -> Location:
    rest = text[len("gs://") :]
    bucket, _, blob = rest.partition("/")
    if not _BUCKET_RE.fullmatch(bucket):
        raise LocationProblem(f"{text!r} has no valid bucket name; write gs://<bucket>/<object>.")
    if not blob:
        raise LocationProblem(f"{text!r} names a bucket, not an object. {DIRECTORY_REJECTED}")
    if blob.endswith("/"):
        raise LocationProblem(f"{text!r} ends with '/', which names a folder. {DIRECTORY_REJECTED}")
    return Location(kind="gcs", uri=text, bucket=bucket, blob=blob)


def local_identity(path: Path) -> LocalIdentity:
    """Cheap identity of a regular file (LocationProblem when it is missing or not a file)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise LocationProblem(f"{path} does not exist; check the path (relative paths start at the project root).") from None
    except OSError as exc:
        raise LocationProblem(f"{path} cannot be read ({exc.strerror}).") from None
    if os.path.isdir(path):
        raise LocationProblem(f"{path} is a directory. {DIRECTORY_REJECTED}")
    if not os.path.isfile(path):
        raise LocationProblem(f"{path} is not a regular file (a device, socket or pipe); register a regular file.")
    return LocalIdentity(size=st.st_size, mtime_ns=st.st_mtime_ns, inode=st.st_ino)


def identity_fields(ident: LocalIdentity) -> dict[str, int]:
    return {"size_bytes": ident.size, "mtime_ns": ident.mtime_ns, "inode": ident.inode}


def same_identity(row: dict[str, Any], ident: LocalIdentity) -> bool:
    return (
        row.get("size_bytes") == ident.size
        and row.get("mtime_ns") == ident.mtime_ns
        and row.get("inode") in (None, ident.inode)
    )


# --------------------------------------------------------------------------- GCS


def gcs_client(project: Project) -> Any:
    """A google-cloud-storage client (imported here: it is slow to import). Honours
    STORAGE_EMULATOR_HOST, which the library reads itself."""
    if project.config.gcs is None:
        raise ConfigError(
            "gcs_path is a gs:// URI but goldfish.yaml has no gcs section.",
            fix="Add `gcs: {bucket: <your-bucket>}` to goldfish.yaml (then reload_config), or register a local file.",
        )
    try:
        from google.auth.exceptions import DefaultCredentialsError
        from google.cloud import storage  # type: ignore[attr-defined,unused-ignore]
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise ConfigError(
            "google-cloud-storage is not installed.", fix="pip install google-cloud-storage"
        ) from exc
    gce = project.config.gce
    try:
        return storage.Client(project=gce.project_id if gce is not None else None)
    except DefaultCredentialsError as exc:
        raise ConfigError(
            f"No Google Cloud credentials for GCS ({exc}).",
            fix="Run `gcloud auth application-default login` or set GOOGLE_APPLICATION_CREDENTIALS.",
        ) from None


def gcs_stat(project: Project, loc: Location) -> GcsObject | None:
    """Size and generation of a GCS object; None when it does not exist; LocationProblem for a folder."""
    client = gcs_client(project)
    from google.api_core import exceptions as gexc

    try:
        bucket = client.bucket(loc.bucket)
        blob = bucket.get_blob(loc.blob, timeout=GCS_TIMEOUT)
        if blob is None:
            under = list(client.list_blobs(loc.bucket, prefix=f"{loc.blob}/", max_results=1, timeout=GCS_TIMEOUT))
            if under:
                raise LocationProblem(f"{loc.uri} is a folder (objects live under it). {DIRECTORY_REJECTED}")
            return None
    except gexc.NotFound:
        return None
    except gexc.Forbidden as exc:
        raise GoldfishError(
            f"Access to {loc.uri} was refused ({exc.message}).",
            fix="Grant the credentials storage.objects.get on the bucket, or use another location.",
        ) from None
    except (gexc.GoogleAPIError, OSError) as exc:  # requests' connection errors are OSErrors
        raise GoldfishError(
            f"Could not check {loc.uri} on GCS ({exc}).", fix="Check the network and credentials, then retry."
        ) from None
    return GcsObject(
        size=int(blob.size or 0), generation=blob.generation, md5_hash=blob.md5_hash, crc32c=blob.crc32c
    )
