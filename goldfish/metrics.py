"""Stage-side Metrics API (``from goldfish.metrics import log_metric, ...``); lives in ``stage_sdk``."""

from stage_sdk.metrics import *
from stage_sdk.metrics import __all__
