"""Prints the README's quickstart block of one language, so that the test
command runs it as a user pastes it: `python3 scripts/quickstart.py rust`
(or python, js). Exits non-zero unless README.md holds exactly one such
block under its "Quickstart: ..." heading.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

FENCES = {"rust": "```rust,no_run", "python": "```python", "js": "```js"}
HEADINGS = {"rust": "## Quickstart: Rust", "python": "## Quickstart: Python", "js": "## Quickstart: Node.js"}


def main(lang: str) -> int:
    text = Path("README.md").read_text(encoding="utf-8")
    start = text.index(HEADINGS[lang])
    nxt = re.compile(r"^## ", re.M).search(text, start + 3)
    section = text[start : nxt.start() if nxt else len(text)]
    blocks = re.findall(re.escape(FENCES[lang]) + r"\n(.*?)^```$", section, re.S | re.M)
    if len(blocks) != 1:
        sys.exit(f"README.md: {len(blocks)} {lang} blocks under {HEADINGS[lang]!r}, expected one")
    sys.stdout.write(blocks[0])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
