"""A griffe extension (mkdocs.yml): simloss's docstrings, as mkdocstrings renders Markdown.

The docstrings follow one template (STYLE.md): Google-style sections with
reStructuredText's math and cross-reference roles, and doctests under
``Example:``. Before griffe parses a docstring, this rewrites, in the text
handed to the site only (the source stays as it is):

* ``Example:`` to ``Examples:``, the title Google style knows, so the doctest
  renders as code (any other title is an admonition of Markdown prose);
* ``.. math::`` blocks to ``\\[ ... \\]`` and ``:math:`x``` to ``\\( x \\)``
  (MathJax, through pymdownx.arithmatex);
* ``:func:`~a.b``` and the other Python roles to code spans (``b``, or
  ``a.b`` without the ``~``).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_EXAMPLE = re.compile(r"^(\s*)Example:[ \t]*$", flags=re.MULTILINE)
_MATH_ROLE = re.compile(r":math:`([^`]+)`")
_PY_ROLE = re.compile(r":(?:func|class|meth|mod|attr|data|exc|obj):`(~?)([^`]+)`")
_MATH_BLOCK = re.compile(r"^(\s*)\.\. math::[ \t]*(.*)$")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _math_blocks(text: str) -> str:
    lines = text.split("\n")
    out: list[str] = []
    index = 0
    while index < len(lines):
        match = _MATH_BLOCK.match(lines[index])
        if match is None:
            out.append(lines[index])
            index += 1
            continue
        indent = match.group(1)
        body = [match.group(2)] if match.group(2).strip() else []
        index += 1
        while index < len(lines) and (
            not lines[index].strip() or _indent(lines[index]) > len(indent)
        ):
            body.append(lines[index].strip())
            index += 1
        formula = [line for line in body if line]
        out += ["", f"{indent}\\[", *(indent + line for line in formula), f"{indent}\\]", ""]
    return "\n".join(out)


def _py_role(match: re.Match[str]) -> str:
    short, target = match.group(1), match.group(2).removesuffix("()")
    name = target.rsplit(".", 1)[-1] if short else target
    return f"`{name}`"


def markdown_docstring(text: str) -> str:
    r"""The docstring ``text`` as Markdown for mkdocstrings.

    Example:
        >>> print(markdown_docstring("Eq. 1, :math:`S = I`, see :func:`~torch.softmax`."))
        Eq. 1, \( S = I \), see `softmax`.
    """
    text = _EXAMPLE.sub(r"\1Examples:", text)
    text = _math_blocks(text)
    text = _MATH_ROLE.sub(lambda m: f"\\( {m.group(1)} \\)", text)
    return _PY_ROLE.sub(_py_role, text)


class MarkdownDocstrings(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = markdown_docstring(obj.docstring.value)
