#!/usr/bin/env bash
# Create ./.venv and install simloss into it (editable) with the given extras.
#
#   bash scripts/setup.sh                 # extras: test,embeddings (everything)
#   bash scripts/setup.sh experiments     # only what `simloss demo` needs
#   bash scripts/setup.sh experiments,peers   # + SimLoss's peers (`simloss demo --compare`)
#
# With the extras `peers` or `test`, dlordinal (the ordinal peers' losses) is
# installed with --no-deps: it declares torchvision, which its losses never
# import and which does not import beside a CPU torch; the extra `peers` lists
# what the losses do import.
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
case ",$extras," in
  *,peers,* | *,test,*)
    $py -m pip install --quiet --disable-pip-version-check --no-deps "dlordinal==${SIMLOSS_DLORDINAL:-2.7.0}"
    $py -c "import dlordinal.losses, coral_pytorch.losses" ;;
esac
echo "simloss installed in $root/.venv with extras [$extras]"
