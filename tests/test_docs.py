"""Every code block in README.md and docs/ runs, or is marked a fragment (CONTRIBUTING.md).

The convention, in short:

* every fenced block names its language: ``python`` and ``bash`` blocks are
  run; ``text``, ``json``, ``csv`` ... (output, tables, file contents) are shown;
* ``<!-- fragment: why -->`` on the line above a fence: not run (an excerpt, a
  signature, a command that needs data of your own, a server or hours);
* ``<!-- file: NAME -->`` on the line above a fence: the block's text is the
  file NAME, written into the page's folder before the page runs.

The runnable blocks of one page run in order, as a reader follows the page:
Python blocks in one namespace, ``bash`` blocks with ``set -euo pipefail`` and
this environment's ``simloss`` on ``PATH``, all in one temporary folder that
also links the folders of the shared real data (``cifar100/``, ``abalone/``,
...), so a block may name ``cifar100/wordnet_parent_child.txt``; without that
data, a block naming one of its folders is skipped.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
RUN = ("python", "bash")
SHOWN = ("text", "json", "csv", "tsv", "latex", "markdown", "toml", "yaml")
HOW_TO_MARK = (
    "If the block is not meant to run (an excerpt, a signature, a command that needs data "
    "of your own, a server or hours), put `<!-- fragment: why -->` on the line above its "
    "fence; a file it reads can be a block of the page marked `<!-- file: NAME -->` "
    "(CONTRIBUTING.md, 'Code blocks in the docs')."
)

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_MARK = re.compile(r"^\s*<!--\s*(?P<kind>fragment|file)\b\s*:?\s*(?P<value>.*?)\s*-->\s*$")


@dataclass
class Block:
    page: Path
    line: int  # of the opening fence, 1-based
    language: str
    text: str
    mark: str | None  # "fragment", "file" or None
    value: str  # the fragment's reason or the file's name

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def parse_blocks(page: Path) -> list[Block]:
    """The fenced blocks of a Markdown page, with the mark on the line above each."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        indent, fence = opening["indent"], opening["fence"]
        end = index + 1
        while end < len(lines) and not (
            lines[end].strip().startswith(fence[0] * len(fence))
            and not lines[end].strip().strip(fence[0])
        ):
            end += 1
        body = [line.removeprefix(indent) for line in lines[index + 1 : end]]
        above = lines[index - 1] if index > 0 else ""
        mark = _MARK.match(above)
        blocks.append(
            Block(
                page=page,
                line=index + 1,
                language=opening["info"].strip().split(" ")[0].lower(),
                text="\n".join(body) + "\n",
                mark=mark["kind"] if mark else None,
                value=mark["value"] if mark else "",
            )
        )
        index = end + 1
    return blocks


ALL_BLOCKS = [block for page in PAGES for block in parse_blocks(page)]
RUNNABLE = [
    b for b in ALL_BLOCKS if b.language in RUN and b.mark != "fragment" and b.mark != "file"
]


def _shared_data() -> Path | None:
    path = Path(os.environ.get("SIMLOSS_SHARED_DATA", ROOT.parent / "shared" / "data"))
    return path if path.is_dir() else None


@dataclass
class PageRun:
    """The state of one page's run: its folder, its namespace, how far it got."""

    folder: Path
    namespace: dict[str, object] = field(default_factory=lambda: {"__name__": "__main__"})
    done: int = 0  # runnable blocks of the page run so far
    failed: str | None = None  # where an earlier block failed


_RUNS: dict[Path, PageRun] = {}
_TMP = tempfile.TemporaryDirectory(prefix="simloss-docs-")


def _page_run(page: Path) -> PageRun:
    if page in _RUNS:
        return _RUNS[page]
    folder = Path(_TMP.name) / str(page.relative_to(ROOT)).replace("/", "_")
    folder.mkdir()
    shared = _shared_data()
    if shared is not None:
        for source in shared.iterdir():
            (folder / source.name).symlink_to(source, target_is_directory=source.is_dir())
    for block in parse_blocks(page):
        if block.mark == "file":
            (folder / block.value).write_text(block.text, encoding="utf-8")
    _RUNS[page] = PageRun(folder)
    return _RUNS[page]


def _needs_missing_data(block: Block) -> bool:
    if _shared_data() is not None:
        return False
    return bool(re.search(r"\b(cifar100|utkface|abalone|simloss_checkpoints)/", block.text))


def _run_python(block: Block, run: PageRun) -> str | None:
    # Leading newlines make the traceback's line numbers the Markdown file's.
    code = "\n" * block.line + textwrap.dedent(block.text)
    cwd = Path.cwd()
    os.chdir(run.folder)
    try:
        exec(compile(code, str(block.page.relative_to(ROOT)), "exec"), run.namespace)
    except Exception:
        return traceback.format_exc(limit=-8)
    finally:
        os.chdir(cwd)
    return None


def _run_bash(block: Block, run: PageRun) -> str | None:
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "MPLBACKEND": "Agg",
    }
    result = subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + block.text],
        cwd=run.folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode == 0:
        return None
    output = (result.stdout + result.stderr)[-3000:]
    return f"exit code {result.returncode} (line numbers count from the fence):\n{output}"


@pytest.mark.parametrize("block", RUNNABLE, ids=[b.where for b in RUNNABLE])
def test_block_runs(block: Block) -> None:
    if _needs_missing_data(block):
        pytest.skip(f"{block.where} names a folder of the shared data, which is absent")
    run = _page_run(block.page)
    page_blocks = [b for b in RUNNABLE if b.page == block.page]
    position = page_blocks.index(block)
    for earlier in page_blocks[run.done : position + 1]:  # run the page in order up to here
        if run.failed is not None:
            break
        if _needs_missing_data(earlier):
            run.done += 1
            continue
        error = (_run_python if earlier.language == "python" else _run_bash)(earlier, run)
        run.done += 1
        if error is not None:
            run.failed = earlier.where
            if earlier is block:
                pytest.fail(
                    f"{block.where}: this ```{block.language} block failed.\n{error}\n{HOW_TO_MARK}",
                    pytrace=False,
                )
    if run.failed is not None and run.failed != block.where:
        pytest.skip(f"not run: an earlier block of the page failed ({run.failed})")


@pytest.mark.parametrize("block", ALL_BLOCKS, ids=[b.where for b in ALL_BLOCKS])
def test_block_says_what_it_is(block: Block) -> None:
    """A fence names its language, and a mark is one the runner knows."""
    if not block.language:
        pytest.fail(
            f"{block.where}: a fence without a language. Name it: ```python or ```bash (run by "
            f"the tests), or ```text for output, tables and file contents (shown). {HOW_TO_MARK}",
            pytrace=False,
        )
    if block.language not in RUN + SHOWN:
        pytest.fail(
            f"{block.where}: language {block.language!r} is neither run ({', '.join(RUN)}) nor "
            f"shown ({', '.join(SHOWN)}); use one of them (CONTRIBUTING.md)",
            pytrace=False,
        )
    if block.mark == "fragment" and not block.value:
        pytest.fail(
            f"{block.where}: say why it is a fragment: <!-- fragment: why -->", pytrace=False
        )
    if block.mark == "file" and (not block.value or "/" in block.value):
        pytest.fail(
            f"{block.where}: <!-- file: NAME --> needs a plain file name, found {block.value!r}",
            pytrace=False,
        )


def test_every_page_is_read() -> None:
    assert (ROOT / "README.md") in PAGES and len(PAGES) > 5
    assert RUNNABLE, "no runnable block found: the parser is broken"


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_marks_sit_on_a_fence(page: Path) -> None:
    """A ``<!-- fragment -->`` or ``<!-- file -->`` mark is on the line right above a fence."""
    lines = page.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        if _MARK.match(line) and (number == len(lines) or not _FENCE.match(lines[number])):
            pytest.fail(
                f"{page.relative_to(ROOT)}:{number}: {line.strip()} marks nothing: put it on "
                "the line right above the block's opening fence, with no blank line between",
                pytrace=False,
            )


def _simloss_commands(script: str) -> list[list[str]]:
    """The ``simloss ...`` command lines of a bash block, as argument lists."""
    import shlex

    joined = re.sub(r"\\\n\s*", " ", script)
    commands = []
    for line in joined.splitlines():
        try:
            words = shlex.split(line, comments=True)
        except ValueError:
            continue
        command: list[str] = []
        for word in [*words, ";"]:
            if word in (";", "&&", "||", "|", "&") or word.startswith((">", "2>")):
                if command and Path(command[0]).name == "simloss":
                    commands.append(command[1:])
                command = []
            else:
                command.append(word)
    return commands


COMMAND_BLOCKS = [b for b in ALL_BLOCKS if b.language == "bash" and _simloss_commands(b.text)]


@pytest.mark.parametrize("block", COMMAND_BLOCKS, ids=[b.where for b in COMMAND_BLOCKS])
def test_documented_commands_parse(block: Block) -> None:
    """Every ``simloss`` command in a bash block, fragments too, parses with today's flags."""
    from simloss.cli import build_parser

    for argv in _simloss_commands(block.text):
        parser = build_parser()
        parser.exit_on_error = False
        try:
            _, unknown = parser.parse_known_args(argv)
        except (argparse.ArgumentError, SystemExit) as exc:
            pytest.fail(
                f"{block.where}: `simloss {' '.join(argv)}` does not parse: {exc}", pytrace=False
            )
        if unknown:
            pytest.fail(
                f"{block.where}: `simloss {' '.join(argv)}`: unknown arguments {unknown}",
                pytrace=False,
            )


def test_no_tracked_file_holds_merge_conflict_markers() -> None:
    """A merge left `<<<<<<<` lines in README's install block once; no test ran that fragment."""
    root = Path(__file__).resolve().parents[1]
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=root, capture_output=True, text=True, check=False
    )
    if listed.returncode != 0:
        pytest.skip("not a git checkout (an unpacked sdist): no tracked files to list")
    marker = re.compile(r"^(<{7} |={7}$|>{7} )", re.MULTILINE)
    found = []
    for name in filter(None, listed.stdout.split("\0")):
        path = root / name
        if not path.is_file() or path.suffix in {".png", ".pdf", ".npy", ".pt", ".gz", ".zip"}:
            continue
        text = path.read_bytes().decode("utf-8", errors="replace")
        found += [f"{name}:{text.count(chr(10), 0, m.start()) + 1}" for m in marker.finditer(text)]
    assert not found, f"merge conflict markers at {found}"
