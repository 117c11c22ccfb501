"""The code's shape, read from the source with ``ast``: one dependency direction.

- ``firmware_bridge`` may import ``lastwatt`` (messages, topics, devices, site, ...); ``lastwatt``
  never imports ``firmware_bridge`` (its ``devices`` command comes through an entry point).
- ``lastwatt.model`` imports nothing from the layers that drive it: engine, simulation,
  transport, storage, the CLIs, sweeps and reports.

Each rule is proven able to fail on a synthetic tree that breaks it. (Function length:
``tests/test_function_size.py``.)
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# (files, forbidden module prefixes, why)
RULES = [
    ("lastwatt/**/*.py", ("firmware_bridge",), "lastwatt must not depend on firmware_bridge"),
    (
        "lastwatt/model/**/*.py",
        ("lastwatt.engine", "lastwatt.simulation", "lastwatt.transport", "lastwatt.storage",
         "lastwatt.cli", "lastwatt.sweep", "lastwatt.report"),
        "the model must not depend on what drives it",
    ),
]


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(root: Path, path: Path) -> list[tuple[int, list[str]]]:
    """Per import statement in ``path`` (anywhere in it): its line and the modules it may
    import (``from a import b``: ``a`` and ``a.b``), relative imports resolved."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module_name(root, path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, [alias.name]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package[: len(package) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.append((node.lineno, [base, *(f"{base}.{a.name}" for a in node.names)]))
    return found


def violations(root: Path) -> list[str]:
    out = []
    for pattern, forbidden, why in RULES:
        for path in sorted(root.glob(pattern)):
            for line, names in imported_modules(root, path):
                bad = [n for n in names if any(n == f or n.startswith(f + ".") for f in forbidden)]
                if bad:
                    out.append(f"{path.relative_to(root)}:{line} imports {bad[0]}: {why}")
    return sorted(out)


def test_imports_go_one_way_bridge_to_lastwatt_and_drivers_to_model():
    assert violations(ROOT) == []


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_the_import_check_catches_every_kind_of_reverse_import(tmp_path):
    write(tmp_path, {
        "lastwatt/__init__.py": "",
        "lastwatt/cli.py": "def f():\n    from firmware_bridge.fleet import Fleet\n",
        "lastwatt/model/__init__.py": "",
        "lastwatt/model/market.py": "import lastwatt.transport.mqtt\n",
        "lastwatt/model/settle.py": "from ..storage import files\n",
        "lastwatt/model/ok.py": "from lastwatt.site import site\nfrom . import market\n",
        "firmware_bridge/__init__.py": "from lastwatt.messages import Setpoint\n",
    })
    assert violations(tmp_path) == [
        "lastwatt/cli.py:2 imports firmware_bridge.fleet: lastwatt must not depend on "
        "firmware_bridge",
        "lastwatt/model/market.py:1 imports lastwatt.transport.mqtt: the model must not depend "
        "on what drives it",
        "lastwatt/model/settle.py:1 imports lastwatt.storage: the model must not depend on what "
        "drives it",
    ]
