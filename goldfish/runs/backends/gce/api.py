"""Compute Engine through google-cloud-compute (REST transport), imported on first use.

``ComputeApi`` is the handful of calls the backend makes — insert (waiting on the zone operation, so
an asynchronous stockout is seen: an insert is accepted before capacity is known), get, delete, a
labelled list across zones, the zones of the project, and whether an instance was preempted — and
``classify`` turns any error into one of the kinds the capacity search acts on.

``settings["endpoints"]`` (``gce.endpoints`` in goldfish.yaml) points the client at another endpoint
with anonymous credentials: the test suite's loopback fake, or an emulator.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

from goldfish.errors import ConfigError, GoldfishError

TIMEOUT = 60.0
SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
ErrorKind = Literal["stockout", "quota", "transient", "not_found", "permission", "invalid", "exists", "other"]

_STOCKOUT_CODES = {"ZONE_RESOURCE_POOL_EXHAUSTED", "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS",
                   "RESOURCE_POOL_EXHAUSTED", "STOCKOUT"}
_QUOTA_CODES = {"QUOTA_EXCEEDED", "quotaExceeded", "QUOTA_LIMIT"}
_QUOTA_NAME = re.compile(r"Quota '([A-Z0-9_]+)' exceeded")


@dataclass(frozen=True)
class ApiError(Exception):
    kind: ErrorKind
    status: int | None
    code: str | None
    message: str

    def __str__(self) -> str:
        return f"{self.code or self.status}: {self.message}"

    @property
    def quota_name(self) -> str | None:
        match = _QUOTA_NAME.search(self.message)
        return match.group(1) if match else None


def classify(exc: BaseException) -> ApiError:
    """Any error of a Compute call as an ``ApiError`` whose kind says what to do about it."""
    if isinstance(exc, ApiError):
        return exc
    status = getattr(exc, "code", None)
    status = status if isinstance(status, int) else None
    message = str(getattr(exc, "message", None) or exc)
    codes: list[str] = []
    for err in getattr(exc, "errors", None) or []:
        if isinstance(err, dict):
            codes += [str(err.get(k)) for k in ("code", "reason") if err.get(k)]
        else:
            codes += [str(getattr(err, k)) for k in ("code", "reason") if getattr(err, k, None)]
            message = str(getattr(err, "message", "") or message)
    code = codes[0] if codes else None
    lowered = message.lower()
    kind: ErrorKind
    if set(codes) & _STOCKOUT_CODES or "does not have enough resources" in lowered:
        kind = "stockout"
    elif set(codes) & _QUOTA_CODES or _QUOTA_NAME.search(message) or ("quota" in lowered and status == 403):
        kind = "quota"
    elif "RESOURCE_ALREADY_EXISTS" in codes or status == 409 or "alreadyexists" in lowered.replace(" ", ""):
        kind = "exists"
    elif status in (429, 500, 502, 503, 504) or isinstance(exc, (OSError, TimeoutError)) or "rateLimitExceeded" in codes:
        kind = "transient"
    elif status == 404 or "notFound" in codes or "was not found" in lowered:
        kind = "not_found"
    elif status in (401, 403) or "forbidden" in codes:
        kind = "permission"
    elif status == 400 or "invalid" in lowered:
        kind = "invalid"
    else:
        kind = "other"
    return ApiError(kind=kind, status=status, code=code, message=message)


def region_of(zone: str) -> str:
    return zone.rsplit("-", 1)[0]


class ComputeApi:
    def __init__(self, settings: dict[str, Any]):
        self.project = str(settings.get("project_id") or "")
        endpoints = settings.get("endpoints") or {}
        self.endpoint: str | None = endpoints.get("compute")
        self.anonymous = bool(endpoints.get("anonymous"))

    def _kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"transport": "rest", "credentials": self.credentials}
        if self.endpoint:
            kwargs["client_options"] = {"api_endpoint": self.endpoint}
        return kwargs

    @cached_property
    def credentials(self) -> Any:
        if self.anonymous:
            from google.auth.credentials import AnonymousCredentials

            return AnonymousCredentials()
        import google.auth
        from google.auth.exceptions import DefaultCredentialsError

        try:
            creds, _ = google.auth.default(scopes=SCOPES)
        except DefaultCredentialsError as exc:
            raise ConfigError(f"No Google Cloud credentials for Compute Engine ({exc}).",
                              fix="Run `gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS "
                                  "to a service account key with roles/compute.instanceAdmin.v1.") from None
        return creds

    @cached_property
    def instances(self) -> Any:
        from google.cloud import compute_v1

        return compute_v1.InstancesClient(**self._kwargs())

    @cached_property
    def operations(self) -> Any:
        from google.cloud import compute_v1

        return compute_v1.ZoneOperationsClient(**self._kwargs())

    @cached_property
    def zones_client(self) -> Any:
        from google.cloud import compute_v1

        return compute_v1.ZonesClient(**self._kwargs())

    # ------------------------------------------------------------------ calls
    def insert(self, zone: str, body: Any, *, wait_seconds: float = 300.0) -> None:
        """Create the instance; returns once the zone operation is done. Raises ``ApiError``."""
        try:
            op = self.instances.insert(project=self.project, zone=zone, instance_resource=body, timeout=TIMEOUT)
            op.result(timeout=wait_seconds)
        except Exception as exc:
            raise classify(exc) from None

    def get(self, zone: str, name: str) -> Any | None:
        """The instance, or None when it does not exist (any other error raises ``ApiError``)."""
        try:
            return self.instances.get(project=self.project, zone=zone, instance=name, timeout=TIMEOUT)
        except Exception as exc:
            err = classify(exc)
            if err.kind == "not_found":
                return None
            raise err from None

    def delete(self, zone: str, name: str) -> bool:
        """Ask for the instance to be deleted (not waiting for it to go); False when already gone."""
        try:
            self.instances.delete(project=self.project, zone=zone, instance=name, timeout=TIMEOUT)
        except Exception as exc:
            err = classify(exc)
            if err.kind == "not_found":
                return False
            raise err from None
        return True

    def list_labelled(self, labels: dict[str, str]) -> list[Any]:
        """Instances in every zone carrying all ``labels``."""
        from google.cloud import compute_v1

        text = " AND ".join(f'labels.{k} = "{v}"' for k, v in sorted(labels.items()))
        request = compute_v1.AggregatedListInstancesRequest(project=self.project, filter=text)
        try:
            found = []
            for _zone, scoped in self.instances.aggregated_list(request=request, timeout=TIMEOUT):
                found.extend(scoped.instances)
            return [i for i in found if all(i.labels.get(k) == v for k, v in labels.items())]
        except Exception as exc:
            raise classify(exc) from None

    def zones(self) -> set[str]:
        try:
            return {z.name for z in self.zones_client.list(project=self.project, timeout=TIMEOUT)}
        except Exception as exc:
            raise classify(exc) from None

    def preempted(self, zone: str, name: str) -> bool:
        """Whether the zone's operations record a preemption of this instance."""
        from google.cloud import compute_v1

        request = compute_v1.ListZoneOperationsRequest(project=self.project, zone=zone,
                                                       filter='operationType = "compute.instances.preempted"')
        try:
            for op in self.operations.list(request=request, timeout=TIMEOUT):
                if op.target_link.rsplit("/", 1)[-1] == name:
                    return True
        except Exception as exc:
            raise classify(exc) from None
        return False


def api_failure(err: ApiError, what: str) -> GoldfishError:
    """An ``ApiError`` that ends a call outright, as an error naming the fix."""
    fixes = {
        "permission": "Grant the credentials roles/compute.instanceAdmin.v1 (and roles/iam.serviceAccountUser on "
                      "the VMs' service account), and enable the Compute Engine API "
                      "(gcloud services enable compute.googleapis.com).",
        "not_found": "Check gce.project_id and gce.zones in goldfish.yaml (gcloud compute zones list).",
        "transient": "Compute Engine had a transient error; retry in a minute.",
    }
    return GoldfishError(f"{what} failed: {err}.", fix=fixes.get(err.kind, "Check gce settings in goldfish.yaml."))
