"""MkDocs hooks (mkdocs.yml): pages made from files outside docs/.

The home page is README.md, and the changelog and the contributing guide are
CHANGELOG.md and CONTRIBUTING.md, so that each text lives in one file that
GitHub and the site both show; each example in examples/ gets a page with its
source. Their links are rewritten for the site: ``docs/x.md`` -> ``x.md``,
``examples/x.py`` -> ``examples/x.md``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[1]
FROM_ROOT = {
    "index.md": "README.md",
    "changelog.md": "CHANGELOG.md",
    "contributing.md": "CONTRIBUTING.md",
}
_LINK = re.compile(r"\]\((?P<target>[^)#\s]+)(?P<anchor>#[^)]*)?\)")


def _site_link(target: str, depth: int) -> str:
    up = "../" * depth
    if target.startswith("docs/"):
        return up + target.removeprefix("docs/")
    if target.startswith("examples/") and target.endswith(".py"):
        return up + target.removesuffix(".py") + ".md"
    for page, source in FROM_ROOT.items():
        if target == source:
            return up + page
    return target


def _rewrite_links(markdown: str, depth: int = 0) -> str:
    return _LINK.sub(lambda m: f"]({_site_link(m['target'], depth)}{m['anchor'] or ''})", markdown)


def _example_page(path: Path) -> str:
    source = path.read_text(encoding="utf-8")
    title = path.stem.replace("_", " ")
    return (
        f"# {title}\n\n`examples/{path.name}`, run by the tests on real data for a few "
        f"steps (`tests/test_examples.py`).\n\n<!-- fragment: run as a program by "
        f"tests/test_examples.py -->\n```python\n{source}```\n"
    )


def on_files(files: Files, config: Any) -> Files:
    for page, source in FROM_ROOT.items():
        text = _rewrite_links((ROOT / source).read_text(encoding="utf-8"))
        files.append(File.generated(config, page, content=text))
    for path in sorted((ROOT / "examples").glob("*.py")):
        files.append(
            File.generated(config, f"examples/{path.stem}.md", content=_example_page(path))
        )
    return files
