"""The import layers, read from the source (every import statement, inside functions too):

1. ``audioforge.errors``: the leaf every layer may import;
2. ``datamodules``, ``lightning_modules``, ``callbacks``: the lower packages, importing each other
   and the errors leaf only;
3. the core of ``audioforge`` (config, tracking, training, processes, run skeleton, ...);
4. the drivers, ``audioforge.<command>`` (unlearning, classify, rir, distill): none imports another;
5. ``sweeps``, which drives the unlearning driver;
6. ``audioforge.cli`` and ``audioforge.__main__``, which nothing imports.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LOWER = ("datamodules", "lightning_modules", "callbacks")
DRIVERS = ("audioforge.unlearning", "audioforge.classify", "audioforge.rir", "audioforge.distill")
TOP = ("audioforge.cli", "audioforge.__main__")
PROJECT = ("audioforge", "sweeps", "benchmarks", "tests", *LOWER)


def under(name: str, prefixes) -> bool:
    return any(name == p or name.startswith(p + ".") for p in ([prefixes] if isinstance(prefixes, str) else prefixes))


def layer(module: str) -> int:
    if module == "audioforge.errors":
        return 1
    if under(module, LOWER):
        return 2
    if under(module, TOP):
        return 6
    if under(module, "sweeps"):
        return 5
    if under(module, DRIVERS):
        return 4
    return 3


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_module(name: str) -> bool:
    path = REPO.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, imported module) of every project import in ``path``."""
    tree = ast.parse(path.read_text(), str(path))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            out.append((node.lineno, base))
            out += [(node.lineno, f"{base}.{a.name}") for a in node.names if is_module(f"{base}.{a.name}")]
    return [(line, name) for line, name in out if under(name, PROJECT)]


def violations() -> list[str]:
    found = []
    for top in ("audioforge", "sweeps", *LOWER):
        for path in sorted((REPO / top).rglob("*.py")):
            source = module_name(path)
            for line, target in imports(path):
                where = f"{path.relative_to(REPO)}:{line} imports {target}"
                if under(target, ("tests", "benchmarks")):
                    found.append(where + " (tests and benchmarks are not part of the library)")
                elif layer(target) > layer(source):
                    found.append(where + f" (layer {layer(source)} may not import layer {layer(target)})")
                elif layer(source) == layer(target) == 4 and \
                        next(d for d in DRIVERS if under(source, d)) != next(d for d in DRIVERS if under(target, d)):
                    found.append(where + " (a driver may not import another driver)")
    return found


def test_no_import_runs_up_the_layers():
    assert violations() == []


def test_the_checker_sees_imports_inside_functions_and_relative_ones(tmp_path):
    probe = REPO / "callbacks" / "_layering_probe.py"
    probe.write_text("def f():\n    from audioforge.config import load_config\n    from ..sweeps import study\n")
    try:
        found = violations()
    finally:
        probe.unlink()
    assert any("_layering_probe.py:2 imports audioforge.config" in v for v in found)
    assert any("_layering_probe.py:3 imports sweeps" in v for v in found)
