"""The package layout's import rules, read from the AST of every module under goldfish/.

- ``workspaces``, ``pipelines`` and ``sources`` never import ``runs`` or ``records``;
- nothing in ``goldfish`` imports ``mcp_server`` or ``tui``;
- a backend imports only ``runs/backends`` and the cross-cutting helpers at the top of ``goldfish``;
- every service package exports its public face (``__all__``), and no module grows past 600 lines.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PKG = REPO / "goldfish"
LOWER = ("workspaces", "pipelines", "sources")
UPPER = ("goldfish.runs", "goldfish.records")
HELPERS = ("errors", "names", "fsutil", "timefmt", "fielderrors", "issues", "yamlio", "procs")
SERVICES = ("workspaces", "git", "pipelines", "runs", "records", "sources", "journal")


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> list[tuple[int, str]]:
    """Every module ``path`` imports (absolute names; relative imports resolved), lazy ones included."""
    tree = ast.parse(path.read_text(), filename=str(path))
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package[: len(package) - node.level + 1], *([base] if base else [])])
            found.append((node.lineno, base))
            # ``from goldfish import runs`` imports the subpackage itself.
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


def is_under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def modules() -> list[Path]:
    return sorted(PKG.rglob("*.py"))


def test_lower_services_never_import_runs_or_records() -> None:
    bad = [
        f"{path.relative_to(REPO)}:{line} imports {name}"
        for path in modules() if path.relative_to(PKG).parts[0] in LOWER
        for line, name in imports_of(path) if any(is_under(name, up) for up in UPPER)
    ]
    assert not bad, "\n".join(bad)


def test_goldfish_never_imports_the_interfaces() -> None:
    bad = [
        f"{path.relative_to(REPO)}:{line} imports {name}"
        for path in modules()
        for line, name in imports_of(path) if is_under(name, "mcp_server") or is_under(name, "tui")
    ]
    assert not bad, "\n".join(bad)


def test_backends_import_only_backends_and_helpers() -> None:
    allowed = ("goldfish.runs.backends", *(f"goldfish.{h}" for h in HELPERS))
    bad = [
        f"{path.relative_to(REPO)}:{line} imports {name}"
        for path in sorted((PKG / "runs" / "backends").rglob("*.py"))
        for line, name in imports_of(path)
        if is_under(name, "goldfish") and name != "goldfish" and not any(is_under(name, a) for a in allowed)
    ]
    assert not bad, "\n".join(bad)


def test_the_checker_sees_lazy_and_relative_imports(tmp_path: Path) -> None:
    # The rule must not be fooled by an import inside a function or a relative one.
    probe = PKG / "workspaces" / "_layout_probe.py"
    probe.write_text("def f():\n    from ..records import service\n    import goldfish.runs.state\n")
    try:
        names = [name for _, name in imports_of(probe)]
    finally:
        probe.unlink()
    assert "goldfish.records" in names and "goldfish.records.service" in names and "goldfish.runs.state" in names


@pytest.mark.parametrize("package", SERVICES)
def test_each_service_package_exports_its_face(package: str) -> None:
    mod = importlib.import_module(f"goldfish.{package}")
    assert mod.__all__, f"goldfish.{package} has an empty __all__"
    for name in mod.__all__:
        assert getattr(mod, name) is not None


def test_modules_stay_small_and_the_top_stays_short() -> None:
    long = [f"{p.relative_to(REPO)}: {n} lines" for p in modules() if (n := len(p.read_text().splitlines())) > 600]
    assert not long, "split these by concern:\n" + "\n".join(long)
    top = [p.name for p in PKG.glob("*.py")]
    assert len(top) <= 18, f"{len(top)} modules at the top of goldfish/: {sorted(top)}"
