#!/bin/sh
# Installs and starts what the test suite needs beyond the Python packages. Idempotent.
set -e
here=$(dirname "$0")
if [ -x "$here/setup-rust.sh" ]; then
  "$here/setup-rust.sh"
fi
# Docker daemon (own socket and data root) + the CPU base image, built once per machine.
"$here/setup-docker.sh"
