#!/usr/bin/env bash
# Docker for Goldfish's docker backend, with nothing pulled from a public registry:
#   1. installs docker.io, debootstrap and docker-registry (Debian packages) when missing;
#   2. starts a dockerd of Goldfish's own (unless it already answers):
#        socket     unix:///run/goldfish-docker/docker.sock   (Goldfish finds it without configuration)
#        data-root  /var/lib/goldfish-docker/data             (images; kept across runs and reboots)
#        exec-root  /run/goldfish-docker/exec
#        log        /var/lib/goldfish-docker/dockerd.log
#      with --bridge=none --iptables=false --ip-forward=false --ip-masq=false (stages run --network none);
#   3. builds the CPU base image goldfish-base-cpu:r<recipe hash> from Debian packages (debootstrap +
#      docker import) once per machine: an unchanged recipe finds its image and builds nothing.
# Idempotent and fast when everything is there. Needs root. Override the places with
# GOLDFISH_DOCKER_ROOT (default /var/lib/goldfish-docker) and GOLDFISH_DOCKER_RUN (/run/goldfish-docker).
set -euo pipefail

ROOT="${GOLDFISH_DOCKER_ROOT:-/var/lib/goldfish-docker}"
RUN="${GOLDFISH_DOCKER_RUN:-/run/goldfish-docker}"
SOCK="$RUN/docker.sock"
PACKAGES=(docker.io debootstrap docker-registry)
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"

say() { printf 'setup-docker: %s\n' "$*"; }

if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then exec sudo -E "$0" "$@"; fi
  say "needs root (it installs packages and starts dockerd): re-run as root"; exit 1
fi

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
missing=()
for pkg in "${PACKAGES[@]}"; do installed "$pkg" || missing+=("$pkg"); done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  say "apt-get install -y --no-install-recommends ${missing[*]}"
  if ! apt-get install -y --no-install-recommends "${missing[@]}"; then
    say "install failed; refreshing the package index (apt-get update) and retrying"
    apt-get update
    apt-get install -y --no-install-recommends "${missing[@]}"
  fi
else
  say "packages present: ${PACKAGES[*]}"
fi

PY="${GOLDFISH_PYTHON:-}"
if [[ -z "$PY" ]]; then
  if [[ -x "$repo/.venv/bin/python" ]]; then PY="$repo/.venv/bin/python"; else PY="python3"; fi
fi
answers() {
  "$PY" - "$SOCK" <<'EOF'
import sys
import docker
try:
    docker.DockerClient(base_url="unix://" + sys.argv[1], timeout=5).ping()
except Exception:
    sys.exit(1)
EOF
}

mkdir -p "$ROOT/data" "$RUN"
if [[ -S "$SOCK" ]] && answers; then
  say "dockerd answers on unix://$SOCK"
else
  if [[ -f "$RUN/dockerd.pid" ]] && kill -0 "$(cat "$RUN/dockerd.pid")" 2>/dev/null; then
    say "dockerd (pid $(cat "$RUN/dockerd.pid")) is running but does not answer yet"
  else
    rm -f "$SOCK" "$RUN/dockerd.pid"
    say "starting dockerd on unix://$SOCK (data in $ROOT/data, log $ROOT/dockerd.log)"
    setsid nohup dockerd \
      --data-root "$ROOT/data" --exec-root "$RUN/exec" -H "unix://$SOCK" --pidfile "$RUN/dockerd.pid" \
      --bridge=none --iptables=false --ip-forward=false --ip-masq=false \
      >>"$ROOT/dockerd.log" 2>&1 < /dev/null &
  fi
  for _ in $(seq 1 150); do
    if [[ -S "$SOCK" ]] && answers; then break; fi
    sleep 0.2
  done
  if ! answers; then
    say "ERROR: dockerd did not answer on unix://$SOCK within 30 s; last lines of $ROOT/dockerd.log:"
    tail -n 20 "$ROOT/dockerd.log" || true
    exit 1
  fi
  say "dockerd answers on unix://$SOCK"
fi

export DOCKER_HOST="unix://$SOCK"
"$PY" -m goldfish images build-base --type cpu --if-missing
