#!/usr/bin/env bash
# Create ./.venv and install simloss into it (editable) with the given extras.
#
#   bash scripts/setup.sh                 # extras: test,embeddings (everything)
#   bash scripts/setup.sh experiments     # only what `simloss demo` needs
#
# torch is installed first, pinned to the version this project is developed
# against (torch==2.13.0). From the public PyPI index on Linux x86-64 that pin
# is the CUDA build with NVIDIA's libraries (several GB); the project's own
# machines install the CPU build from a local mirror. For the CPU build from
# the public internet use
# SIMLOSS_TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu".
set -euo pipefail
extras="${1:-test,embeddings}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
python3 -m venv .venv
py=.venv/bin/python
# shellcheck disable=SC2086
$py -m pip install --quiet --disable-pip-version-check ${SIMLOSS_TORCH:-torch==2.13.0}
$py -m pip install --quiet --disable-pip-version-check -e ".[$extras]"
echo "simloss installed in $root/.venv with extras [$extras]"
