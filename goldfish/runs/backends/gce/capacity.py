"""Capacity search: where a stage's VM can be created right now.

Candidates are every (option, provisioning model, zone) of the placement the runner computed from
the compute profile: options in GPU-preference order, then spot before on-demand (or the reverse,
per ``gce.preemptible_preference``, and only the models the profile allows), then the zones in
order. The search tries them in that order and, when a whole pass found nothing, waits
(``initial_backoff_sec``, growing by ``backoff_multiplier``) and tries again, until a VM is created,
``max_attempts`` or ``search_timeout_sec`` is reached, or the run is canceled.

What each failure means for the rest of the search:
- stockout (``ZONE_RESOURCE_POOL_EXHAUSTED``), transient API errors: try the next candidate now and
  this one again on the next pass;
- quota: no candidate of that option and model in that region can succeed — skipped from then on;
- an unknown zone or machine type there (not found / invalid): that candidate is dropped;
- permission denied: nothing can succeed — the search stops at once.
When every candidate is dropped or quota-blocked the search stops without waiting. Every attempt
(zone, machine type, provisioning model, outcome, error) is reported through ``on_attempt``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from goldfish.errors import GoldfishError
from goldfish.runs.backends.gce.api import ApiError, region_of
from goldfish.timefmt import now_iso


@dataclass(frozen=True)
class Candidate:
    index: int  # the option's position (GPU preference order)
    option: str  # the option as canonical JSON (hashable)
    provisioning: str  # SPOT | STANDARD
    zone: str

    @property
    def spec(self) -> dict[str, Any]:
        return dict(json.loads(self.option))

    @property
    def key(self) -> tuple[int, str, str]:
        return (self.index, self.provisioning, self.zone)

    @property
    def quota_key(self) -> tuple[int, str, str]:
        return (self.index, self.provisioning, region_of(self.zone))


class SearchFailed(GoldfishError):
    """No VM could be created; ``kind`` is the reason (capacity, quota, permission, canceled, ...)."""

    def __init__(self, kind: str, message: str, *, fix: str, attempts: list[dict[str, Any]]):
        super().__init__(message, fix=fix, details={"attempts": attempts})
        self.error_kind = kind
        self.attempts = attempts


def candidates(placement: dict[str, Any]) -> list[Candidate]:
    spot_first = placement.get("preemptible_preference", "on_demand_first") == "spot_first"
    out: list[Candidate] = []
    for index, option in enumerate(placement.get("options") or []):
        models = [m for m, allowed in (("SPOT", option.get("spot")), ("STANDARD", option.get("on_demand"))) if allowed]
        if not spot_first:
            models.reverse()
        frozen = json.dumps(option, sort_keys=True)
        out += [Candidate(index, frozen, model, zone) for model in models for zone in option.get("zones") or []]
    return out


def _describe(option: dict[str, Any]) -> str:
    gpu = f" + {option.get('gpu_count')}x {option.get('accelerator')}" if option.get("accelerator") else ""
    return f"{option.get('machine_type')}{gpu}"


def search(
    insert: Callable[[Candidate], None],
    cands: list[Candidate],
    *,
    initial_backoff: float,
    multiplier: float,
    max_attempts: int,
    timeout: float,
    should_stop: Callable[[], bool] = lambda: False,
    on_attempt: Callable[[list[dict[str, Any]]], None] = lambda attempts: None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[Candidate, list[dict[str, Any]]]:
    """Create the VM on the first candidate that works; ``SearchFailed`` when none does."""
    attempts: list[dict[str, Any]] = []
    dropped: set[tuple[int, str, str]] = set()
    quota: dict[tuple[int, str, str], ApiError] = {}
    start = clock()
    backoff = initial_backoff
    if not cands:
        raise SearchFailed("config", "The compute profile gives no zone and provisioning model to try.",
                           fix="Set gce.zones (or the profile's zones) and allow spot or on-demand.", attempts=[])

    def stop_if_needed() -> None:
        if should_stop():
            raise SearchFailed("canceled", "Canceled while searching for capacity.", fix="Nothing to do.",
                               attempts=attempts)
        if len(attempts) >= max_attempts or clock() - start > timeout:
            raise _exhausted(attempts, max_attempts, timeout)

    while True:
        for cand in cands:
            if cand.key in dropped or cand.quota_key in quota:
                continue
            stop_if_needed()
            spec = cand.spec
            entry: dict[str, Any] = {
                "n": len(attempts) + 1, "at": now_iso(), "zone": cand.zone, "machine_type": spec.get("machine_type"),
                "accelerator": spec.get("accelerator"), "gpu_count": spec.get("gpu_count") or 0,
                "provisioning_model": cand.provisioning, "profile": spec.get("profile"),
            }
            t0 = clock()
            try:
                insert(cand)
            except ApiError as err:
                entry.update(outcome=err.kind, error=str(err)[:500], seconds=round(clock() - t0, 3))
                attempts.append(entry)
                on_attempt(attempts)
                if err.kind == "exists":  # our own insert of this attempt got through earlier
                    entry["outcome"] = "launched"
                    return cand, attempts
                if err.kind == "permission":
                    raise SearchFailed("permission", f"Compute Engine refused to create the VM: {err}.",
                                       fix="Grant the credentials roles/compute.instanceAdmin.v1 and "
                                           "roles/iam.serviceAccountUser on the VMs' service account, and enable "
                                           "the Compute Engine API.", attempts=attempts) from None
                if err.kind == "quota":
                    quota[cand.quota_key] = err
                elif err.kind in ("not_found", "invalid"):
                    dropped.add(cand.key)
                continue
            entry.update(outcome="launched", error=None, seconds=round(clock() - t0, 3))
            attempts.append(entry)
            on_attempt(attempts)
            return cand, attempts
        if all(c.key in dropped or c.quota_key in quota for c in cands):
            raise _hopeless(cands, attempts, quota)
        waited_until = clock() + backoff
        while clock() < waited_until:
            stop_if_needed()
            sleep(min(0.5, max(0.0, waited_until - clock())))
        backoff *= multiplier


def _exhausted(attempts: list[dict[str, Any]], max_attempts: int, timeout: float) -> SearchFailed:
    zones = sorted({a["zone"] for a in attempts})
    kinds = sorted({a["outcome"] for a in attempts})
    why = f"{len(attempts)} attempts" + (f" (gce.max_attempts = {max_attempts})" if len(attempts) >= max_attempts
                                         else f" in {timeout:.0f}s (gce.search_timeout_sec)")
    return SearchFailed(
        "capacity", f"No capacity: {why} across {len(zones)} zone(s) ({', '.join(zones)}) ended in {', '.join(kinds)}.",
        fix="Retry later, add zones (gce.zones or the profile's zones), allow the other provisioning model "
            "(preemptible_allowed / on_demand_allowed), or raise gce.search_timeout_sec.", attempts=attempts)


def _hopeless(cands: list[Candidate], attempts: list[dict[str, Any]],
              quota: dict[tuple[int, str, str], ApiError]) -> SearchFailed:
    if quota:
        names = sorted({e.quota_name or "?" for e in quota.values()})
        regions = sorted({k[2] for k in quota})
        what = sorted({_describe(c.spec) for c in cands if c.quota_key in quota})
        return SearchFailed(
            "quota", f"No quota for {', '.join(what)} in region(s) {', '.join(regions)} ({', '.join(names)}): "
                     f"{next(iter(quota.values())).message}",
            fix=f"Request a quota increase for {', '.join(names)} in {', '.join(regions)} (Google Cloud console, "
                "IAM & Admin > Quotas), or use a profile or zones with quota.", attempts=attempts)
    last = attempts[-1]["error"] if attempts else "no attempt"
    return SearchFailed("config", f"No zone can create this VM: {last}.",
                        fix="Check gce.zones and the profile's machine_type/gpu against `gcloud compute "
                            "machine-types list` and `gcloud compute accelerator-types list`.", attempts=attempts)
