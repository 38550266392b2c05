"""The fenced blocks of the guides, for the tests that run them verbatim.

Every fenced block of a guide in :data:`GUIDES` is preceded by a marker, an
HTML comment that Markdown renders as nothing:

- ``<!-- test: NAME -->``: a test runs the block; it finds it with
  ``doc_block("NAME")`` (tests/test_docs.py checks that some test does);
- ``<!-- not run: REASON -->``: no test runs it, for the reason given.

A block without a marker, a marker without a block, a name used twice or a
reason left out is an error (:func:`blocks` raises), so a block added to a
guide is either tested or says why it is not.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from functools import cache

from tests.support.server import ROOT

#: The guides whose every block is accounted for.
GUIDES = (ROOT / "docs" / "embedding.md", ROOT / "docs" / "deployment.md")

#: A fenced block, also one indented in a list item (its text is dedented).
FENCE = re.compile(r"^([ \t]*)```([\w-]*)\n(.*?)^\1```[ \t]*$", re.M | re.S)
MARKER = re.compile(r"<!--\s*(test|not run):\s*(.*?)\s*-->\s*\Z", re.S)


class UnmarkedBlock(ValueError):
    """A guide's block has no marker, or a marker is malformed."""


@dataclass(frozen=True, slots=True)
class Block:
    """One fenced block: its language, its text, and its marker."""

    guide: str
    line: int
    language: str
    text: str
    #: The test's name for it, or ``None`` for a block that is not run.
    name: str | None
    reason: str | None

    def lines(self) -> list[str]:
        """Its non-empty lines, for a block of one command per line."""
        return [line for line in self.text.splitlines() if line.strip()]


def parse(markdown: str, guide: str = "<guide>") -> list[Block]:
    """Every fenced block of ``markdown`` with its marker; raises
    :class:`UnmarkedBlock` for a block without one."""
    found = []
    for fence in FENCE.finditer(markdown):
        line = markdown.count("\n", 0, fence.start()) + 1
        before = markdown[: fence.start()].rstrip("\n")
        marker = MARKER.search(before[before.rfind("\n") + 1 :] + "\n")
        if marker is None:
            raise UnmarkedBlock(
                f"{guide}:{line}: a ```{fence[2]} block without a marker. Put "
                "'<!-- test: NAME -->' on the line before it and run it in a test "
                "(doc_block('NAME')), or '<!-- not run: REASON -->'."
            )
        kind, value = marker.groups()
        if not value:
            raise UnmarkedBlock(f"{guide}:{line}: '{kind}:' needs a name or reason.")
        found.append(
            Block(
                guide=guide,
                line=line,
                language=fence[2],
                text=textwrap.dedent(fence[3]),
                name=value if kind == "test" else None,
                reason=value if kind == "not run" else None,
            )
        )
    markers = len(re.findall(r"<!--\s*(?:test|not run):", markdown))
    if markers != len(found):
        raise UnmarkedBlock(f"{guide}: {markers - len(found)} marker(s) mark no block.")
    return found


@cache
def blocks() -> dict[str, Block]:
    """Every named block of every guide, by name."""
    named: dict[str, Block] = {}
    for guide in GUIDES:
        for block in parse(guide.read_text(), guide.name):
            if block.name is None:
                continue
            if block.name in named:
                raise UnmarkedBlock(f"{guide.name}:{block.line}: {block.name} twice.")
            named[block.name] = block
    return named


def doc_block(name: str) -> str:
    """The text of the block marked ``<!-- test: name -->``, as written."""
    return blocks()[name].text


def without_header(text: str) -> str:
    """A block without its first line, the ``# path`` comment naming its file."""
    header, _, rest = text.partition("\n")
    assert header.startswith(("# ", "{# ")), f"no file header: {header!r}"
    return rest


def replace(text: str, placeholder: str, value: str) -> str:
    """``text`` with a documented placeholder replaced; the placeholder must
    be there, so a guide that drops it fails the test instead of running
    something else."""
    assert placeholder in text, f"{placeholder!r} is not in the block any more"
    return text.replace(placeholder, value)
