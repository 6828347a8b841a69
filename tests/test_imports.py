"""The import graph runs one way: building blocks ← rules ← observers ← memory, trainer ← lab (the
experiment harness and the CLI).

Every `import` of a `plasticity` module, at the top of a file or inside a function, must go to a
module of the same layer or a lower one (so the library never imports `plasticity.lab`), nothing in
the package imports the CLI, and no module imports itself back through others (no cycle).
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
ALLOWED: set[tuple[str, str]] = set()  # exceptions to the layers, each with its reason: none today


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


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_graph() -> dict[str, set[str]]:
    """Every module of the package → the package's modules it imports (anywhere in the file): a
    name imported from a package is that submodule when one exists, else the package itself."""
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}

    def owner(name: str) -> str | None:
        while name not in modules and "." in name:
            name = name.rsplit(".", 1)[0]
        return name if name in modules else None

    graph = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found |= {owner(f"{node.module}.{alias.name}") for alias in node.names}
            elif isinstance(node, ast.Import):
                found |= {owner(alias.name) for alias in node.names}
        graph[name] = found - {None, name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan 1972)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while not component or component[-1] != node:
                component.append(stack.pop())
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


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


def test_no_import_cycle():
    graph = module_graph()
    assert "plasticity.lab.cli" in graph and "plasticity.rules.fa" in graph["plasticity.rules.sign"]
    assert cycles(graph) == []


def test_the_cycle_finder_finds_cycles():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e2"}, "e2": set()}
    assert cycles(graph) == [["a", "b", "c"]]


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
