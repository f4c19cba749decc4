"""Stage-side I/O API (``from goldfish.io import load_input, ...``); lives in ``stage_sdk``."""

from stage_sdk.io import *
from stage_sdk.io import __all__
