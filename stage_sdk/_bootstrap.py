"""Run a python stage module as ``__main__``: ``python -m stage_sdk._bootstrap modules/train.py``.

The module runs with ``__name__ == "__main__"``. A module without an
``if __name__ == "__main__":`` block but with a top-level ``main()`` gets ``main()`` called, so
both styles of stage module work. Metrics are flushed (``finish()``) however the module
ends, before the exit status is handed back to the launcher.
"""

from __future__ import annotations

import ast
import runpy
import sys
import traceback
from pathlib import Path
from typing import Any


def _has_main_guard(tree: ast.Module) -> bool:
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Compare):
            names = [node.test.left, *node.test.comparators]
            if any(isinstance(n, ast.Name) and n.id == "__name__" for n in names) and any(
                isinstance(n, ast.Constant) and n.value == "__main__" for n in names
            ):
                return True
    return False


def _finish() -> None:
    # A stage that never imported the metrics module has nothing buffered: importing it now (and
    # numpy with it, ≈0.1 s) would only delay the end of the stage.
    metrics = sys.modules.get("stage_sdk.metrics")
    if metrics is None:
        return
    finish = getattr(metrics, "finish", None)
    if callable(finish):
        try:
            finish()
        except Exception:  # flushing metrics must never change the stage's outcome
            traceback.print_exc()


def _ours(filename: str) -> bool:
    """Frames of this launcher and of runpy: not the user's code."""
    return filename in (__file__, runpy.__file__) or filename.endswith(("<frozen runpy>", "runpy.py"))


def _print_user_traceback(exc: BaseException) -> None:
    """The traceback from the user's first frame on: what ran the module is noise in the stage log."""
    tb = exc.__traceback__
    while tb is not None and _ours(tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next
    traceback.print_exception(type(exc), exc, tb if tb is not None else exc.__traceback__)


def run(path: str) -> int:
    source = Path(path)
    try:
        tree = ast.parse(source.read_bytes(), filename=str(source))
    except SyntaxError as exc:
        sys.stderr.write("".join(traceback.format_exception_only(type(exc), exc)))
        return 1
    code = 0
    try:
        namespace: dict[str, Any] = runpy.run_path(str(source), run_name="__main__")
        entry = namespace.get("main")
        if not _has_main_guard(tree) and callable(entry):
            result = entry()
            if isinstance(result, int) and not isinstance(result, bool):
                code = result
    except SystemExit as exc:
        if exc.code is None:
            code = 0
        elif isinstance(exc.code, int):
            code = exc.code
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    except BaseException as exc:
        _print_user_traceback(exc)
        code = 1
    finally:
        _finish()
        sys.stdout.flush()
        sys.stderr.flush()
    return code


def main() -> None:
    if len(sys.argv) != 2:
        print("usage: python -m stage_sdk._bootstrap <module.py>", file=sys.stderr)
        sys.exit(2)
    # The stage sees its own argv[0], as when run as a script.
    path = sys.argv[1]
    sys.argv = [path]
    sys.exit(run(path))


if __name__ == "__main__":
    main()
