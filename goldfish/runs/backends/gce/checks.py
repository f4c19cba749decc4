"""Can the gce backend work from here? Credentials, the Compute Engine API and the zones, the bucket.

``problems`` lists each one found as (where, what, fix) naming the missing role, API or command;
``GceBackend.availability`` folds them into one refusal (cached a minute per process, so run() stays
fast) and ``goldfish doctor`` shows them line by line. The registry is checked per image when a
stage launches.
"""

from __future__ import annotations

import json
import time
from typing import Any

from goldfish.errors import GoldfishError
from goldfish.runs.backends.base import Availability, Objects
from goldfish.runs.backends.gce.api import ApiError, ComputeApi

CACHE_SECONDS = 60.0
PROBE = "goldfish-probe/"  # listing a prefix that need not exist: fails only without the bucket (or access)
_cache: dict[str, tuple[float, Availability]] = {}

Problem = tuple[str, str, str]  # (config location, what is wrong, the fix)


def problems(settings: dict[str, Any], objects: Objects | None, api: ComputeApi | None = None) -> list[Problem]:
    api = api or ComputeApi(settings)
    found: list[Problem] = []
    if not settings.get("project_id"):
        return [("gce.project_id", "gce.project_id is not set.", "Add gce: {project_id: my-gcp-project} to goldfish.yaml.")]
    try:
        api.credentials  # noqa: B018 - resolves Application Default Credentials
    except GoldfishError as exc:
        return [("jobs.backend", exc.message, exc.fix or "")]
    try:
        zones = api.zones()
    except ApiError as err:
        if err.kind == "permission":
            found.append(("jobs.backend", f"the Compute Engine API refused to list the zones of {api.project} ({err}).",
                          "Enable the API (gcloud services enable compute.googleapis.com) and grant the credentials "
                          "roles/compute.instanceAdmin.v1."))
        else:
            found.append(("jobs.backend", f"the Compute Engine API failed ({err}).",
                          "Check gce.project_id and the network, then retry."))
        zones = None
    if zones is not None:
        wanted: dict[str, str] = {z: "gce.zones" for z in settings.get("zones") or []}
        for name, zone_list in (settings.get("profile_zones") or {}).items():
            for z in zone_list:
                wanted.setdefault(str(z), f"gce.profile_overrides.{name}.zones")
        for zone, where in wanted.items():
            if zone not in zones:
                region = zone.rsplit("-", 1)[0]
                area = region.rstrip("0123456789")
                near = (sorted(z for z in zones if z.rsplit("-", 1)[0] == region)
                        or sorted(z for z in zones if z.startswith(area)) or sorted(zones))
                found.append((where, f"zone {zone} does not exist in project {api.project}.",
                              f"Use zones that exist, e.g. {', '.join(near[:3])} (gcloud compute zones list)."))
    bucket = settings.get("bucket")
    if objects is None or not bucket:
        found.append(("gcs.bucket", "there is no gcs bucket.", "Add gcs: {bucket: my-bucket} to goldfish.yaml."))
    else:
        try:
            objects.list(PROBE)
        except GoldfishError as exc:
            missing = "not found" in exc.message
            found.append(("gcs.bucket", f"gcs bucket {bucket} does not exist." if missing else exc.message,
                          f"Create it: gcloud storage buckets create gs://{bucket} --location=<region>" if missing
                          else exc.fix or "Check gcs.bucket and the network."))
    return found


def availability(settings: dict[str, Any], objects: Objects | None) -> Availability:
    key = json.dumps(settings, sort_keys=True, default=str)
    hit = _cache.get(key)
    if hit is not None and time.monotonic() - hit[0] < CACHE_SECONDS:
        return hit[1]
    found = problems(settings, objects)
    result = Availability(ok=True, gpus=True) if not found else Availability.refused(
        "; ".join(f"{where}: {what}" for where, what, _fix in found), " ".join(fix for _w, _m, fix in found))
    _cache[key] = (time.monotonic(), result)
    return result
