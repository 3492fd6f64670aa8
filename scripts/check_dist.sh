#!/usr/bin/env bash
# Build the sdist and wheel, check them, and test the wheel as users install it:
# in a fresh virtual environment, from a folder outside the source tree.
#
#   bash scripts/check_dist.sh        # after scripts/setup.sh (uses .venv's build, twine, pytest)
#
# 1. python -m build (sdist and wheel into dist/), twine check --strict;
# 2. a fresh venv with torch and the wheel only (the core install): the command
#    line's tests (tests/test_installed.py, SIMLOSS_CORE_VENV);
# 3. the same venv plus the wheel's `experiments` extra: the smoke test
#    (SIMLOSS_WHEEL_VENV): the embedded Abalone data loads, a tiny `simloss train`.
# torch comes from SIMLOSS_TORCH as in scripts/setup.sh (default torch==2.13.0).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
py="$root/.venv/bin/python"
pip_quiet=(--quiet --disable-pip-version-check)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rm -rf dist
"$py" -m build --outdir dist . >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
"$py" -m twine check --strict dist/*
wheel=$(ls "$root"/dist/simloss-*.whl)
python3 -m venv "$work/venv"
# shellcheck disable=SC2086
"$work/venv/bin/python" -m pip install "${pip_quiet[@]}" ${SIMLOSS_TORCH:-torch==2.13.0}
"$work/venv/bin/python" -m pip install "${pip_quiet[@]}" "$wheel"

cd "$work"  # pytest runs from outside the tree too; the tests' own commands run in tmp folders
export SIMLOSS_DIST_DIR="$root/dist" SIMLOSS_CORE_VENV="$work/venv"
"$py" -m pytest -q -p no:cacheprovider --rootdir "$root" -c "$root/pyproject.toml" \
  "$root/tests/test_installed.py" -k "package_data or core_install"
"$work/venv/bin/python" -m pip install "${pip_quiet[@]}" "$wheel[experiments]"
unset SIMLOSS_CORE_VENV
SIMLOSS_WHEEL_VENV="$work/venv" "$py" -m pytest -q -p no:cacheprovider --rootdir "$root" \
  -c "$root/pyproject.toml" "$root/tests/test_installed.py" -k "wheel_with_experiments"
echo "dist/ checked: $(cd "$root/dist" && ls | tr '\n' ' ')"
