"""What every generator in scripts/ does with what it made: writes it, or,
with `--check` among the arguments, writes nothing and fails (exit 1)
naming each file that is not what it would write, and the command that
makes it anew. One rule for the three generators (gen_*.py).
"""

import sys
from pathlib import Path
from typing import Dict

ROOT = Path(__file__).resolve().parent.parent


def write_or_check(outputs: Dict[Path, str], command: str) -> int:
    """Writes each file of `outputs` (path: text), or checks them (`--check`)."""
    if "--check" in sys.argv[1:]:
        stale = [p for p, text in outputs.items() if not p.exists() or p.read_text() != text]
        for path in stale:
            print(f"{path.relative_to(ROOT)} is out of date: run {command}", file=sys.stderr)
        return 1 if stale else 0
    for path, text in outputs.items():
        path.write_text(text)
    return 0
