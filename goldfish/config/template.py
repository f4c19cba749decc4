"""The commented goldfish.yaml that `goldfish init` writes: every local setting at its default."""

from __future__ import annotations

from pydantic import BaseModel

from goldfish.config._render import (
    default_of,
    fields,
    first_sentence,
    is_required,
    section_model,
    yaml_inline,
)
from goldfish.config.model import GoldfishConfig

# Written as commented-out examples: a fresh project runs with no cloud account.
_CLOUD_EXAMPLES = {
    "gcs": """\
# Google Cloud Storage (optional): keep outputs, checkpoints, backups and sources in a bucket.
# gcs:
#   bucket: my-goldfish-bucket
""",
    "gce": """\
# Google Compute Engine (optional): set jobs.backend: gce to run stages on VMs.
# gce:
#   project_id: my-gcp-project
#   zones: [us-central1-a, us-central1-b]
#   warm_pool:
#     enabled: false
#     max_instances: 2
""",
}

_SHOWN_COMMENTED = {"anthropic_api_key"}

_HEADER = """\
# goldfish.yaml: configuration of the Goldfish project {name}.
# Every key is described in docs/configuration.md (or run: python -m goldfish.config docs).
# Unknown keys are errors; a key left out takes its default.
"""


def default_config_yaml(project_name: str, dev_repo_path: str) -> str:
    """The goldfish.yaml for a new project (local backend, no cloud), checked to load back."""
    from goldfish.config.loader import parse_config

    values = {"project_name": project_name, "dev_repo_path": dev_repo_path}
    out = [_HEADER.format(name=yaml_inline(project_name))]
    for name, field in fields(GoldfishConfig):
        if name in _CLOUD_EXAMPLES:
            out.append("\n" + _CLOUD_EXAMPLES[name])
            continue
        model = section_model(field.annotation)
        if model is None:
            value = values[name] if is_required(field) else default_of(field)
            gap = "\n" if out[-1].startswith("  ") else ""
            out.append(f"{gap}{name}: {yaml_inline(value)}  # {first_sentence(field.description or '')}\n")
        else:
            out.append(f"\n# {field.description}\n{name}:\n")
            out.extend(_section(model, indent=1))
    text = "".join(out)
    parse_config(text, source="goldfish.yaml template")
    return text


def _section(model: type[BaseModel], indent: int) -> list[str]:
    pad = "  " * indent
    lines: list[str] = []
    for name, field in fields(model):
        sub = section_model(field.annotation)
        comment = first_sentence(field.description or "")
        if sub is not None:
            lines.append(f"{pad}{name}:  # {comment}\n")
            lines.extend(_section(sub, indent + 1))
        else:
            # Secrets belong in the environment; the key is shown, not invited.
            mark = "# " if name in _SHOWN_COMMENTED else ""
            comment = field.description or "" if mark else comment
            lines.append(f"{pad}{mark}{name}: {yaml_inline(default_of(field))}  # {comment}\n")
    return lines
