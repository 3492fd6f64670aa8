"""Ctrl-C of a command with worker processes: one line on the terminal, and the rerun resumes.

Ctrl-C in a terminal sends SIGINT to the whole foreground process group: the
command and the worker processes it spawned. The test does the same (a new
process group, ``killpg``), at the moment the command's own worker starts, when
the spawned workers are still importing torch.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from simloss.experiments.sweep import load_records
from simloss.experiments.sweep.trials import host

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="finds the worker processes in /proc (Linux)"
)

# The console script, as a user runs it (spawned workers re-run it as their __main__).
_SCRIPT = Path(sys.executable).with_name("simloss")
SIMLOSS = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "simloss"]
DEMO = [
    "demo",
    "--grid=r=0,0.9",
    "--runs=2",
    "--epochs=20",
    "--limit=300",
    "--workers=2",
    "--no-progress",
]


def _start(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    def default_sigint() -> None:  # a shell's background jobs inherit SIGINT ignored
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    return subprocess.Popen(
        [*SIMLOSS, *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=default_sigint,
    )


def _workers(pid: int) -> list[int]:
    """The worker processes that ``pid`` spawned (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            command = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if parent == pid and b"spawn_main" in command:
            found.append(int(stat.parent.name))
    return found


def test_ctrl_c_of_demo_prints_one_line_and_the_rerun_finishes(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    process = _start([*DEMO, f"--out={out}"], tmp_path)
    own_log = out / "logs" / f"{host()}-{process.pid}.log"
    deadline = time.monotonic() + 120
    while not own_log.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    # The spawned worker has started Python and is importing torch (seconds).
    while not _workers(process.pid) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    assert process.poll() is None, process.communicate()
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    *status, last = stderr.splitlines()  # status lines of trials finished before Ctrl-C
    assert last == "simloss demo: interrupted", stderr
    assert all(line.startswith("sweep simloss-abalone: ") for line in status), stderr
    assert process.returncode == 130

    rerun = subprocess.run(
        [*SIMLOSS, *DEMO, f"--out={out}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert rerun.returncode == 0, rerun.stderr
    assert "4/4 finished" in rerun.stdout.splitlines()[0]
    assert len(load_records(out)) == 4
