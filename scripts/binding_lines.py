#!/usr/bin/env python3
"""Counts the hand-written lines of the bindings (issue 21's measure): the
Rust, Python, JS and type-stub sources of `bindings-python` and
`bindings-node`, without tests, benchmarks, installed packages, and files
that say on their first lines that they are generated (a `GENERATED` mark,
or napi-rs's `auto-generated` header).

    python3 scripts/binding_lines.py          # a line per file, then totals

The generators in scripts/ (gen_*.py) are listed after, apart.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUFFIXES = {".rs", ".py", ".pyi", ".js", ".mjs", ".cjs", ".ts"}
SKIP_DIRS = {"tests", "tests-ray", "test", "bench", "node_modules", "target", "scripts", "__pycache__"}
# Build outputs whose hand-written source is counted instead: napi-rs writes
# `index.d.ts` from the `#[napi]` items, behind `index.header.d.ts`.
BUILT = {"bindings-node/index.d.ts"}


def generated(path: Path) -> bool:
    with path.open(encoding="utf-8", errors="replace") as f:
        head = "".join(f.readline() for _ in range(5))
    return "GENERATED" in head or "auto-generated" in head


def files(binding: str):
    base = ROOT / binding
    for path in sorted(base.rglob("*")):
        rel = path.relative_to(base)
        if not path.is_file() or path.suffix not in SUFFIXES:
            continue
        if any(part in SKIP_DIRS for part in rel.parts[:-1]):
            continue
        if str(path.relative_to(ROOT)) in BUILT or generated(path):
            continue
        yield path


def main() -> int:
    total = 0
    for binding in ("bindings-python", "bindings-node"):
        count = 0
        for path in files(binding):
            n = sum(1 for _ in path.open(encoding="utf-8", errors="replace"))
            count += n
            print(f"{n:6} {path.relative_to(ROOT)}")
        print(f"{count:6} {binding} (hand-written)\n")
        total += count
    print(f"{total:6} both bindings (hand-written)\n")
    # The generators are hand-written too, and one of them holds binding
    # data (the Node option table): shown, so no line hides in scripts/.
    tools = 0
    for path in sorted((ROOT / "scripts").glob("gen_*.py")):
        n = sum(1 for _ in path.open(encoding="utf-8"))
        tools += n
        print(f"{n:6} {path.relative_to(ROOT)}")
    print(f"{tools:6} generators (hand-written, in scripts/)")
    print(f"{total + tools:6} both bindings and their generators")
    return 0


if __name__ == "__main__":
    sys.exit(main())
