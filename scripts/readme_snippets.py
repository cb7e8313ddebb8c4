"""Type-checks the Python snippets of the READMEs: every ```python block
of the given Markdown files is written to a module of its own under
target/readme-snippets/ (named after the file and the block's line) and
the modules are checked with `mypy --strict`, against the `agent_tasks`
installed in the running interpreter (its stubs and py.typed). Run by
scripts/test.sh with the test venv's python:

    python scripts/readme_snippets.py README.md bindings-python/README.md

Exits non-zero when a block fails the check (mypy names the block's
module and line; the block starts at the README line in its name) or when
the files hold no Python block at all.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import List, Tuple

OUT = Path("target/readme-snippets")
FENCE = re.compile(r"^```python\s*$")


def blocks(markdown: Path) -> List[Tuple[int, str]]:
    """The ```python blocks of `markdown`: (line of the opening fence, code)."""
    found: List[Tuple[int, str]] = []
    lines = markdown.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        if FENCE.match(lines[i]):
            start = i + 1
            end = start
            while end < len(lines) and lines[end].strip() != "```":
                end += 1
            if end == len(lines):
                sys.exit(f"{markdown}:{i + 1}: a ```python block is not closed")
            found.append((i + 1, "\n".join(lines[start:end]) + "\n"))
            i = end
        i += 1
    return found


def main(paths: List[str]) -> int:
    if not paths:
        sys.exit("usage: readme_snippets.py README.md [more.md ...]")
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    written: List[str] = []
    for name in paths:
        markdown = Path(name)
        stem = re.sub(r"\W", "_", str(markdown.with_suffix("")))
        for line, code in blocks(markdown):
            module = OUT / f"{stem}_line{line}.py"
            module.write_text(f"# {markdown}, the block at line {line}\n{code}", encoding="utf-8")
            written.append(str(module))
    if not written:
        sys.exit(f"no ```python block in {', '.join(paths)}")
    print(f"mypy --strict on {len(written)} README snippets")
    checked = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", "target/mypy-cache", *written]
    )
    return checked.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
