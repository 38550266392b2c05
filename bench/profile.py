"""Summarise py-spy's collapsed stacks: ``python -m bench.profile FILE [--top N]``.

Prints the functions with the most samples on top of the stack (self) and
anywhere in it (inclusive), as shares of all samples.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

#: py-spy's frame: ``function (path/to/file.py:line)``.
FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")


def frame_name(frame: str) -> str:
    """``function (file.py)`` without the line, shortened to the last parts."""
    match = FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    path = match["file"].split(":")[0]
    short = "/".join(path.split("/")[-2:])
    return f"{match['function']} ({short})"


def summarise(path: Path, top: int) -> str:
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        samples = int(count)
        frames = [frame_name(frame) for frame in stack.split(";")]
        total += samples
        own[frames[-1]] += samples
        for name in set(frames):
            inclusive[name] += samples
    lines = [f"{path}: {total} samples", "", "self:"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in own.most_common(top)]
    lines += ["", "inclusive:"]
    lines += [
        f"  {100 * n / total:5.1f}%  {name}" for name, n in inclusive.most_common(top)
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    for path in args.files:
        print(summarise(path, args.top))


if __name__ == "__main__":
    main()
