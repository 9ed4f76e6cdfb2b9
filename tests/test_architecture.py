"""The package's import rules, checked on the source (docs/architecture.md explains them).

commands → pipeline → stage packages → sandbox, config, results, util; ``workers`` (what runs
inside the sandbox) imports only ``workers``; no import cycle between modules or packages; an
import inside a function body says why in a comment.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "harness"

# The layer of each top-level part of the package: a module may import its own package and lower layers.
LAYERS = {
    "cli": 6,
    "__main__": 7,
    "commands": 5,
    "pipeline": 4,
    "ingest": 3,
    "training": 3,
    "analysis": 3,
    "scoring": 3,
    "report": 3,
    "similarity": 3,
    "sandbox": 2,
    "config": 2,
    "results": 2,
    "util": 1,
    "errors": 0,
    "resources": 0,
    "__init__": 0,
    "workers": 0,
}
# Stage packages may use each other only along these edges (what each one reads of the others).
STAGE_DEPENDENCIES = {
    "ingest": {"workers"},
    "training": {"analysis", "workers"},
    "analysis": set(),
    "scoring": {"ingest", "analysis"},
    "report": {"analysis", "scoring", "similarity"},
    "similarity": {"ingest", "scoring"},
}


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


MODULES = _modules()


def _imports(path: Path) -> list[tuple[ast.stmt, bool]]:
    """Every import statement of `path`, with whether it sits inside a function body."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            inside |= {id(sub) for sub in ast.walk(node) if isinstance(sub, (ast.Import, ast.ImportFrom))}
    return [(node, id(node) in inside) for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))]


def _targets(node: ast.stmt) -> list[str]:
    """The harness modules an import statement loads (``from harness.x import y`` may name a module y)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif node.level:
        raise AssertionError(f"relative import at line {node.lineno}: write harness.… in full")
    else:
        base = node.module or ""
        names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
    return sorted({n for n in names if n == "harness" or n.startswith("harness.")})


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _graph() -> dict[str, set[str]]:
    graph = {}
    for module, path in MODULES.items():
        targets = set()
        for node, _ in _imports(path):
            for target in _targets(node):
                while target not in MODULES and "." in target:  # `from harness.x import name`
                    target = target.rpartition(".")[0]
                if target != module:
                    targets.add(target)
        graph[module] = targets
    return graph


GRAPH = _graph()


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def _package_parent(module: str) -> str:
    return module.rpartition(".")[0] if module.count(".") > 0 else module


def test_every_part_of_the_package_has_a_layer():
    assert {_part(m) for m in MODULES} <= set(LAYERS), {_part(m) for m in MODULES} - set(LAYERS)


def test_no_import_cycle_between_modules():
    # a package's __init__ importing its own submodules (a facade) is not a cycle of the design
    graph = {m: {t for t in targets if _package_parent(t) != m} for m, targets in GRAPH.items()}
    assert _cycle(graph) is None, " → ".join(_cycle(graph) or [])


def test_no_import_cycle_between_packages():
    graph: dict[str, set[str]] = {}
    for module, targets in GRAPH.items():
        graph.setdefault(_part(module), set()).update(_part(t) for t in targets if _part(t) != _part(module))
    assert _cycle(graph) is None, " → ".join(_cycle(graph) or [])


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_go_down_the_layers(module):
    part = _part(module)
    for target in GRAPH[module]:
        other = _part(target)
        if other == part or other == "__init__":
            continue
        if LAYERS[part] == LAYERS[other] == 3:
            assert other in STAGE_DEPENDENCIES[part], f"{module} imports {target}: stage {part} may not use {other}"
            continue
        assert LAYERS[other] < LAYERS[part], f"{module} (layer {LAYERS[part]}) imports {target} (layer {LAYERS[other]})"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _part(m) == "workers"))
def test_workers_import_only_workers(module):
    """What runs inside the sandbox is mounted alone there: it cannot import the grader."""
    outside = [t for t in GRAPH[module] if _part(t) not in ("workers", "__init__")]
    assert not outside, f"{module} imports {outside}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_inside_functions_say_why(module):
    path = MODULES[module]
    lines = path.read_text(encoding="utf-8").splitlines()
    silent = []
    for node, in_function in _imports(path):
        if not in_function:
            continue
        line, previous = lines[node.lineno - 1], lines[node.lineno - 2].strip()
        if "#" not in line and not previous.startswith("#"):
            silent.append(f"{path.name}:{node.lineno}: {line.strip()}")
    assert not silent, "imports inside functions without a comment saying why:\n" + "\n".join(silent)


def _raw_parses(path: Path) -> list[int]:
    """Lines of ``ast.parse(…)`` calls in a module (not in its docstrings' examples)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "parse"
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "ast"
    ]


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _part(m) != "workers"))
def test_the_grader_parses_python_through_its_lock(module):
    """The grader grades several submissions in threads, and two ``ast.parse`` at once can fail ("AST
    constructor recursion depth mismatch": a whole submission's scoring lost, 2026-12-05): every parse goes
    through ``harness.util.pysource.parse``, which holds one lock. Workers run alone in their process."""
    if module == "harness.util.pysource":
        return
    raw = _raw_parses(MODULES[module])
    assert not raw, f"{MODULES[module].name}: ast.parse at lines {raw}; use harness.util.pysource.parse"


def test_the_rule_catches_a_violation(tmp_path):
    """The checks above can fail: a worker importing the grader is seen as such."""
    bad = tmp_path / "bad.py"
    bad.write_text("from harness.results import ModelResult\n", encoding="utf-8")
    node, _ = _imports(bad)[0]
    assert _targets(node) == ["harness.results"] and _part("harness.results") not in ("workers", "__init__")
    assert _cycle({"a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]
