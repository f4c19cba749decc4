"""The startup script every Goldfish VM boots with: a short bash bootstrap that writes the agent
(``agent.py`` + ``agent_io.py``, shipped verbatim) and runs it. Docker is installed on a CPU image
that lacks it; GPU images come with Docker and the NVIDIA runtime."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent


def startup_script() -> str:
    agent = (HERE / "agent.py").read_text()
    io = (HERE / "agent_io.py").read_text()
    return f"""#!/bin/bash
# Goldfish worker bootstrap (see goldfish/runs/backends/gce/agent.py).
set -u
root="${{GOLDFISH_VM_ROOT:-/var/lib/goldfish}}"
dir="$root-agent"
mkdir -p "$root" "$dir"
if [ "${{GOLDFISH_VM_RUNTIME:-docker}}" = docker ] && ! command -v docker >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq docker.io && systemctl start docker
fi
cat > "$dir/agent_io.py" <<'GOLDFISH_AGENT_IO_EOF'
{io}
GOLDFISH_AGENT_IO_EOF
cat > "$dir/agent.py" <<'GOLDFISH_AGENT_EOF'
{agent}
GOLDFISH_AGENT_EOF
exec "${{GOLDFISH_VM_AGENT_PYTHON:-python3}}" "$dir/agent.py"
"""
