"""The package as installed: the wheel's layout and its typing markers."""

from __future__ import annotations

import os

import agent_tasks
from agent_tasks import _native


def test_the_package_is_the_installed_wheel() -> None:
    # The suite must exercise what `pip install ./bindings-python` installed.
    assert "site-packages" in agent_tasks.__file__, agent_tasks.__file__
    assert _native.__file__ is not None and ".abi3." in os.path.basename(_native.__file__)


def test_typing_markers_ship_with_the_wheel() -> None:
    folder = os.path.dirname(agent_tasks.__file__)
    assert os.path.exists(os.path.join(folder, "py.typed"))
    assert os.path.exists(os.path.join(folder, "_native.pyi"))


def test_public_names() -> None:
    for name in agent_tasks.__all__:
        assert hasattr(agent_tasks, name), name
    assert agent_tasks.__version__
    assert agent_tasks.MAX_POLL_BYTES == 16 * 1024 * 1024


def test_the_stubs_match_the_native_module() -> None:
    # Every class, method and property the stubs declare exists at runtime.
    import ast

    folder = os.path.dirname(agent_tasks.__file__)
    with open(os.path.join(folder, "_native.pyi")) as f:
        tree = ast.parse(f.read())
    classes = [node for node in tree.body if isinstance(node, ast.ClassDef)]
    # The engine's classes; the values are `_types`' (generated, below).
    assert len(classes) >= 6
    for cls in classes:
        native = getattr(_native, cls.name)
        for item in cls.body:
            if isinstance(item, ast.FunctionDef) and item.name != "__init__":
                assert hasattr(native, item.name), f"{cls.name}.{item.name}"
    functions = [node.name for node in tree.body if isinstance(node, ast.FunctionDef)]
    for name in functions:
        assert callable(getattr(_native, name)), name


def test_the_metadata_claims_linux_only() -> None:
    # The core reads /proc and uses Linux pipe sizes: no other platform.
    from importlib.metadata import metadata

    classifiers = metadata("agent-tasks").get_all("Classifier") or []
    systems = [c for c in classifiers if c.startswith("Operating System")]
    assert systems == ["Operating System :: POSIX :: Linux"], systems


def test_the_value_types_are_generated_from_the_schemas() -> None:
    # `_types.py` is what scripts/gen_python_types.py makes of schema/ now
    # (the check fails when either changed without the other).
    import subprocess
    import sys
    from pathlib import Path

    from agent_tasks import _types

    root = Path(__file__).resolve().parents[2]
    script = root / "scripts" / "gen_python_types.py"
    check = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    with open(_types.__file__) as installed:
        assert installed.read() == (root / "bindings-python/python/agent_tasks/_types.py").read_text()
