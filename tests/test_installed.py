"""The package as users get it: the built sdist and wheel, installed outside the source tree.

``scripts/check_dist.sh`` (run by ``.ci/run``) builds the sdist and wheel into
``dist/``, installs the wheel into a fresh virtual environment with torch and
nothing else, runs the core tests here, then adds the ``experiments`` extra and
runs the smoke test. It points the tests at what it made with environment
variables; without them (a plain ``pytest`` run) these tests skip, saying so.
Every command runs in a temporary folder, with nothing of the checkout on its
path, so a file missing from the wheel fails here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
MADE_BY = "set by scripts/check_dist.sh, which builds and installs the wheel (CI runs it)"
EXPERIMENTS_MODULES = ("optuna", "scipy", "matplotlib", "PIL", "tqdm")


def _venv(variable: str) -> Path:
    value = os.environ.get(variable)
    if not value:
        pytest.skip(f"{variable} is not set ({MADE_BY})")
    return Path(value)


def _run(venv: Path, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run a program of ``venv`` in ``cwd``, with no trace of the checkout in the environment."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(
        [str(venv / "bin" / args[0]), *args[1:]],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _python(venv: Path, code: str, cwd: Path) -> str:
    result = _run(venv, ["python", "-c", code], cwd)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def _installed_outside_the_tree(venv: Path, cwd: Path) -> None:
    location = Path(_python(venv, "import simloss; print(simloss.__file__)", cwd))
    assert location.is_relative_to(venv), f"simloss imported from {location}, not from {venv}"
    assert not location.is_relative_to(ROOT)


def test_sdist_and_wheel_hold_the_package_data() -> None:
    dist = Path(
        os.environ.get("SIMLOSS_DIST_DIR")
        or pytest.skip(f"SIMLOSS_DIST_DIR is not set ({MADE_BY})")
    )
    (wheel,) = dist.glob("simloss-*.whl")
    (sdist,) = dist.glob("simloss-*.tar.gz")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    for inside in ("data/abalone.data", "data/ABALONE_LICENSE.txt", "data/paper_table1.csv"):
        assert f"simloss/{inside}" in names, f"{wheel.name} lacks simloss/{inside}"
    assert "simloss/py.typed" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), sorted(names)
    with tarfile.open(sdist) as archive:
        stem = sdist.name.removesuffix(".tar.gz")
        members = {m.name.removeprefix(f"{stem}/") for m in archive.getmembers()}
    for inside in ("LICENSE", "README.md", "pyproject.toml", "src/simloss/data/abalone.data"):
        assert inside in members, f"{sdist.name} lacks {inside}"
    # A coherent source tree: the tests (conftest, subfolders), the docs and examples
    # they read, CHANGELOG, mkdocs.yml: every tracked file (MANIFEST.in grafts them).
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if tracked.returncode != 0:
        pytest.skip(f"{ROOT} is not a git checkout: {tracked.stderr.strip()}")
    missing = sorted(set(tracked.stdout.splitlines()) - members)
    assert not missing, f"{sdist.name} lacks tracked files: {missing}"


def test_core_install_runs_the_command_line(tmp_path: Path) -> None:
    venv = _venv("SIMLOSS_CORE_VENV")
    _installed_outside_the_tree(venv, tmp_path)
    found = _python(
        venv,
        "import importlib.util as u; "
        f"print([m for m in {EXPERIMENTS_MODULES!r} if u.find_spec(m) is not None])",
        tmp_path,
    )
    assert found == "[]", f"not a core install: {found} importable"

    help_text = _run(venv, ["simloss", "--help"], tmp_path)
    assert help_text.returncode == 0, help_text.stderr
    assert "matrix" in help_text.stdout and "[needs simloss[experiments]]" in help_text.stdout

    version = _run(venv, ["simloss", "-V"], tmp_path)
    expected = _python(
        venv, "import importlib.metadata as m; print(m.version('simloss'))", tmp_path
    )
    assert version.returncode == 0 and version.stdout.strip() == f"simloss {expected}"

    matrix = _run(venv, ["simloss", "matrix", "--order", "5", "--r", "0.5", "--out", "S"], tmp_path)
    assert matrix.returncode == 0, matrix.stderr
    steps = np.abs(np.arange(5)[:, None] - np.arange(5)[None, :])
    np.testing.assert_allclose(np.load(tmp_path / "S.npy"), 0.5**steps, rtol=1e-7)

    for command in (["tune", "--help"], ["train", "--out", "run"], ["demo"]):
        result = _run(venv, ["simloss", *command], tmp_path)
        assert result.returncode == 1, (command, result.stdout, result.stderr)
        assert result.stderr.count("\n") == 1, result.stderr
        assert "needs the `experiments` extra" in result.stderr
        assert "pip install -e '.[experiments]'" in result.stderr

    benchmark = _run(venv, ["simloss", "benchmark", "--out", "b"], tmp_path)
    assert benchmark.returncode == 1 and benchmark.stderr.count("\n") == 1, benchmark.stderr
    assert "needs the `benchmark` extra" in benchmark.stderr

    # --plot needs matplotlib: refused before the matrix is built, nothing written
    plot = _run(
        venv, ["simloss", "matrix", "--order", "5", "--r", "0.5", "--out", "P", "--plot"], tmp_path
    )
    assert plot.returncode == 1 and plot.stderr.count("\n") == 1, plot.stderr
    assert "pip install 'simloss[plot]'" in plot.stderr and plot.stdout == "", plot
    assert not list(tmp_path.glob("P.*"))

    for port in ("jax", "keras"):
        imported = _run(venv, ["python", "-c", f"import simloss.{port}"], tmp_path)
        last = imported.stderr.strip().splitlines()[-1]
        assert imported.returncode == 1 and last.startswith("ImportError"), imported.stderr
        assert f"pip install 'simloss[{port}]'" in last, last


def test_wheel_with_experiments_trains_on_the_embedded_data(tmp_path: Path) -> None:
    venv = _venv("SIMLOSS_WHEEL_VENV")
    _installed_outside_the_tree(venv, tmp_path)
    shape = _python(
        venv,
        "from simloss.experiments.data.abalone import read_abalone; print(read_abalone()[0].shape)",
        tmp_path,
    )
    assert shape == "(4177, 10)"
    train = _run(
        venv,
        ["simloss", "train", "--dataset=abalone", "--epochs=2", "--limit=300", "--out=run"],
        tmp_path,
    )
    assert train.returncode == 0, train.stderr
    record = json.loads((tmp_path / "run" / "record.json").read_text())
    assert record["dataset"] == "abalone" and len(record["history"]) == 2
    report = _run(venv, ["simloss", "report", "--help"], tmp_path)
    assert report.returncode == 0, report.stderr


if sys.platform == "win32":  # the scripts of a venv live in Scripts\ there
    pytestmark = pytest.mark.skip(reason="scripts/check_dist.sh is a POSIX shell script")
