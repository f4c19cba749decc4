"""Read goldfish.yaml into a GoldfishConfig, reporting every problem with its file, key path and line."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from goldfish.config._base import RULE_ERROR
from goldfish.config._render import section_model
from goldfish.config.model import GoldfishConfig
from goldfish.errors import ConfigError
from goldfish.names import did_you_mean

CONFIG_FILENAME = "goldfish.yaml"
DOCS_HINT = "docs/configuration.md lists every key"

Key = tuple[str | int, ...]

# Keys that exist elsewhere or were dropped, with where they went. Checked before did-you-mean.
MOVED: dict[Key, str] = {
    ("defaults", "backend"): "the execution backend is chosen by jobs.backend: use jobs.backend",
    ("jobs", "gce"): "move it to the top-level gce section",
    ("jobs", "infra_path"): "the legacy job launcher is gone: remove it",
    ("jobs", "experiments_dir"): "the legacy job launcher is gone: remove it",
    ("jobs", "container_memory"): "use docker.memory_limit_mb (docker backend) or local.memory_limit_mb",
    ("jobs", "container_cpus"): "use docker.cpus (docker backend) or local.cpu_limit",
    ("jobs", "container_pids"): "use docker.pids_limit",
    ("gce", "gcs_bucket"): "use gcs.bucket",
    ("storage", "gcs"): "the bucket lives in the top-level gcs section: use gcs.bucket",
    ("storage", "s3"): "S3 storage is not supported; storage.backend supports 'local' and 'gcs'",
    ("storage", "azure"): "Azure storage is not supported; storage.backend supports 'local' and 'gcs'",
    (
        "local",
        "storage",
    ): "the local backend needs no storage emulation: remove it (objects go to storage.local.root)",
    ("local", "compute"): "the local backend runs stages as subprocesses: remove it (see local.* keys)",
    ("local", "signaling"): "the local backend needs no metadata emulation: remove it",
    ("pre_run_review", "model"): "use svs.agent_model",
    ("svs", "pre_run_review"): "use the top-level pre_run_review section",
    ("docker", "fa3_wheel_gcs"): "use docker.cloud_build.fa3_wheel_gcs",
    ("extra_packages",): "use docker.extra_packages (with keys cpu, gpu or base)",
}

_EXAMPLES = {
    "project_name": "project_name: my-project",
    "dev_repo_path": "dev_repo_path: my-project-dev",
    "bucket": "bucket: my-bucket",
}

_TYPE_WORDS = {
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "dict_type": "a mapping of keys",
    "model_type": "a mapping of keys (an indented section)",
    "model_attributes_type": "a mapping of keys (an indented section)",
}

_BOUNDS = {
    "greater_than_equal": (">=", "ge"),
    "greater_than": (">", "gt"),
    "less_than_equal": ("<=", "le"),
    "less_than": ("<", "lt"),
}


@dataclass(frozen=True)
class Problem:
    path: str
    line: int | None
    message: str

    def render(self, source: str) -> str:
        where = f"{source}:{self.line}" if self.line is not None else source
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "line": self.line, "message": self.message}


def load_config(path: Path) -> GoldfishConfig:
    """Load goldfish.yaml (``path`` may also be the project directory)."""
    path = Path(path)
    if path.is_dir():
        path = path / CONFIG_FILENAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        message = f"No {CONFIG_FILENAME} at {path}."
        raise ConfigError(
            message,
            fix="Run `goldfish init` in the project directory, or point at the project that has one.",
            details={"file": str(path), "errors": [{"path": "", "line": None, "message": message}]},
        ) from None
    except UnicodeDecodeError as exc:
        raise _single(
            str(path),
            None,
            f"is not UTF-8 text ({exc.reason} at byte {exc.start}).",
            "Save the file as UTF-8.",
        ) from None
    except OSError as exc:
        raise _single(
            str(path), None, f"cannot be read ({exc.strerror}).", "Check the file's permissions."
        ) from None
    return parse_config(text, source=str(path))


def parse_config(text: str, source: str = CONFIG_FILENAME) -> GoldfishConfig:
    """Parse goldfish.yaml text; every problem found is reported in one ConfigError."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise _single(
                source,
                None,
                "is empty.",
                "Write at least `project_name: ...` and `dev_repo_path: ...`, or run `goldfish init`.",
            )
        if not isinstance(node, yaml.MappingNode):
            kind = "a list" if isinstance(node, yaml.SequenceNode) else "a single value"
            raise _single(
                source,
                node.start_mark.line + 1,
                f"the top level must be a mapping of keys (project_name: ..., slots: ...), got {kind}.",
                "Start the file with `project_name: my-project` on its own line.",
            )
        problems = _structure_problems(node, ())
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(source, exc) from None
    except yaml.YAMLError as exc:
        raise _single(source, None, f"is not valid YAML: {exc}", "Fix the YAML syntax.") from None
    finally:
        loader.dispose()

    lines: dict[Key, int] = {}
    _index_lines(node, (), lines)
    try:
        config = GoldfishConfig.model_validate(_string_keys(data))
    except ValidationError as exc:
        problems += [_problem(err, lines) for err in exc.errors()]
        config = None
    if problems or config is None:
        raise _report(source, problems)
    return config


# YAML --------------------------------------------------------------------------------------------


def _syntax_error(source: str, exc: yaml.MarkedYAMLError) -> ConfigError:
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark else None
    where = f"{source}:{line}:{mark.column + 1}" if mark else source
    what = " ".join(part for part in (exc.context, exc.problem) if part)
    hint = "Check the indentation and that each `key: value` has a space after the colon."
    if "\t" in what or "'\\t'" in what:
        hint = "Indent with spaces, not tabs."
    message = f"{where}: YAML syntax error: {what}."
    return ConfigError(
        message,
        fix=f"{hint} (line {line})" if line else hint,
        details={
            "file": source,
            "errors": [{"path": "", "line": line, "message": f"YAML syntax error: {what}"}],
        },
    )


def _structure_problems(node: yaml.Node, path: Key) -> list[Problem]:
    """Duplicate and non-string keys: YAML would silently keep the last one or make a bool of `yes`."""
    problems: list[Problem] = []
    if isinstance(node, yaml.MappingNode):
        first_line: dict[str, int] = {}
        for key, value in node.value:
            line = key.start_mark.line + 1
            if key.tag == "tag:yaml.org,2002:merge":
                continue
            if not isinstance(key, yaml.ScalarNode) or key.tag != "tag:yaml.org,2002:str":
                shown = key.value if isinstance(key, yaml.ScalarNode) else "a list or mapping"
                problems.append(
                    Problem(
                        _dotted((*path, str(shown))),
                        line,
                        f"key {shown!r} is not a string (YAML reads it as "
                        f'{key.tag.rsplit(":", 1)[-1]}). Fix: quote it, e.g. "{shown}":',
                    )
                )
                continue
            if key.value in first_line:
                problems.append(
                    Problem(
                        _dotted((*path, key.value)),
                        line,
                        f"key appears twice (first on line {first_line[key.value]}). Fix: keep one of them.",
                    )
                )
            else:
                first_line[key.value] = line
            problems += _structure_problems(value, (*path, key.value))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            problems += _structure_problems(item, (*path, index))
    return problems


def _index_lines(node: yaml.Node, path: Key, lines: dict[Key, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                lines[(*path, key.value)] = key.start_mark.line + 1
                _index_lines(value, (*path, key.value), lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*path, index)] = item.start_mark.line + 1
            _index_lines(item, (*path, index), lines)


def _string_keys(data: Any) -> Any:
    """Drop non-string keys (already reported) so pydantic sees only what it can name."""
    if isinstance(data, dict):
        return {k: _string_keys(v) for k, v in data.items() if isinstance(k, str)}
    return data


# Pydantic errors -> problems ---------------------------------------------------------------------


def _problem(err: ErrorDetails, lines: dict[Key, int]) -> Problem:
    loc: list[str | int] = []
    dict_key = False
    parts = list(err["loc"])
    for index, part in enumerate(parts):
        # pydantic marks a dict key's error with "[key]"; an unknown key literally named "[key]" is a key.
        if part == "[key]" and not (err["type"] == "extra_forbidden" and index == len(parts) - 1):
            dict_key = True
        else:
            loc.append(part)
    ctx = err.get("ctx") or {}
    if err["type"] == RULE_ERROR:
        loc += list(ctx.get("goldfish_at", ()))
    key = tuple(loc)
    return Problem(_dotted(key), _line(key, lines), _message(err, key, dict_key))


def _message(err: ErrorDetails, key: Key, dict_key: bool) -> str:
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    if kind == "extra_forbidden":
        return _unknown_key(key)
    if kind == "missing":
        name = str(key[-1]) if key else ""
        return f"required key is missing. Fix: add `{_EXAMPLES.get(name, name + ': ...')}`."
    if kind in (RULE_ERROR, "value_error"):
        return str(err["msg"]).removeprefix("Value error, ")
    got = f", got {_show(value)}"
    if kind in _TYPE_WORDS:
        fix = ""
        if kind == "string_type" and isinstance(value, bool | int | float):
            fix = f' Fix: quote it: "{_show(value)}".'
        return f"expected {_TYPE_WORDS[kind]}{got}.{fix}"
    if kind == "literal_error":
        choices = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        what = "key" if dict_key else "value"
        hint = did_you_mean(value, choices) if isinstance(value, str) else ""
        return f"expected a {what} among {', '.join(map(repr, choices))}{got}.{hint}"
    if kind in _BOUNDS:
        symbol, name = _BOUNDS[kind]
        return f"must be {symbol} {ctx.get(name)}{got}."
    if kind == "string_too_short":
        return f"must have at least {ctx.get('min_length')} characters{got}."
    return f"{err['msg']}{got}."


def _unknown_key(key: Key) -> str:
    moved = MOVED.get(key)
    if moved:
        return f"unknown key. Fix: {moved}."
    name = str(key[-1])
    fields = _fields_at(key[:-1])
    if fields is None:
        return f"unknown key. {DOCS_HINT}."
    by_alias = {f.alias: n for n, f in fields.items() if f.alias}
    if name in fields and fields[name].alias:
        return f"{name} and its alias {fields[name].alias} are both set. Fix: keep one of them."
    if name in by_alias:
        return f"{name} is an alias of {by_alias[name]}, which is also set. Fix: keep one of them."
    hint = did_you_mean(name, list(fields))
    if hint:
        return f"unknown key.{hint}"
    return f"unknown key. Valid keys here: {', '.join(fields)}."


def _fields_at(path: Key) -> dict[str, Any] | None:
    """The fields of the model at ``path`` (None when the path leaves the models, e.g. a free dict)."""
    model: type[BaseModel] = GoldfishConfig
    for part in path:
        field = next((f for n, f in model.model_fields.items() if part in (n, f.alias)), None)
        sub = section_model(field.annotation) if field is not None else None
        if sub is None:
            return None
        model = sub
    return dict(model.model_fields)


def _line(key: Key, lines: dict[Key, int]) -> int | None:
    for end in range(len(key), 0, -1):
        if key[:end] in lines:
            return lines[key[:end]]
    return None


def _dotted(key: Key) -> str:
    out = ""
    for part in key:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _single(source: str, line: int | None, message: str, fix: str) -> ConfigError:
    where = f"{source}:{line}:" if line is not None else source
    return ConfigError(
        f"{where} {message}",
        fix=fix,
        details={"file": source, "errors": [{"path": "", "line": line, "message": message}]},
    )


def _report(source: str, problems: list[Problem]) -> ConfigError:
    problems = sorted(problems, key=lambda p: (p.line is None, p.line or 0, p.path))
    fix = f"Correct each line listed above ({DOCS_HINT})."
    if len(problems) == 1:
        message, _, own_fix = problems[0].render(source).partition(" Fix: ")
        fix = own_fix or f"Edit that line of {source} ({DOCS_HINT})."
    else:
        body = "\n".join(f"  {p.render(source)}" for p in problems)
        message = f"{source} has {len(problems)} problems:\n{body}"
    return ConfigError(
        message,
        fix=fix,
        details={"file": source, "errors": [p.as_dict() for p in problems]},
    )
