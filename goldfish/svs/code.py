"""The code a stage will run: its module plus the workspace files it imports, parsed once.

Reviews look at the archived app dir (what will actually run), never at the live slot. Imports are
followed inside the app dir only (relative imports, ``modules.x``, top-level packages of the
workspace); third-party code is not read.
"""

from __future__ import annotations

import ast
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from goldfish.pipelines.model import Stage

MAX_FILES = 40
MAX_FILE_BYTES = 1_000_000

# Stage SDK modules and the functions they export (goldfish.io re-exports the metrics functions).
SDK_IO = ["ContractViolation", "finish_metrics", "flush_metrics", "get_config", "get_heartbeat_age", "get_input_path", "get_output_path", "get_stop_reason", "heartbeat", "list_checkpoints", "load_checkpoint", "load_input", "log_artifact", "log_metric", "log_metrics", "read_heartbeat", "runtime_log", "save_checkpoint", "save_output", "should_stop"]
SDK_METRICS = ["finish", "get_backend_errors", "get_logger", "had_backend_errors", "log_artifact", "log_artifacts", "log_metric", "log_metrics", "lost_counts"]
SDK_MODULES = {
    "goldfish.io": SDK_IO,
    "stage_sdk.io": SDK_IO,
    "goldfish.metrics": SDK_METRICS,
    "stage_sdk.metrics": SDK_METRICS,
}


@dataclass
class SourceFile:
    """One file of stage code. ``tree`` is None when it does not parse (see ``syntax_error``)."""

    path: str  # relative to the app dir, posix
    text: str
    tree: ast.Module | None = None
    syntax_error: SyntaxError | None = None
    aliases: dict[str, str] = field(default_factory=dict)
    _nodes: list[ast.AST] | None = field(default=None, repr=False)
    _calls: list[ast.Call] | None = field(default=None, repr=False)

    def nodes(self) -> list[ast.AST]:
        """Every node of the tree (one walk, cached: the rules look at it many times)."""
        if self._nodes is None:
            self._nodes = list(ast.walk(self.tree)) if self.tree is not None else []
        return self._nodes

    @property
    def is_python(self) -> bool:
        return self.path.endswith(".py")

    def qualified(self, node: ast.expr) -> str | None:
        """Dotted name of ``node`` with import aliases resolved (``np.load`` → ``numpy.load``)."""
        parts: list[str] = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name):
            return None
        base = self.aliases.get(node.id, node.id)
        return ".".join([base, *reversed(parts)])

    def written(self, node: ast.expr) -> str | None:
        """Dotted name of ``node`` as written (no alias resolution)."""
        parts: list[str] = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name):
            return None
        return ".".join([node.id, *reversed(parts)])

    def sdk_function(self, call: ast.Call) -> str | None:
        """The stage SDK function ``call`` calls (``load_input``, ``log_metric``, ...), or None."""
        name = self.qualified(call.func)
        if name is None:
            return None
        module, _, func = name.rpartition(".")
        if module in SDK_MODULES and func in SDK_MODULES[module]:
            return func
        return None

    def calls(self) -> list[ast.Call]:
        if self._calls is None:
            self._calls = [node for node in self.nodes() if isinstance(node, ast.Call)]
        return self._calls

    def sdk_calls(self, *names: str) -> list[tuple[str, ast.Call]]:
        out: list[tuple[str, ast.Call]] = []
        for call in self.calls():
            func = self.sdk_function(call)
            if func is not None and (not names or func in names):
                out.append((func, call))
        return out


@dataclass
class StageCode:
    """Every file of one stage's code that a review reads."""

    stage: str
    runtime: str
    module: str
    files: list[SourceFile]
    missing_module: bool = False
    truncated: bool = False

    @property
    def main(self) -> SourceFile | None:
        return next((f for f in self.files if f.path == self.module), None)

    @property
    def python_files(self) -> list[SourceFile]:
        return [f for f in self.files if f.is_python and f.tree is not None]


def import_aliases(tree: ast.Module) -> dict[str, str]:
    """Local name → qualified dotted name for every import in the file (function-level ones too)."""
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    aliases[alias.asname] = alias.name
                else:
                    top = alias.name.split(".")[0]
                    aliases.setdefault(top, top)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                if alias.name == "*":
                    for func in SDK_MODULES.get(node.module, ()):
                        aliases[func] = f"{node.module}.{func}"
                    continue
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    # "from goldfish import io" makes io.load_input resolve to goldfish.io.load_input already.
    return aliases


def parse_file(path: str, text: str) -> SourceFile:
    source = SourceFile(path=path, text=text)
    if not source.is_python:
        return source
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SyntaxWarnings (invalid escapes) are not review findings
        try:
            # compile() also catches what the parser accepts but the compiler refuses
            # ('return' outside a function, duplicate arguments, ...).
            compile(text, path, "exec", dont_inherit=True)
            source.tree = ast.parse(text, filename=path)
        except SyntaxError as exc:
            source.syntax_error = exc
        except ValueError as exc:  # NUL bytes
            source.syntax_error = SyntaxError(str(exc), (path, 1, 1, ""))
    if source.tree is not None:
        source.aliases = import_aliases(source.tree)
    return source


def _read(path: Path) -> str | None:
    try:
        data = path.read_bytes()[:MAX_FILE_BYTES]
    except OSError:
        return None
    return data.decode("utf-8", errors="replace")


def _candidates(app: Path, current: Path, node: ast.ImportFrom | ast.Import) -> list[Path]:
    """Workspace files an import may load (existing ones only)."""
    modules: list[str] = []
    bases: list[Path] = []
    if isinstance(node, ast.Import):
        modules = [alias.name for alias in node.names]
        bases = [app, app / "modules"]
    elif node.level:
        base = current.parent
        for _ in range(node.level - 1):
            base = base.parent
        bases = [base]
        prefix = node.module or ""
        modules = [prefix] if prefix else []
        modules += [f"{prefix}.{a.name}" if prefix else a.name for a in node.names if a.name != "*"]
    else:
        bases = [app, app / "modules"]
        prefix = node.module or ""
        modules = [prefix, *(f"{prefix}.{a.name}" for a in node.names if a.name != "*")]
    found: list[Path] = []
    for base in bases:
        for module in modules:
            rel = Path(*module.split("."))
            for candidate in (base / rel.with_suffix(".py"), base / rel / "__init__.py"):
                try:
                    resolved = candidate.resolve()
                except OSError:
                    continue
                if resolved.is_file() and (resolved == app or app in resolved.parents):
                    found.append(resolved)
    return found


def collect_stage_code(app_dir: Path, stage: Stage, *, max_files: int = MAX_FILES) -> StageCode:
    """The stage module and the workspace files it imports (transitively, at most ``max_files``)."""
    app = Path(app_dir).resolve()
    module = stage.module_path
    code = StageCode(stage=stage.name, runtime=stage.runtime, module=module, files=[])
    start = app / module
    if not start.is_file():
        code.missing_module = True
        return code
    queue = [start.resolve()]
    seen: set[Path] = set()
    while queue:
        path = queue.pop(0)
        if path in seen:
            continue
        if len(code.files) >= max_files:
            code.truncated = True
            break
        seen.add(path)
        text = _read(path)
        if text is None:
            continue
        source = parse_file(path.relative_to(app).as_posix(), text)
        code.files.append(source)
        if source.tree is None:
            continue
        for node in ast.walk(source.tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                queue.extend(p for p in _candidates(app, path, node) if p not in seen)
    return code
