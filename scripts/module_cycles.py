"""Finds import cycles between the files of a Rust crate: a file uses
another when it names a path into it (`crate::a::b`, `super::x`,
`self::y`, in a path or a `use` group).
Exits non-zero, listing each cycle, when the files of any crate given form
one. Run by scripts/test.sh on every crate of the workspace:

    python3 scripts/module_cycles.py agent-tasks/src cli/src bindings-python/src bindings-node/src

A module's own `mod.rs` is not counted as using its children (declaring a
child is not a use), and test modules (`tests.rs`, `*_tests.rs`, code
after `#[cfg(test)]`) are left out: they may reach anything they test.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Dict, List, Optional, Set

PATH = re.compile(r"\b(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")
USE_GROUP = re.compile(r"\buse\s+(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)*)::\{([^;]*)\};", re.S)


def module_of(src: Path, file: Path) -> List[str]:
    rel = file.relative_to(src).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return parts


def strip(text: str) -> str:
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', text)
    cut = re.search(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{", text)
    if cut:
        text = text[: cut.start()]
    return text


def resolve(modules: Dict[tuple, Path], base: List[str], rest: List[str]) -> Optional[tuple]:
    """The longest module path (a file) that `base + rest` starts with."""
    path = base + rest
    for n in range(len(path), 0, -1):
        key = tuple(path[:n])
        if key in modules:
            return key
    return None


def crate_graph(src: Path) -> Dict[tuple, Set[tuple]]:
    files = [f for f in src.rglob("*.rs") if not (f.name == "tests.rs" or f.name.endswith("_tests.rs"))]
    modules = {tuple(module_of(src, f)): f for f in files}
    graph: Dict[tuple, Set[tuple]] = {m: set() for m in modules}
    for me, file in modules.items():
        text = strip(file.read_text(encoding="utf-8"))
        is_mod_file = file.name in ("mod.rs", "lib.rs", "main.rs")
        here = list(me) if is_mod_file else list(me[:-1])  # the module `self` names
        refs: List[List[str]] = []
        for m in USE_GROUP.finditer(text):
            root, prefix, group = m.group(1), m.group(2), m.group(3)
            for item in re.split(r"[,{}\s]+", group):
                item = item.split("::")[0].strip()
                if item and item not in ("self", "*"):
                    refs.append([root] + [p for p in prefix.split("::") if p] + [item])
                elif item == "self":
                    refs.append([root] + [p for p in prefix.split("::") if p])
        for m in PATH.finditer(text):
            refs.append([m.group(1)] + [p for p in m.group(2).split("::") if p])
        for ref in refs:
            root, rest = ref[0], ref[1:]
            if root == "crate":
                base: List[str] = []
            elif root == "self":
                base = list(me) if is_mod_file else list(me[:-1])
            else:  # super
                parent = list(me) if is_mod_file else list(me[:-1])
                base = parent[:-1]
                while rest and rest[0] == "super":
                    base, rest = base[:-1], rest[1:]
            target = resolve(modules, base, rest)
            if target is None or target == me:
                continue
            # A module file declaring its children does not use them.
            if is_mod_file and target[: len(me)] == me and len(target) > len(me) and root == "self":
                continue
            # Nor does a child use its parent module file for its siblings'
            # paths: `super::sibling` resolves to the sibling itself above.
            graph[me].add(target)
    return graph


def cycles(graph: Dict[tuple, Set[tuple]]) -> List[List[tuple]]:
    """The strongly connected components of more than one file (Tarjan)."""
    index: Dict[tuple, int] = {}
    low: Dict[tuple, int] = {}
    stack: List[tuple] = []
    on: Set[tuple] = set()
    out: List[List[tuple]] = []
    counter = [0]

    def visit(v: tuple) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            visit(v)
    return out


def main(srcs: List[str]) -> int:
    failed = False
    for src in srcs:
        graph = crate_graph(Path(src))
        for comp in cycles(graph):
            failed = True
            names = ["/".join(c) or "(crate root)" for c in comp]
            print(f"{src}: files that use each other: {', '.join(names)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
