"""Is the gce backend usable from here? Checked before anything is recorded (run(), dry runs,
validate_config) and shown by ``goldfish doctor``: credentials, the Compute Engine API and the zones,
the bucket, and the registry. Each problem names what is missing and the fix (the role, the API to
enable, the command to run). Answers are cached for a minute per process: run() stays fast.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any

from goldfish.errors import GoldfishError
from goldfish.issues import Issue

if TYPE_CHECKING:
    from goldfish.config import GoldfishConfig

CACHE_SECONDS = 60.0
_cache: dict[str, tuple[float, list[Issue]]] = {}


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


def backend_issues(config: GoldfishConfig) -> list[Issue]:
    """Problems that stop ``jobs.backend`` from running anything here (empty when it can)."""
    return check_gce(config) if config.jobs.backend == "gce" else []


def check_gce(config: GoldfishConfig, *, fresh: bool = False) -> list[Issue]:
    """Problems that stop the gce backend from running anything (empty when it can)."""
    gce = config.gce
    if config.jobs.backend != "gce" or gce is None:
        return []
    key = repr((gce.model_dump(), config.gcs.model_dump() if config.gcs else None))
    hit = _cache.get(key)
    if hit is not None and not fresh and time.monotonic() - hit[0] < CACHE_SECONDS:
        return hit[1]
    issues = _check(config)
    _cache[key] = (time.monotonic(), issues)
    return issues


def _issue(message: str, fix: str, location: str = "jobs.backend") -> Issue:
    return Issue(location=location, message=message, fix=fix)


def _check(config: GoldfishConfig) -> list[Issue]:
    from goldfish.runs.backends.gce.api import ApiError, ComputeApi
    from goldfish.runs.cloud import gce_settings

    gce = config.gce
    assert gce is not None
    issues: list[Issue] = []
    api = ComputeApi(gce_settings(config))
    try:
        api.credentials  # noqa: B018 - resolves Application Default Credentials
    except GoldfishError as exc:
        return [_issue(f"gce backend unavailable: {exc.message}", exc.fix or "")]
    try:
        zones = api.zones()
    except ApiError as err:
        if err.kind == "permission":
            issues.append(_issue(
                f"gce backend unavailable: the Compute Engine API refused to list zones of {gce.project_id} ({err}).",
                "Enable the API (gcloud services enable compute.googleapis.com) and grant the credentials "
                "roles/compute.instanceAdmin.v1."))
        else:
            issues.append(_issue(f"gce backend unavailable: the Compute Engine API failed ({err}).",
                                 "Check gce.project_id and the network, then retry."))
        zones = None
    if zones is not None:
        wanted: dict[str, str] = {z: "gce.zones" for z in gce.zones or []}
        for name, overrides in gce.profile_overrides.items():
            if isinstance(overrides, dict):
                for z in overrides.get("zones") or []:
                    wanted.setdefault(str(z), f"gce.profile_overrides.{name}.zones")
        for zone, where in wanted.items():
            if zone not in zones:
                region = zone.rsplit("-", 1)[0]
                area = region.rstrip("0123456789")
                near = (sorted(z for z in zones if z.rsplit("-", 1)[0] == region)
                        or sorted(z for z in zones if z.startswith(area)) or sorted(zones))
                issues.append(_issue(f"zone {zone} does not exist in project {gce.project_id}.",
                                     f"Use zones that exist, e.g. {', '.join(near[:3])} "
                                     "(gcloud compute zones list).", where))
    issues += _bucket_issues(config)
    return issues


def _bucket_issues(config: GoldfishConfig) -> list[Issue]:
    if config.gcs is None:
        return []
    from goldfish.storage import StorageError, bucket_storage

    store = bucket_storage(config)
    assert store is not None
    try:
        bucket: Any = store.client.lookup_bucket(config.gcs.bucket, timeout=30)
    except StorageError as exc:
        return [_issue(f"gcs bucket unavailable: {exc.message}", exc.fix or "", "gcs.bucket")]
    except Exception as exc:  # google.api_core errors, connection errors
        text = str(getattr(exc, "message", exc))
        fix = ("Grant the credentials roles/storage.objectAdmin on the bucket." if "403" in str(exc) or "Forbidden"
               in type(exc).__name__ else "Check gcs.bucket and the network.")
        return [_issue(f"gcs bucket {config.gcs.bucket} cannot be read ({text}).", fix, "gcs.bucket")]
    if bucket is None:
        return [_issue(f"gcs bucket {config.gcs.bucket} does not exist.",
                       f"Create it: gcloud storage buckets create gs://{config.gcs.bucket} --location=<region>",
                       "gcs.bucket")]
    return []


def doctor_checks(config: GoldfishConfig) -> list[tuple[str, bool, str]]:
    """``goldfish doctor``'s gce lines: (name, ok, detail naming the missing role or API)."""
    if config.gce is None:
        return []
    out: list[tuple[str, bool, str]] = []
    problems = _check(config) if config.gce.project_id else [
        _issue("gce.project_id is not set.", "Add gce: {project_id: my-gcp-project} to goldfish.yaml.")]
    compute = [i for i in problems if i.location != "gcs.bucket"]
    out.append(("gce: credentials, Compute API, zones", not compute,
                "; ".join(f"{i.message} Fix: {i.fix}" for i in compute) or
                f"project {config.gce.project_id}, zones {', '.join(config.gce.zones or ['(profile defaults)'])}"))
    bucket = [i for i in problems if i.location == "gcs.bucket"]
    if config.gcs is not None:
        out.append(("gce: bucket", not bucket, "; ".join(f"{i.message} Fix: {i.fix}" for i in bucket)
                    or f"gs://{config.gcs.bucket} is readable"))
    else:
        out.append(("gce: bucket", False, "no gcs section. Fix: add gcs: {bucket: my-bucket}"))
    from goldfish.runs.cloud import image_for, profiles_of

    image = image_for(config, profiles_of(config)["cpu-small"])
    try:
        found = image_exists(config, image)
        out.append(("gce: registry", found, f"{image} is in the registry" if found else
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

