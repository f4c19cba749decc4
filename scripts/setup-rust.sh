#!/usr/bin/env bash
# Install what Rust stages need to build with no network: a cargo/rustc toolchain (Debian's, unless
# one is already on PATH) and the Debian-packaged crates goldfish-rust compiles against, which land
# in /usr/share/cargo/registry. Idempotent: installs only what is missing. Needs root (or sudo).
set -euo pipefail

CRATE_PACKAGES=(
  librust-serde-json-dev   # serde_json (+ serde, indexmap, itoa, ryu)
  librust-serde-dev
  librust-thiserror-dev    # thiserror (+ thiserror-impl, syn, quote, proc-macro2)
  librust-zip-dev          # zip (npz reading)
  librust-flate2-dev       # deflate for zip (+ miniz_oxide, crc32fast)
)
REGISTRY="${GOLDFISH_CARGO_REGISTRY:-/usr/share/cargo/registry}"

say() { printf 'setup-rust: %s\n' "$*"; }

installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

missing=()
for pkg in "${CRATE_PACKAGES[@]}"; do
  if installed "$pkg"; then say "$pkg already installed"; else missing+=("$pkg"); fi
done
if command -v cargo >/dev/null 2>&1; then
  say "cargo found at $(command -v cargo); not installing Debian's toolchain"
else
  for pkg in cargo rustc; do
    if installed "$pkg"; then say "$pkg already installed"; else missing+=("$pkg"); fi
  done
fi

if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then SUDO=(sudo); else
      say "need root to install: ${missing[*]} (re-run as root)"; exit 1
    fi
  else
    SUDO=()
  fi
  export DEBIAN_FRONTEND=noninteractive
  say "apt-get install -y --no-install-recommends ${missing[*]}"
  if ! "${SUDO[@]}" apt-get install -y --no-install-recommends "${missing[@]}"; then
    say "install failed; refreshing the package index (apt-get update) and retrying"
    "${SUDO[@]}" apt-get update
    "${SUDO[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
  fi
else
  say "nothing to install"
fi

if [[ ! -d "$REGISTRY" ]]; then
  say "ERROR: crate registry $REGISTRY is missing after installation"; exit 1
fi
for crate in serde_json serde thiserror zip flate2 miniz_oxide crc32fast; do
  if ! compgen -G "$REGISTRY/${crate}-[0-9]*" >/dev/null; then
    say "ERROR: crate $crate not found in $REGISTRY"; exit 1
  fi
done
say "crates present in $REGISTRY"
say "toolchain: $(cargo --version 2>/dev/null || echo 'cargo not runnable')"
