"""docs/architecture.md stays true: every module under src/simloss is named in its layout."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "simloss"
LAYOUT = (
    (ROOT / "docs" / "architecture.md").read_text().split("## Layout", 1)[1].split("\n## ", 1)[0]
)
# The command line's modules are one per subcommand, named by the page as a family.
FAMILIES = {"cli": "one module per subcommand"}


def _modules() -> list[Path]:
    return sorted(
        p
        for p in PACKAGE.rglob("*.py")
        if p.name != "__init__.py" and not p.relative_to(PACKAGE).parts[0].startswith(".")
    )


@pytest.mark.parametrize("module", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_every_module_is_named_in_the_layout(module: Path) -> None:
    parts = module.relative_to(PACKAGE).parts
    if parts[0] in FAMILIES:
        assert FAMILIES[parts[0]] in LAYOUT
        return
    assert re.search(rf"(?<![\w.]){re.escape(module.name)}(?![\w])", LAYOUT), (
        f"docs/architecture.md's layout does not name {module.relative_to(ROOT)}: add a line "
        "saying its one job"
    )
