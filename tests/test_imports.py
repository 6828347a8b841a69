"""The import graph runs one way: building blocks ← rules ← observers ← trainer ← experiments/CLI.

Every `import` of a `plasticity` module, at the top of a file or inside a function, must go to a
module of the same layer or a lower one, and nothing in the package imports the CLI.
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "plasticity"

# Layer of each top-level module or package of `plasticity`, lowest first; `lab` (the experiment
# harness: bench, continual protocol, report, demo, CLI) sits above the whole library.
LAYERS = {
    "errors": 0,
    "fields": 0,
    "io": 0,
    "threads": 0,
    "integrity": 0,
    "data": 0,
    "nets": 0,
    "models": 0,
    "checkpoint": 0,
    "spiking": 0,
    "card": 0,
    "results": 0,
    "rules": 1,
    "observe": 2,
    "memory": 3,
    "build": 3,
    "train": 3,
    "lab": 4,
}
ALLOWED: set[tuple[str, str]] = set()


def imported(path: Path) -> set[str]:
    """Top-level `plasticity` names that the file imports (absolute imports only)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules = [node.module] + ([f"{node.module}.{a.name}" for a in node.names] if node.module == "plasticity" else [])
        elif isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        else:
            continue
        names |= {m.split(".")[1] for m in modules if m.startswith("plasticity.")}
    return names


def test_every_module_has_a_layer():
    tops = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir() if p.suffix == ".py" or (p.is_dir() and any(p.glob("*.py")))}
    assert tops - {"__init__"} == set(LAYERS)


def test_imports_run_one_way():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts == ("__init__",):
            continue
        own = parts[0]
        for name in imported(path) - {own}:
            if name not in LAYERS:
                continue
            if (LAYERS[name] > LAYERS[own] and (own, name) not in ALLOWED) or name == "cli":
                wrong.append(f"{path.relative_to(PACKAGE)} ({own}, layer {LAYERS[own]}) imports plasticity.{name} (layer {LAYERS[name]})")
    assert wrong == []


def test_no_rule_is_tied_to_the_library_network():
    """A rule attaches to whatever model it is given: no rule module imports the benchmark MLP's
    builder or reads a network's `layers` / `trace` (they read `rule.layers_`, found by `attach`)."""
    tied = []
    for path in sorted((PACKAGE / "rules").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "plasticity.nets" and any(a.name in ("build_mlp", "MLP") for a in node.names):
                tied.append(f"{path.name}: imports {[a.name for a in node.names]} from plasticity.nets")
            if isinstance(node, ast.Attribute) and node.attr in ("layers", "trace") and not (isinstance(node.value, ast.Name) and node.value.id == "self"):
                tied.append(f"{path.name}:{node.lineno}: reads .{node.attr}")
    assert tied == []
