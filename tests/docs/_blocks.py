"""Finds the fenced code blocks of README.md and docs/**/*.md, and how to run them.

A block runs as written unless an HTML comment on the line just above its
fence says otherwise (several directives separated by commas)::

    <!-- doctest: continue -->        same session as the block before it
    <!-- doctest: kafka -->           needs the dev broker (127.0.0.1:9092)
    <!-- doctest: timeout=300 -->     seconds for the session (default 120)
    <!-- doctest: run -->             run a bash block (bash blocks are opt-in)
    <!-- doctest: skip: REASON -->    not runnable alone; REASON is required

Every Python block either runs or is marked ``skip`` with a reason: nothing is
left out silently. A *session* is a block and the ``continue`` blocks after it;
each session runs in a fresh process with a private HOME and working folder.
"""

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

ROOT = Path(__file__).resolve().parents[2]
_FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[\w+-]*)[^\n]*$")
_DIRECTIVE = re.compile(r"^\s*<!--\s*doctest:\s*(?P<body>.*?)\s*-->\s*$")


@dataclass
class Block:
    """One fenced block of a Markdown file."""

    path: Path
    line: int  # of the first line of code (1-based)
    lang: str
    code: str
    directives: Dict[str, str] = field(default_factory=dict)

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def skip_reason(self) -> Optional[str]:
        return self.directives.get("skip")


@dataclass
class Session:
    """Blocks that run one after another in one process."""

    blocks: List[Block]

    @property
    def where(self) -> str:
        return self.blocks[0].where

    @property
    def kafka(self) -> bool:
        return any("kafka" in b.directives for b in self.blocks)

    @property
    def timeout(self) -> float:
        values = [
            float(b.directives["timeout"])
            for b in self.blocks
            if "timeout" in b.directives
        ]
        return max(values, default=120.0)


def _parse_directives(text: str) -> Dict[str, str]:
    """``"continue, kafka, skip: needs X, Y"`` -> names to values.

    ``skip``'s reason runs to the end of the comment (it may hold commas).
    """
    found: Dict[str, str] = {}
    rest = text.strip()
    while rest:
        match = re.match(r"([a-z][\w-]*)\s*(?:([:=])\s*)?", rest)
        if match is None:
            raise ValueError(f"bad doctest directive: {text!r}")
        name, sep = match.group(1), match.group(2)
        rest = rest[match.end() :]
        if name == "skip":
            found[name] = rest.strip()
            break
        value = ""
        if sep:
            value, _, rest = rest.partition(",")
        else:
            rest = rest.lstrip(",")
        found[name] = value.strip()
        rest = rest.strip()
    return found


def blocks_of(path: Path) -> List[Block]:
    """Every fenced block of one Markdown file, in order."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: List[Block] = []
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if match is None:
            i += 1
            continue
        indent = len(match.group("indent"))
        start = i + 1
        end = start
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        directives: Dict[str, str] = {}
        above = i - 1
        while above >= 0 and not lines[above].strip():
            above -= 1
        if above >= 0:
            found = _DIRECTIVE.match(lines[above])
            if found is not None:
                directives = _parse_directives(found.group("body"))
        code = "\n".join(line[indent:] for line in lines[start:end]) + "\n"
        blocks.append(Block(path, start + 1, match.group("lang"), code, directives))
        i = end + 1
    return blocks


def markdown_files() -> List[Path]:
    """README.md and every page of the docs site."""
    return [ROOT / "README.md"] + sorted((ROOT / "docs").rglob("*.md"))


def all_blocks() -> List[Block]:
    return [b for path in markdown_files() for b in blocks_of(path)]


def sessions(blocks: List[Block]) -> List[Session]:
    """The runnable Python and opted-in bash blocks, grouped into sessions."""
    found: List[Session] = []
    previous_path: Optional[Path] = None
    for block in blocks:
        runnable = block.skip_reason is None and (
            block.lang == "python"
            or (block.lang == "bash" and "run" in block.directives)
        )
        if not runnable:
            continue
        if "continue" in block.directives and found and previous_path == block.path:
            found[-1].blocks.append(block)
        else:
            if "continue" in block.directives:
                raise ValueError(f"{block.where}: 'continue' with nothing before it")
            found.append(Session([block]))
        previous_path = block.path
    return found
