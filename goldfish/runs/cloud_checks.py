"""The registry check of a gce stage's image, and ``goldfish doctor``'s gce lines (credentials, the
Compute Engine API and zones, the bucket, the registry, Cloud Logging), each naming the missing role
or API. Whether the backend can run at all is ``GceBackend.availability`` (runs/availability.py).
"""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import TYPE_CHECKING

from goldfish.errors import GoldfishError

if TYPE_CHECKING:
    from goldfish.config import GoldfishConfig
    from goldfish.project import Project


def _token(config: GoldfishConfig) -> str | None:
    gce = config.gce
    if gce is not None and gce.endpoints.anonymous:
        return None
    import google.auth
    import google.auth.transport.requests

    creds, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
    creds.refresh(google.auth.transport.requests.Request())
    return str(creds.token)


def image_exists(config: GoldfishConfig, image: str) -> bool:
    """Whether ``host/path:tag`` is in its registry (the Docker Registry v2 API Artifact Registry serves)."""
    ref, _, tag = image.rpartition(":")
    host, _, path = ref.partition("/")
    scheme = "http" if host.split(":")[0] in ("127.0.0.1", "localhost") else "https"
    headers = {"Accept": "application/vnd.docker.distribution.manifest.v2+json, "
                         "application/vnd.oci.image.index.v1+json"}
    token = _token(config)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(f"{scheme}://{host}/v2/{path}/manifests/{tag}", method="HEAD", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30):
            return True
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return False
        if exc.code in (401, 403):
            raise GoldfishError(f"the registry {host} refused access (HTTP {exc.code}).",
                                fix="Grant the credentials roles/artifactregistry.reader on the repository.") from None
        raise GoldfishError(f"the registry {host} answered HTTP {exc.code}.", fix="Retry later.") from None
    except (urllib.error.URLError, OSError) as exc:
        raise GoldfishError(f"the registry {host} is unreachable ({exc}).",
                            fix="Check gce.artifact_registry and the network.") from None


def doctor_checks(project: Project) -> list[tuple[str, bool, str]]:
    """``goldfish doctor``'s gce lines: (name, ok, detail naming the missing role or API)."""
    config = project.config
    if config.gce is None:
        return []
    from goldfish.runs.backends.gce.checks import problems
    from goldfish.runs.cloud import gce_settings, image_for, profiles_of
    from goldfish.storage import bucket_storage

    found = problems(gce_settings(config), bucket_storage(config))
    compute = [p for p in found if p[0] != "gcs.bucket"]
    out: list[tuple[str, bool, str]] = [(
        "gce: credentials, Compute API, zones", not compute,
        "; ".join(f"{what} Fix: {fix}" for _w, what, fix in compute)
        or f"project {config.gce.project_id}, zones {', '.join(config.gce.zones or ['(profile defaults)'])}")]
    bucket = [p for p in found if p[0] == "gcs.bucket"]
    out.append(("gce: bucket", not bucket, "; ".join(f"{what} Fix: {fix}" for _w, what, fix in bucket)
                or f"gs://{config.gcs.bucket if config.gcs else '?'} is readable"))
    image = image_for(project, profiles_of(config)["cpu-small"])
    try:
        present = image_exists(config, image)
        out.append(("gce: registry", present, f"{image} is in the registry" if present else
                    f"{image} is missing. Fix: build and push the project image (manage_base_images action='build' "
                    "then action='push'), or pin docker.project_image_version."))
    except GoldfishError as exc:
        out.append(("gce: registry", False, f"{exc.message} Fix: {exc.fix}"))
    out.append(_logging_check(config))
    return out


def _logging_check(config: GoldfishConfig) -> tuple[str, bool, str]:
    from goldfish.runs.backends.gce.cloud_logs import log_filter, read_log_lines
    from goldfish.runs.cloud import gce_settings

    settings = gce_settings(config)
    try:
        read_log_lines(settings, log_filter(settings) + ' AND timestamp>="2000-01-01T00:00:00Z"', limit=1)
    except Exception as exc:
        text = str(getattr(exc, "message", exc))
        return ("gce: Cloud Logging", False,
                f"stage logs cannot be read ({text}). Fix: enable logging.googleapis.com and grant roles/logging.viewer "
                "(and roles/logging.logWriter to the VMs' service account).")
    return ("gce: Cloud Logging", True, "stage logs readable (log goldfish-stage)")

