"""docs/your-data.md: each worked example runs as written, from a file to a report and predictions.

Every ``## Example:`` section is run in a fresh folder, its blocks in order: a
``python`` block as a script with this interpreter, a ``bash`` block with this
environment's ``simloss`` first on ``PATH`` (``toml`` blocks show a file's text).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import shared_path

DOC = Path(__file__).resolve().parents[1] / "docs" / "your-data.md"
_BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.S)


def _examples() -> dict[str, list[tuple[str, str]]]:
    text = DOC.read_text()
    sections = re.split(r"^## ", text, flags=re.M)
    out = {}
    for section in sections:
        title, _, body = section.partition("\n")
        if title.startswith("Example: "):
            out[title[len("Example: ") :]] = [(m[1], m[2]) for m in _BLOCK.finditer(body)]
    return out


EXAMPLES = _examples()


def test_the_page_has_one_example_per_data_kind() -> None:
    assert len(EXAMPLES) == 4
    kinds = DOC.read_text().split("## Example")[0]
    for kind in ("`table`", "`images`", "`arrays`", "`factory`"):
        assert kind in kinds


def _run(kind: str, code: str, cwd: Path, env: dict[str, str]) -> None:
    if kind == "python":
        script = cwd / "_block.py"
        script.write_text(code)
        command = [sys.executable, str(script)]
    elif kind == "bash":
        command = ["bash", "-euo", "pipefail", "-c", code]
    else:
        return
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, (
        f"{kind} block failed:\n{code}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    )


@pytest.mark.parametrize("title", list(EXAMPLES))
def test_a_worked_example_runs_to_its_report(title: str, tmp_path: Path) -> None:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["MPLBACKEND"] = "Agg"
    if "images" in title:
        env["UTKFACE"] = str(shared_path("utkface", "crop_part1"))
    if "table" in title:
        pytest.importorskip("skordinal")
    for kind, code in EXAMPLES[title]:
        _run(kind, code, tmp_path, env)
    reports = list((tmp_path / "reports").glob("*/report.md"))
    assert len(reports) == 1
    text = reports[0].read_text()
    assert "## Verdict" in text and "- Test Acc (%): **" in text
