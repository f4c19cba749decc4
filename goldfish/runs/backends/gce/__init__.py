"""The gce backend: stages on Compute Engine VMs (capacity search, preemption, Cloud Logging).

``GceBackend`` is the Backend protocol's implementation; ``read_log_lines`` reads stage log lines
of gce runs from Cloud Logging with any filter (the log search plugs in there).
"""

from __future__ import annotations

from goldfish.runs.backends.gce.backend import GceBackend
from goldfish.runs.backends.gce.cloud_logs import log_filter, read_log_lines

__all__ = ["GceBackend", "log_filter", "read_log_lines"]
