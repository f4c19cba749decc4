"""Static checks of stage code (the ``rules`` review provider's analyses).

Each check returns findings with file:line and the fix. They are tuned for precision: when the
code's meaning cannot be known statically (a name built at run time, a value that may be a Path),
the check stays silent.
"""

from __future__ import annotations

import ast
import builtins
import difflib
import re
from collections.abc import Iterator, Mapping
from typing import Any

from goldfish.names import did_you_mean
from goldfish.pipelines.model import Stage
from goldfish.svs.code import SourceFile, StageCode
from goldfish.svs.findings import Finding
from goldfish.svs.key_typos import misspelled_side

LONG_LOOP_ITERATIONS = 10_000
COUNTED_LOOP_ITERATIONS = 100
RUNTIME_CONFIG_KEYS = ("stage", "inputs", "outputs")
_TRAINING_NAME = re.compile(r"(?:^|[_\-.])(?:pre|re|fine)?(?:train(?:ing|er)?|fit(?:ting)?|finetune)(?:$|[_\-.\d])")
_EPOCH_WORD = re.compile(
    r"\b(?:n_|num_|max_|total_)?(?:epochs?|steps?|iters?|iterations?)(?:_\w+)?\b", re.IGNORECASE
)
_INPUT_FUNCS = ("load_input", "get_input_path")
_OUTPUT_FUNCS = ("save_output", "get_output_path")


def _finding(check: str, severity: str, message: str, fix: str | None, *, stage: str, file: str | None = None,
             line: int | None = None, confidence: str = "high", signal: str | None = None) -> Finding:
    return Finding.model_validate(
        {"source": "rules", "check": check, "severity": severity, "confidence": confidence, "stage": stage,
         "file": file, "line": line, "message": message, "fix": fix, "signal": signal}
    )


# --------------------------------------------------------------------------- syntax and names
def syntax_findings(code: StageCode) -> list[Finding]:
    out = []
    for source in code.files:
        exc = source.syntax_error
        if exc is None:
            continue
        text = (exc.text or "").strip()
        shown = f" ({text[:120]})" if text else ""
        out.append(_finding(
            "syntax_error", "error", f"SyntaxError: {exc.msg}{shown}.",
            f"Fix the syntax at {source.path}:{exc.lineno}; `python -m py_compile {source.path}` shows it too.",
            stage=code.stage, file=source.path, line=exc.lineno,
        ))
    return out


def _defined_names(tree: ast.Module) -> set[str]:
    names: set[str] = set(dir(builtins))
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.alias):
            names.add((node.asname or node.name).split(".")[0])
    return names


def undefined_name_findings(code: StageCode) -> list[Finding]:
    from pyflakes import checker, messages

    kinds = (messages.UndefinedName, messages.UndefinedLocal, messages.UndefinedExport)
    out = []
    for source in code.python_files:
        assert source.tree is not None
        result = checker.Checker(source.tree, filename=source.path)
        known: set[str] | None = None
        for message in sorted(result.messages, key=lambda m: (m.lineno, m.col)):
            if not isinstance(message, kinds):
                continue
            name = str(message.message_args[0])
            if known is None:
                known = _defined_names(source.tree)
            hint = did_you_mean(name, sorted(known - {name}))
            if isinstance(message, messages.UndefinedLocal):
                text = f"local variable {name!r} is used before it is assigned (line {message.lineno})."
                fix = f"Assign {name} before this line, or declare it global/nonlocal.{hint}"
            else:
                text = f"name {name!r} is not defined: this line raises NameError when it runs."
                fix = f"Define or import {name}, or fix the spelling.{hint}"
            out.append(_finding("undefined_name", "error", text, fix, stage=code.stage, file=source.path,
                                line=message.lineno))
    return out


# --------------------------------------------------------------------------- signals
def _name_arg(call: ast.Call, keyword: str = "name", position: int = 0) -> ast.expr | None:
    if len(call.args) > position:
        return call.args[position]
    return next((kw.value for kw in call.keywords if kw.arg == keyword), None)


def _closest(word: str, candidates: list[str]) -> str | None:
    matches = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return matches[0] if matches else None


def _literal_str(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def signal_findings(code: StageCode, stage: Stage) -> list[Finding]:
    """load_input/save_output/get_*_path names against the stage's declared signals."""
    main = code.main
    if main is None or main.tree is None:
        return []
    inputs, outputs = sorted(stage.inputs), sorted(stage.outputs)
    out = []
    for func, call in main.sdk_calls(*_INPUT_FUNCS, *_OUTPUT_FUNCS):
        name = _literal_str(_name_arg(call))
        if name is None:
            continue
        reading = func in _INPUT_FUNCS
        declared, other = (inputs, outputs) if reading else (outputs, inputs)
        if name in declared:
            continue
        kind, other_kind = ("input", "output") if reading else ("output", "input")
        where = f"stages[{stage.name}].{kind}s"
        if name in other:
            message = f"{func}({name!r}) names an {other_kind} of stage {stage.name}, not an {kind}."
        else:
            listed = ", ".join(declared) or "none"
            message = (f"{func}({name!r}): stage {stage.name} declares no {kind} {name!r} in pipeline.yaml"
                       f" (its {kind}s: {listed}).{did_you_mean(name, declared)}")
        closest = _closest(name, declared)
        fix = (f"Use {func}({closest!r}), or declare {name!r} under {where} in pipeline.yaml." if closest
               else f"Declare {name!r} under {where} in pipeline.yaml, or use one of the declared names.")
        out.append(_finding("unknown_signal", "error", message, fix, stage=code.stage, file=main.path,
                            line=call.lineno, signal=name))
    return out


# --------------------------------------------------------------------------- save_output data kind
_STR_FUNCS = {"str", "os.path.join", "os.fspath", "os.getcwd", "os.path.abspath", "os.path.realpath",
              "tempfile.mkdtemp", "repr", "format"}
_PATH_FUNCS = {"pathlib.Path", "pathlib.PurePath", "pathlib.PosixPath", "Path", "PurePath"}
_DATA_MODULES = ("numpy.", "torch.", "pandas.", "json.", "pickle.", "sklearn.")


def _binds(node: ast.AST, name: str) -> bool:
    """Whether ``node`` binds ``name`` some other way than a plain assignment (value unknown)."""
    if isinstance(node, ast.ExceptHandler):
        return node.name == name
    if isinstance(node, ast.Import | ast.ImportFrom):
        return any((a.asname or a.name).split(".")[0] == name for a in node.names)
    if isinstance(node, ast.Global | ast.Nonlocal):
        return name in node.names
    if isinstance(node, ast.For | ast.AsyncFor):
        target: ast.AST | None = node.target
    elif isinstance(node, ast.With | ast.AsyncWith):
        return any(item.optional_vars is not None and _names_in(item.optional_vars, name) for item in node.items)
    elif isinstance(node, ast.comprehension | ast.NamedExpr):
        target = node.target
    elif isinstance(node, ast.Delete):
        return any(_names_in(t, name) for t in node.targets)
    else:
        return False
    return target is not None and _names_in(target, name)


def _names_in(node: ast.AST, name: str) -> bool:
    return any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(node))


def _assignments(scope: ast.AST, name: str) -> list[ast.expr | None]:
    """Values assigned to ``name`` in ``scope`` (None for bindings whose value is unknown)."""
    found: list[ast.expr | None] = []
    stack: list[ast.AST] = list(ast.iter_child_nodes(scope))
    while stack:
        node = stack.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name:
                found.append(None)
            continue  # nested scopes bind their own names
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id == name:
                    found.append(node.value)
                elif any(isinstance(t, ast.Name) and t.id == name for t in ast.walk(target)):
                    found.append(None)  # unpacking: value unknown
        elif isinstance(node, ast.AnnAssign | ast.AugAssign):
            if isinstance(node.target, ast.Name) and node.target.id == name:
                found.append(None if isinstance(node, ast.AugAssign) else node.value)
        elif _binds(node, name):
            found.append(None)
        stack.extend(ast.iter_child_nodes(node))
    if isinstance(scope, ast.FunctionDef | ast.AsyncFunctionDef):
        args = scope.args
        every = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
        if any(a is not None and a.arg == name for a in every):
            found.append(None)
    return found


def _data_kind(source: SourceFile, node: ast.expr | None, scope: ast.AST, depth: int = 0) -> str:
    """'path', 'str', 'data' (a non-path object) or 'unknown'."""
    if node is None or depth > 4:
        return "unknown"
    if isinstance(node, ast.Constant):
        return "str" if isinstance(node.value, str | bytes) else "data"
    if isinstance(node, ast.JoinedStr):
        return "str"
    if isinstance(node, ast.List | ast.Tuple | ast.Set | ast.ListComp | ast.SetComp | ast.GeneratorExp):
        return "data"
    if isinstance(node, ast.Dict | ast.DictComp):
        return "dict"
    if isinstance(node, ast.Call):
        if source.sdk_function(node) in ("get_output_path", "get_input_path"):
            return "path"
        qualified = source.qualified(node.func) or ""
        if qualified in _PATH_FUNCS:
            return "path"
        if qualified in _STR_FUNCS or (isinstance(node.func, ast.Attribute) and node.func.attr == "format"
                                       and isinstance(node.func.value, ast.Constant)):
            return "str"
        if qualified.startswith(_DATA_MODULES):
            return "data"
        return "unknown"
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
        return "path" if _data_kind(source, node.left, scope, depth + 1) == "path" else "unknown"
    if isinstance(node, ast.Name):
        values = _assignments(scope, node.id)
        if not values:
            return "unknown"
        kinds = {_data_kind(source, v, scope, depth + 1) for v in values}
        return kinds.pop() if len(kinds) == 1 else "unknown"
    return "unknown"


def _scopes(tree: ast.Module) -> Iterator[tuple[ast.AST, ast.Call]]:
    """Every call with the innermost function (or the module) that contains it."""
    def visit(node: ast.AST, scope: ast.AST) -> Iterator[tuple[ast.AST, ast.Call]]:
        for child in ast.iter_child_nodes(node):
            inner = child if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) else scope
            if isinstance(child, ast.Call):
                yield scope, child
            yield from visit(child, inner)
    yield from visit(tree, tree)


def save_output_findings(code: StageCode, stage: Stage) -> list[Finding]:
    """save_output on a file/directory output given something that is certainly not a Path."""
    main = code.main
    if main is None or main.tree is None:
        return []
    out = []
    for scope, call in _scopes(main.tree):
        if main.sdk_function(call) != "save_output":
            continue
        name = _literal_str(_name_arg(call))
        signal = stage.outputs.get(name) if name else None
        if signal is None or signal.format not in ("file", "directory"):
            continue
        kind = _data_kind(main, _name_arg(call, "data", 1), scope)
        json_ok = signal.format == "file" and signal.contract is not None and signal.contract.kind == "json"
        if kind in ("path", "unknown") or (json_ok and kind in ("dict", "data")):
            continue
        what = {"str": "a str", "dict": "a dict", "data": "an in-memory object"}[kind]
        out.append(_finding(
            "save_output_needs_path", "error",
            f"save_output({name!r}, ...) passes {what} for {signal.format} output {name!r}; a"
            f" {signal.format} output takes a Path (save_output raises ValueError otherwise).",
            f"Write the {signal.format} at get_output_path({name!r}) (a Path), then call"
            f" save_output({name!r}, get_output_path({name!r})).",
            stage=code.stage, file=main.path, line=call.lineno, signal=name,
        ))
    return out


# --------------------------------------------------------------------------- training and loops
def _loops(source: SourceFile) -> Iterator[ast.For | ast.AsyncFor | ast.While]:
    for node in source.nodes():
        if isinstance(node, ast.For | ast.AsyncFor | ast.While):
            yield node


def _has_nested_loop(loop: ast.AST) -> bool:
    return any(isinstance(n, ast.For | ast.AsyncFor | ast.While) for n in ast.walk(loop) if n is not loop)


def _optimizer_loop(source: SourceFile) -> ast.For | ast.AsyncFor | ast.While | None:
    """A loop that runs backward() or <optimizer>.step(): a training loop whatever the stage's name."""
    if source.tree is None:
        return None
    for loop in _loops(source):
        for node in ast.walk(loop):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            if node.func.attr == "backward":
                return loop
            owner = source.written(node.func.value) or ""
            if node.func.attr == "step" and "optim" in owner.lower():
                return loop
    return None


def _writes_metrics_file(source: SourceFile) -> bool:
    """The stage writes the on-disk metrics contract (.goldfish/metrics.jsonl) itself."""
    return any(isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value.endswith("metrics.jsonl")
               for n in source.nodes())


def training_findings(code: StageCode) -> list[Finding]:
    """A training stage that logs no metrics leaves nothing to judge it by (blocks)."""
    sources = code.python_files
    if not sources or any(s.sdk_calls("log_metric", "log_metrics") or _writes_metrics_file(s) for s in sources):
        return []
    by_name = bool(_TRAINING_NAME.search(code.stage.lower()) or _TRAINING_NAME.search(code.module.lower()))
    loop_src = next(((s, loop) for s in sources if (loop := _optimizer_loop(s)) is not None), None)
    if not by_name and loop_src is None:
        return []
    why = f"stage {code.stage} trains" + (" (it runs an optimizer loop)" if loop_src and not by_name else "")
    file, line = (loop_src[0].path, loop_src[1].lineno) if loop_src else (code.module, None)
    fix = ("Log the loss and the results_spec metrics with log_metric('train/loss', loss, step=step)"
           " (from goldfish.metrics import log_metric) inside the training loop.")
    logs_progress = any(
        isinstance(node, ast.Call) and s.sdk_function(node) == "runtime_log"
        for s in sources for loop in _loops(s) for node in ast.walk(loop)
    )
    if logs_progress:
        # A note, not a warning: a common stage pattern reports progress this way.
        return [_finding(
            "training_without_metrics", "info",
            f"{why} but never calls log_metric/log_metrics; progress goes only to runtime_log, so no"
            " metrics summary, results_auto or loss monitoring is possible.",
            fix, stage=code.stage, file=file, line=line, confidence="medium")]
    return [_finding(
        "training_without_metrics", "error",
        f"{why} but never calls log_metric/log_metrics (nor runtime_log in a loop): the run would finish"
        " with nothing to judge it by.",
        fix, stage=code.stage, file=file, line=line)]


def _range_count(call: ast.expr) -> int | None:
    """Iterations of range(<int literals>), else None."""
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "range"):
        return None
    values = []
    for arg in call.args:
        if not (isinstance(arg, ast.Constant) and type(arg.value) is int):
            return None
        values.append(arg.value)
    if len(values) == 1:
        return max(values[0], 0)
    if len(values) in (2, 3):
        step = values[2] if len(values) == 3 else 1
        return max(len(range(values[0], values[1], step)), 0) if step else None
    return None


def _is_long(loop: ast.For | ast.AsyncFor | ast.While) -> str | None:
    """Why ``loop`` may run for a long time, or None."""
    if isinstance(loop, ast.While):
        header = ast.unparse(loop.test)
        return f"while {header}" if _EPOCH_WORD.search(header) else None
    header = f"{ast.unparse(loop.target)} in {ast.unparse(loop.iter)}"
    count = _range_count(loop.iter)
    if count is not None and count >= LONG_LOOP_ITERATIONS:
        return f"for {header} ({count} iterations)"
    is_range = isinstance(loop.iter, ast.Call) and isinstance(loop.iter.func, ast.Name) and loop.iter.func.id == "range"
    if _EPOCH_WORD.search(header):
        if is_range and (count is None or count >= COUNTED_LOOP_ITERATIONS):
            return f"for {header}"
        if _has_nested_loop(loop) and re.search(r"epoch", header, re.IGNORECASE):
            return f"for {header} (nested loops)"
    return None


def long_loop_findings(code: StageCode) -> list[Finding]:
    """Long loops in a stage that never looks at should_stop() nor sends heartbeat()."""
    sources = code.python_files
    if any(s.sdk_calls("should_stop", "heartbeat", "get_stop_reason") for s in sources):
        return []
    out = []
    for source in sources:
        covered: set[int] = set()  # ids of nodes inside loops already reported
        for loop in _loops(source):
            if id(loop) in covered:
                continue
            why = _is_long(loop)
            if why is None:
                continue
            covered.update(id(n) for n in ast.walk(loop))
            out.append(_finding(
                "loop_without_stop_check", "warning",
                f"long loop `{why[:120]}` never checks should_stop() and the stage never calls heartbeat():"
                " the monitor cannot stop it early and a hang looks like progress.",
                "Call heartbeat() and `if should_stop(): break` once per epoch/step"
                " (from goldfish.io import heartbeat, should_stop).",
                stage=code.stage, file=source.path, line=loop.lineno, confidence="medium",
            ))
    return out[:5]


# --------------------------------------------------------------------------- config keys
def _config_names(source: SourceFile) -> set[str]:
    """Variables bound to get_config()'s result."""
    names: set[str] = set()
    for node in source.nodes():
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) \
                and source.sdk_function(node.value) == "get_config":
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def _is_config(source: SourceFile, node: ast.expr, names: set[str]) -> bool:
    if isinstance(node, ast.Name):
        return node.id in names
    return isinstance(node, ast.Call) and source.sdk_function(node) == "get_config"


def _config_path(source: SourceFile, node: ast.expr, names: set[str]) -> list[str] | None:
    """['a', 'b'] for cfg['a']['b']; None when ``node`` is not a literal-key read of the config."""
    if _is_config(source, node, names):
        return []
    if isinstance(node, ast.Subscript):
        key = _literal_str(node.slice)
        parent = _config_path(source, node.value, names)
        if key is not None and parent is not None:
            return [*parent, key]
    return None


def _guarded_keys(source: SourceFile) -> set[str]:
    """Keys the code tests with `"x" in ...` or assigns (cfg["x"] = ...): reading them is intended."""
    keys: set[str] = set()
    for node in source.nodes():
        if isinstance(node, ast.Compare) and any(isinstance(op, ast.In | ast.NotIn) for op in node.ops):
            key = _literal_str(node.left)
            if key:
                keys.add(key)
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store | ast.Del):
            key = _literal_str(node.slice)
            if key:
                keys.add(key)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr in ("setdefault", "update", "pop"):
            key = _literal_str(node.args[0]) if node.args else None
            if key:
                keys.add(key)
    return keys


def _in_key_error_try(source: SourceFile) -> set[int]:
    """Line numbers covered by a try whose handler catches KeyError (or everything)."""
    lines: set[int] = set()
    for node in source.nodes():
        if not isinstance(node, ast.Try):
            continue
        names = set()
        for handler in node.handlers:
            if handler.type is None:
                names.add("*")
            else:
                names.update(ast.unparse(handler.type).replace("(", " ").replace(")", " ").replace(",", " ").split())
        if names & {"*", "KeyError", "LookupError", "Exception", "BaseException"}:
            for stmt in node.body:
                lines.update(range(stmt.lineno, (stmt.end_lineno or stmt.lineno) + 1))
    return lines


def _lookup(config: Mapping[str, Any], path: list[str]) -> tuple[int, Mapping[str, Any] | None]:
    """How many leading keys of ``path`` exist, and the mapping where the first missing one was looked up."""
    current: Any = config
    for depth, key in enumerate(path):
        if not isinstance(current, Mapping):
            return depth, None  # not a mapping: cannot tell statically
        if key not in current:
            return depth, current
        current = current[key]
    return len(path), None


def config_key_findings(code: StageCode, config: Mapping[str, Any]) -> list[Finding]:
    """Keys read from get_config() that the merged stage config does not have."""
    main = code.main
    if main is None or main.tree is None:
        return []
    names = _config_names(main)
    guarded = _guarded_keys(main)
    protected = _in_key_error_try(main)
    known = {**{k: True for k in RUNTIME_CONFIG_KEYS}, **dict(config)}
    out: list[Finding] = []
    seen: set[str] = set()
    where = f"configs/{code.stage}.yaml (or the stage's defaults in pipeline.yaml), or pass it in config_override"
    for node in main.nodes():
        if not isinstance(node, ast.Subscript | ast.Call):
            continue
        path: list[str] | None = None
        default: bool | None = None
        if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
            path = _config_path(main, node, names)  # cfg["a"]["b"]: the inner cfg["a"] is visited too
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get":
            parent = _config_path(main, node.func.value, names)
            key = _literal_str(node.args[0]) if node.args else None
            if parent is not None and key is not None:
                path = [*parent, key]
                default = len(node.args) > 1 or any(kw.arg == "default" for kw in node.keywords)
        if not path:
            continue
        depth, where_missing = _lookup(known, path)
        if depth == len(path) or where_missing is None:
            continue
        missing = path[depth]
        dotted = ".".join(path[: depth + 1])
        if missing in guarded or dotted in seen or node.lineno in protected:
            continue
        siblings = [str(k) for k in where_missing]
        near = difflib.get_close_matches(missing, siblings, n=1, cutoff=0.6)
        is_get = default is not None and depth == len(path) - 1
        if is_get and default and not near:
            continue  # an optional key with a default: intended
        seen.add(dotted)
        if not is_get:
            severity, confidence = "error", "high"
            text = f"reads config key {dotted!r}, which the merged stage config does not have: KeyError at run time."
        elif default:
            severity, confidence = "warning", "low"
            text = f"reads optional config key {dotted!r} (with a default), which the merged config does not have."
        else:
            severity, confidence = "warning", "medium"
            text = f"reads config key {dotted!r} with .get(), which the merged config does not have: it is None."
        fix = f"Add {dotted} to {where}."
        if near:
            text, fix = _typo_fix(text, code, main, node.lineno, path[:depth], missing, near[0], siblings)
        out.append(_finding("config_key_missing", severity, text, fix,
                            stage=code.stage, file=main.path, line=node.lineno, confidence=confidence))
    return out


def _typo_fix(text: str, code: StageCode, main: Any, line: int, parents: list[str], missing: str, near: str,
              siblings: list[str]) -> tuple[str, str]:
    """Message and fix for a read that is one typo away from a key the config has: the side that is
    probably misspelled, and the fix on that side (said once)."""
    config_file = f"configs/{code.stage}.yaml"
    near_dotted = ".".join([*parents, near])
    side = misspelled_side(missing, near, siblings, main.tree)
    if side == "code":
        return (f"{text} Did you mean \"{near}\"? That is the config's key; the code's spelling looks misspelled.",
                f"Read {near!r} instead of {missing!r} at {main.path}:{line}.")
    if side == "config":
        return (f"{text} The config has {near_dotted!r}, which looks misspelled.",
                f"Rename {near_dotted!r} to {'.'.join([*parents, missing])!r} in {config_file} (or wherever the "
                "stage's defaults set it).")
    return (f"{text} The config has {near_dotted!r}: one of the two spellings is a typo.",
            f"Either read {near!r} at {main.path}:{line}, or rename {near_dotted!r} to "
            f"{'.'.join([*parents, missing])!r} in {config_file}.")
