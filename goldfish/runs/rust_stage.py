"""Compile a Rust stage (``modules/<stage>.rs``) into its entrypoint binary, offline.

The stage source becomes ``src/main.rs`` of a scratch crate kept under ``target_dir`` (so Cargo.lock
and the compiled dependencies are reused and a rebuild only recompiles the stage). The crate depends on
``goldfish-rust`` by path and resolves every other crate from the directory of Debian-packaged crates
(``/usr/share/cargo/registry``, or ``$GOLDFISH_CARGO_REGISTRY``), so no network is needed.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import tomllib
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from filelock import FileLock

from goldfish import names
from goldfish.errors import ConfigError, GoldfishError, InvalidInput, NotFound
from goldfish.fsutil import inside

DEFAULT_REGISTRY = Path("/usr/share/cargo/registry")
SETUP_SCRIPT = "scripts/setup-rust.sh"
SETUP_FIX = f"Run {SETUP_SCRIPT} (as root) to install cargo and the Debian-packaged crates, then retry."
# Every crate goldfish-rust compiles against (its dependencies and theirs).
REQUIRED_CRATES = (
    "adler",
    "autocfg",
    "byteorder",
    "cfg-if",
    "crc32fast",
    "flate2",
    "hashbrown",
    "indexmap",
    "itoa",
    "miniz_oxide",
    "proc-macro2",
    "quote",
    "ryu",
    "serde",
    "serde_json",
    "syn",
    "thiserror",
    "thiserror-impl",
    "unicode-ident",
    "zip",
)
_SDK_NAMES = ("goldfish-rust", "goldfish_rust")
_NOISE = re.compile(r"^\s*(Compiling|Finished|Blocking|Locking|Adding|Updating|Fresh|Running|Checking)\b")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_MAX_ERROR_LINES = 80
_MAX_ERROR_CHARS = 6000


class RustToolchainMissing(ConfigError):
    """cargo or the offline crate registry is not installed."""

    kind = "rust_toolchain"


class RustBuildFailed(GoldfishError):
    """cargo ran and the stage did not compile (or timed out)."""

    kind = "rust_build"


def cargo_registry() -> Path:
    """Directory of vendored crates that replaces crates.io."""
    return Path(os.environ.get("GOLDFISH_CARGO_REGISTRY") or DEFAULT_REGISTRY)


def find_cargo() -> str | None:
    return os.environ.get("GOLDFISH_CARGO") or shutil.which("cargo")


def cargo_env(cargo: str) -> dict[str, str]:
    """Environment for cargo. A rustup proxy picks its toolchain from ``$HOME/.rustup``; when the caller
    runs with another HOME (stages, tests), point RUSTUP_HOME back at the installation cargo came from."""
    env = dict(os.environ)
    env["CARGO_TERM_COLOR"] = "never"
    cargo_path = Path(cargo)
    if "RUSTUP_HOME" not in env and (cargo_path.is_symlink() or (cargo_path.parent / "rustup").exists()):
        candidate = cargo_path.parent.parent.parent / ".rustup"
        if candidate.is_dir():
            env["RUSTUP_HOME"] = str(candidate)
    return env


# ---- TOML writing (tomllib only reads) ------------------------------------------------------------


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _toml_str(key)


def _toml_str(text: str) -> str:
    # JSON string escapes are valid TOML basic-string escapes; TOML also forbids a raw DEL.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _toml_str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
    if hasattr(value, "isoformat"):  # tomllib dates and times
        return str(value.isoformat())
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def dump_toml(doc: dict[str, Any]) -> str:
    """Serialise a tomllib-shaped document: root values first, then one ``[table]`` per dict."""
    lines = [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in doc.items() if not isinstance(v, dict)]
    for key, table in doc.items():
        if isinstance(table, dict):
            if lines:
                lines.append("")
            lines.append(f"[{_toml_key(key)}]")
            lines.extend(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in table.items())
    return "\n".join(lines) + "\n"


# ---- manifest ----------------------------------------------------------------------------------------


def _bin_name(stage: str) -> str:
    return f"goldfish-stage-{stage}"


def _absolute_path_deps(deps: Any, base: Path) -> None:
    if not isinstance(deps, dict):
        return
    for spec in deps.values():
        if (
            isinstance(spec, dict)
            and isinstance(spec.get("path"), str)
            and not Path(spec["path"]).is_absolute()
        ):
            spec["path"] = str((base / spec["path"]).resolve())


def stage_manifest(app_dir: Path, stage: str, crate_path: Path) -> str:
    """Cargo.toml for the stage crate: ``modules/<stage>.Cargo.toml`` adapted, or a generated one.

    The binary target, the goldfish-rust path and an empty ``[workspace]`` are always ours; relative
    path dependencies in the user's manifest are taken relative to ``modules/``.
    """
    user = app_dir / "modules" / f"{stage}.Cargo.toml"
    doc: dict[str, Any] = {}
    if user.is_file():
        try:
            doc = tomllib.loads(user.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise InvalidInput(
                f"modules/{stage}.Cargo.toml is not valid TOML: {exc}.",
                fix="Fix the manifest, or delete it to use the generated one (goldfish-rust only).",
            ) from exc
        for key in ("package", "dependencies", "dev-dependencies", "build-dependencies", "target"):
            if key in doc and not isinstance(doc[key], dict):
                raise InvalidInput(
                    f"modules/{stage}.Cargo.toml: [{key}] must be a table.",
                    fix='Write it as a TOML table, e.g. [dependencies] then name = "1".',
                )
    package = dict(doc.get("package", {}))
    package["name"] = _bin_name(stage)
    package.setdefault("version", "0.1.0")
    package.setdefault("edition", "2021")
    package["publish"] = False
    package.pop("build", None)  # only the single source file is copied; a build script cannot exist
    for key in ("lib", "bin", "example", "test", "bench", "workspace", "package"):
        doc.pop(key, None)
    base = user.parent
    deps = dict(doc.pop("dependencies", {}))
    for sdk in _SDK_NAMES:
        deps.pop(sdk, None)
    _absolute_path_deps(deps, base)
    for key in ("dev-dependencies", "build-dependencies"):
        _absolute_path_deps(doc.get(key), base)
    for target in doc.get("target", {}).values():
        if isinstance(target, dict):
            for key in ("dependencies", "dev-dependencies", "build-dependencies"):
                _absolute_path_deps(target.get(key), base)
    out: dict[str, Any] = {
        "package": package,
        "bin": [{"name": _bin_name(stage), "path": "src/main.rs"}],
        "dependencies": {"goldfish-rust": {"path": str(crate_path)}, **deps},
    }
    out.update(doc)
    out["workspace"] = {}
    return dump_toml(out)


def cargo_config(registry: Path) -> str:
    return dump_toml(
        {
            "source": {
                "crates-io": {"replace-with": "debian-packages"},
                "debian-packages": {"directory": str(registry)},
            },
            "net": {"offline": True},
        }
    )


# ---- build -------------------------------------------------------------------------------------------


def _entrypoint(stage: str, entrypoint: str | None) -> PurePosixPath:
    rel = entrypoint if entrypoint is not None else f"entrypoints/{stage}"
    path = PurePosixPath(rel) if isinstance(rel, str) else PurePosixPath()
    if (
        not isinstance(rel, str)
        or "\\" in rel
        or "\0" in rel
        or path.is_absolute()
        or ".." in path.parts
        or len(path.parts) < 2
        or path.parts[0] != "entrypoints"
    ):
        raise InvalidInput(
            f"Invalid Rust entrypoint {rel!r} for stage '{stage}'.",
            fix=f"Use a relative path under entrypoints/ without '..', e.g. entrypoints/{stage}, or omit it.",
        )
    return path


def _write_if_changed(path: Path, data: bytes) -> None:
    # cargo compares mtimes: rewriting identical content would force a rebuild.
    if path.is_file() and path.read_bytes() == data:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def trim_compiler_output(text: str, stage: str) -> str:
    """The compiler's diagnostics without progress lines, pointing at ``modules/<stage>.rs``."""
    lines = [ln for ln in text.splitlines() if not _NOISE.match(ln)]
    while lines and not lines[0].strip():
        lines.pop(0)
    if len(lines) > _MAX_ERROR_LINES:
        lines = [*lines[:_MAX_ERROR_LINES], f"... ({len(lines) - _MAX_ERROR_LINES} more lines)"]
    out = "\n".join(lines).replace("src/main.rs", f"modules/{stage}.rs").strip()
    if len(out) > _MAX_ERROR_CHARS:
        out = out[:_MAX_ERROR_CHARS] + "\n... (truncated)"
    return out


def _run_cargo(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float) -> tuple[int, str]:
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        # cargo's rustc children share its session; stop them all.
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        return -1, (out or "") + f"\ncargo build timed out after {timeout:.0f} s"
    return proc.returncode, out or ""


def _install_binary(binary: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    os.close(fd)
    try:
        shutil.copyfile(binary, tmp)
        os.chmod(tmp, 0o755)
        os.replace(tmp, dest)  # a running old binary keeps its inode
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def build_rust_stage(
    app_dir: Path,
    stage: str,
    *,
    entrypoint: str | None,
    crate_path: Path,
    target_dir: Path,
    log: Callable[[str], None] | None = None,
    timeout: float = 1800.0,
) -> Path:
    """Compile ``app_dir/modules/<stage>.rs`` and install the binary at ``app_dir/<entrypoint>``
    (default ``entrypoints/<stage>``). Returns the installed binary's path.

    Keep ``target_dir`` stable between builds: compiled dependencies and the scratch crate live there,
    so only the stage itself recompiles. Builds sharing a target dir are serialised by a file lock.
    """
    stage = names.stage_name(stage)
    app_dir = Path(app_dir).resolve()
    source = app_dir / "modules" / f"{stage}.rs"
    if not source.is_file():
        raise NotFound(
            f"Rust stage '{stage}' has no source file modules/{stage}.rs in {app_dir}.",
            fix=f"Create modules/{stage}.rs with a fn main() that uses goldfish_rust, or set runtime: python.",
        )
    rel = _entrypoint(stage, entrypoint)
    dest = app_dir / rel
    inside(app_dir, dest, what="Rust entrypoint")
    crate_path = Path(crate_path).resolve()
    if not (crate_path / "Cargo.toml").is_file():
        raise ConfigError(
            f"The goldfish-rust crate was not found at {crate_path}.",
            fix="Pass the goldfish-rust directory of the Goldfish installation as crate_path.",
        )
    manifest = stage_manifest(app_dir, stage, crate_path)
    cargo = find_cargo()
    if cargo is None:
        raise RustToolchainMissing(
            f"Cannot build Rust stage '{stage}': cargo is not installed (not on PATH).", fix=SETUP_FIX
        )
    registry = cargo_registry()
    if not registry.is_dir():
        raise RustToolchainMissing(
            f"Cannot build Rust stage '{stage}': the offline crate registry {registry} does not exist.",
            fix=SETUP_FIX + " Or set GOLDFISH_CARGO_REGISTRY to a directory of vendored crates.",
        )
    emit = log or (lambda _msg: None)
    target_dir = Path(target_dir).resolve()
    target_dir.mkdir(parents=True, exist_ok=True)
    crate_dir = target_dir / "stage-crates" / stage
    started = time.monotonic()
    with FileLock(str(target_dir / ".goldfish-build.lock"), timeout=timeout):
        _write_if_changed(crate_dir / "Cargo.toml", manifest.encode())
        _write_if_changed(crate_dir / "src" / "main.rs", source.read_bytes())
        # cargo looks for config from its working directory upward, so the stage crate carries its own.
        _write_if_changed(crate_dir / ".cargo" / "config.toml", cargo_config(registry).encode())
        emit(f"compiling Rust stage '{stage}' (cargo build --release --offline, crates from {registry})")
        cmd = [
            cargo,
            "build",
            "--release",
            "--offline",
            "--manifest-path",
            str(crate_dir / "Cargo.toml"),
            "--target-dir",
            str(target_dir),
        ]
        code, output = _run_cargo(cmd, crate_dir, cargo_env(cargo), timeout)
        lock = crate_dir / "Cargo.lock"
        if code != 0 and "failed to parse lock file" in output and lock.exists():
            # Written by another cargo version sharing this target dir; it is derived data, so re-resolve.
            lock.unlink()
            code, output = _run_cargo(cmd, crate_dir, cargo_env(cargo), timeout)
        (crate_dir / "build.log").write_text(output, encoding="utf-8")
        if code != 0:
            raise RustBuildFailed(
                f"Rust stage '{stage}' failed to compile:\n{trim_compiler_output(output, stage)}",
                fix=f"Fix the errors in modules/{stage}.rs (full cargo log: {crate_dir / 'build.log'}).",
                details={"exit_code": code, "log": str(crate_dir / "build.log")},
            )
        binary = target_dir / "release" / _bin_name(stage)
        if not binary.is_file():
            raise RustBuildFailed(
                f"cargo reported success but {binary} does not exist.",
                fix=f"Check {crate_dir / 'build.log'}; remove {target_dir} to force a clean build.",
            )
        _install_binary(binary, dest)
    emit(f"built Rust stage '{stage}' -> {rel} in {time.monotonic() - started:.1f} s")
    return dest


# ---- doctor --------------------------------------------------------------------------------------


def _version(cmd: list[str], env: dict[str, str]) -> str | None:
    try:
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.strip() or None


def _crate_versions(registry: Path) -> dict[str, str | None]:
    found: dict[str, str | None] = {name: None for name in REQUIRED_CRATES}
    if registry.is_dir():
        for entry in registry.iterdir():
            name, sep, version = entry.name.rpartition("-")
            if sep and name in found and version[:1].isdigit() and (entry / "Cargo.toml").is_file():
                found[name] = version
    return found


def rust_toolchain_status() -> dict[str, Any]:
    """What ``goldfish doctor`` reports about Rust stages: cargo, rustc and the offline crates."""
    cargo = find_cargo()
    env = cargo_env(cargo) if cargo else dict(os.environ)
    registry = cargo_registry()
    crates = _crate_versions(registry)
    missing = sorted(name for name, version in crates.items() if version is None)
    cargo_version = _version([cargo, "--version"], env) if cargo else None
    rustc = (
        shutil.which("rustc", path=str(Path(cargo).parent) + os.pathsep + env.get("PATH", ""))
        if cargo
        else None
    )
    ok = cargo_version is not None and not missing
    return {
        "ok": ok,
        "cargo": cargo,
        "cargo_version": cargo_version,
        "rustc_version": _version([rustc, "--version"], env) if rustc else None,
        "registry": str(registry),
        "registry_present": registry.is_dir(),
        "crates": crates,
        "missing_crates": missing,
        "fix": None if ok else SETUP_FIX,
    }
