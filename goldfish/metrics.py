"""Stage-side Metrics API (``from goldfish.metrics import log_metric, ...``); lives in ``stage_sdk``."""

from stage_sdk.metrics import *  # noqa: F401,F403
from stage_sdk.metrics import __all__  # noqa: F401
