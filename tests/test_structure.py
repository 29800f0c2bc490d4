"""The package's shape: no import cycle, leaves that stay leaves, and a terminal side (CLI,
store, suites, reports) that does not load torch before it has parsed its options."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "tsfbench"
# Modules a command needs before it measures anything: importing them must not load torch
# (2.5 s), fvcore or matplotlib.
TORCH_FREE = (
    "tsfbench.ab",
    "tsfbench.cards",
    "tsfbench.cli",
    "tsfbench.compare",
    "tsfbench.config",
    "tsfbench.environment",
    "tsfbench.errors",
    "tsfbench.fit",
    "tsfbench.models.parts",
    "tsfbench.models.registry",
    "tsfbench.report.reference",
    "tsfbench.runner",
    "tsfbench.store",
    "tsfbench.suite",
)
LEAVES = ("tsfbench.errors", "tsfbench.models.registry")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = sorted(module_name(path) for path in PACKAGE.rglob("*.py"))
IMPORTABLE = [name for name in MODULES if name != "tsfbench.__main__"]  # that one runs the CLI


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def module_imports(name: str) -> set[str]:
    """The tsfbench modules `name` imports when it is imported (module level; not the lazy
    imports inside functions, not `if TYPE_CHECKING:` blocks)."""
    path = PACKAGE.parent / (name.replace(".", "/") + ".py")
    if not path.exists():
        path = PACKAGE.parent / name.replace(".", "/") / "__init__.py"
    found: set[str] = set()
    todo: list[ast.stmt] = list(ast.parse(path.read_text()).body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.If) and not _is_type_checking(node):
            todo += node.body + node.orelse
        elif isinstance(node, ast.Try):
            todo += node.body + node.orelse + node.finalbody
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {m for m in found if m in MODULES and m != name}


GRAPH = {name: module_imports(name) for name in MODULES}


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle of `graph` (module -> modules it imports), or []."""
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> list[str]:
        if state.get(name) == "open":
            return [*path[path.index(name) :], name]
        if state.get(name) == "done":
            return []
        state[name] = "open"
        for imported in sorted(graph.get(name, ())):
            if cycle := visit(imported, [*path, name]):
                return cycle
        state[name] = "done"
        return []

    return next((cycle for name in sorted(graph) if (cycle := visit(name, []))), [])


def test_the_import_graph_has_no_cycle() -> None:
    assert find_cycle(GRAPH) == []


def test_the_cycle_check_finds_the_cycle_this_package_had() -> None:
    """config -> models.registry -> models.baselines -> config, as before the registry
    became a leaf: the check is not blind to it."""
    old = {**GRAPH, "tsfbench.models.registry": {"tsfbench.models.baselines"}}
    old["tsfbench.models.baselines"] = {"tsfbench.config"}
    cycle = find_cycle(old)
    assert cycle[0] == cycle[-1]
    assert {"tsfbench.config", "tsfbench.models.baselines"} <= set(cycle)


def test_leaves_import_no_other_tsfbench_module() -> None:
    for leaf in LEAVES:
        assert GRAPH[leaf] <= {"tsfbench", "tsfbench.models"}, (leaf, GRAPH[leaf])


def run_python(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_the_terminal_side_imports_no_torch() -> None:
    code = (
        "import importlib, json, sys\n"
        f"for name in {TORCH_FREE!r}: importlib.import_module(name)\n"
        "print(json.dumps([m for m in ('torch', 'fvcore', 'matplotlib') if m in sys.modules]))\n"
    )
    assert json.loads(run_python(code)) == []


def test_every_module_imports_alone_in_any_order() -> None:
    """Each module imported with no other tsfbench module loaded (a partly initialised module
    in a cycle fails here), forwards and backwards through the package."""
    code = (
        "import importlib, json, sys\n"
        f"names = {IMPORTABLE!r}\n"
        "failed = []\n"
        "for name in names + names[::-1]:\n"
        "    for loaded in [m for m in sys.modules if m.split('.')[0] == 'tsfbench']:\n"
        "        del sys.modules[loaded]\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception as error:\n"
        "        failed.append(f'{name}: {type(error).__name__}: {error}')\n"
        "print(json.dumps(failed))\n"
    )
    assert json.loads(run_python(code)) == []


STATUS_LITERAL = re.compile(
    r"""(==|!=|\bin\s*[(\[]|Outcome\(|"status":|status\s*=)\s*["'](ok|oom|error|predicted|timeout)["']"""
)


def test_statuses_are_the_enum_outside_the_store() -> None:
    """A status is `store.Status`: a typo in a literal would silently match nothing."""
    found = [
        f"{path.relative_to(PACKAGE.parent)}:{number}: {line.strip()}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "store.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if STATUS_LITERAL.search(line)
    ]
    assert found == []


def test_the_status_check_sees_a_literal() -> None:
    assert STATUS_LITERAL.search('if outcome.status != "ok":')
    assert STATUS_LITERAL.search('rows = rows[rows["status"] == "predicted"]')
    assert not STATUS_LITERAL.search('record["error"] = message')
