"""The package's shape: three layers (core, train, tools), no import cycle, no private reach-ins.

Read from the source with `ast`, nothing imported: a lower layer never imports a higher
one (Network.fit's deferred import of the training loop is the one exception), the
module graph has no cycle, and no module touches a `_private` name another module
defines. Imports under `if TYPE_CHECKING:` are annotations only and are not counted.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "gpunet"
LAYERS = {"core": 0, "datasets": 0, "train": 1, "tools": 2}
# (importer, imported, function): the deliberate deferred import
DEFERRED = {("gpunet.core.network", "gpunet.train.loop", "fit")}
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def resolve(importer: str, node: ast.ImportFrom | ast.Import) -> list[str]:
    """The gpunet modules an import statement names (a package's face resolves to itself)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = importer if MODULES[importer].name == "__init__.py" else importer.rsplit(".", 1)[0]
        for _ in range(node.level - 1):
            base = base.rsplit(".", 1)[0]
        stem = node.module or ""
        root = (f"{base}.{stem}" if stem else base) if node.level else stem
        names = [f"{root}.{alias.name}" for alias in node.names] + [root]
    found = []
    for name in names:
        while name and name not in MODULES:
            name = name.rpartition(".")[0]
        if name.startswith("gpunet") and name not in found:
            found.append(name)
    # `from . import x` names x, not the package it comes from
    if isinstance(node, ast.ImportFrom) and len(found) > 1:
        found = [n for n in found if n != found[-1]] or found
    return found


def imports(name: str) -> list[tuple[str, str | None]]:
    """(imported module, enclosing function or None) for every import in module `name`."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    found = []

    def visit(node: ast.AST, function: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found.extend((target, function) for target in resolve(name, child))
            inner = (
                child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else None
            )
            visit(child, inner or function)

    visit(tree, None)
    return [(target, function) for target, function in found if target != name]


def layer(name: str) -> int | None:
    parts = name.split(".")
    return LAYERS.get(parts[1]) if len(parts) > 1 else None


GRAPH = {name: imports(name) for name in MODULES}


def test_the_tree_shows_three_layers():
    assert {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"} >= {
        "core",
        "train",
        "tools",
    }
    loose = [n for n in MODULES if n.count(".") == 1 and layer(n) is None]
    # gpunet.sklearn is a face: it re-exports the estimators of gpunet.tools.sklearn
    assert sorted(loose) == ["gpunet.__main__", "gpunet.sklearn"], loose


@pytest.mark.parametrize("name", sorted(MODULES))
def test_lower_layers_never_import_higher_ones(name):
    upward = [
        (target, function)
        for target, function in GRAPH[name]
        if layer(name) is not None
        and layer(target) is not None
        and layer(target) > layer(name)
        and (name, target, function) not in DEFERRED
    ]
    assert not upward, f"{name} imports from a higher layer: {upward}"


def test_the_deferred_import_is_still_deferred():
    # if Network.fit's import moves to module level, the cycle core -> train -> core is back
    for importer, imported, function in DEFERRED:
        assert (imported, function) in GRAPH[importer]
        assert (imported, None) not in GRAPH[importer]


def test_no_import_cycle():
    edges = {
        name: {t for t, f in targets if (name, t, f) not in DEFERRED}
        for name, targets in GRAPH.items()
    }
    # a package's face may re-export its modules; the cycle that matters runs through modules
    faces = {n for n, p in MODULES.items() if p.name == "__init__.py"}
    state: dict[str, int] = {}

    def walk(node: str, trail: list[str]) -> None:
        state[node] = 1
        for target in sorted(edges[node] - faces):
            if state.get(target) == 1:
                cycle = [*trail[trail.index(target) :], target] if target in trail else [target]
                raise AssertionError(f"import cycle: {' -> '.join(cycle)}")
            if target not in state:
                walk(target, [*trail, target])
        state[node] = 2

    for name in sorted(set(MODULES) - faces):
        if name not in state:
            walk(name, [name])


def private_definitions(tree: ast.AST) -> set[str]:
    """_names a module defines: functions, classes, module globals and self._attributes."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
    return {n for n in names if n.startswith("_") and not n.startswith("__")}


TREES = {name: ast.parse(path.read_text(encoding="utf-8")) for name, path in MODULES.items()}
OWN = {name: private_definitions(tree) for name, tree in TREES.items()}
ANYWHERE = set().union(*OWN.values())


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_touches_another_modules_private_names(name):
    reached = set()
    for node in ast.walk(TREES[name]):
        if isinstance(node, ast.Attribute):
            attr = node.attr
            owner = ast.unparse(node.value)
            if owner in ("self", "cls") or owner.startswith("super("):
                continue
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.name.startswith("_") and alias.name in ANYWHERE:
                    reached.add(alias.name)
            continue
        else:
            continue
        # _names from outside gpunet (cupy._core, sys._getframe) are not this test's business
        if attr in ANYWHERE and attr not in OWN[name]:
            reached.add(f"{owner}.{attr}")
    assert not reached, f"{name} reaches into private names of other modules: {sorted(reached)}"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_source_file_is_over_400_lines(name):
    lines = MODULES[name].read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_LINES, f"{MODULES[name].relative_to(PACKAGE.parent)}: {lines} lines"
