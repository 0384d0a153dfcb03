"""The package's shape: no import cycles, a short public surface, a tree that shows it."""

from __future__ import annotations

import ast
from pathlib import Path

import langchain_wandb_inference

PACKAGE = Path(langchain_wandb_inference.__file__).parent
NAME = "langchain_wandb_inference"


def _module(path: Path) -> str:
    parts = [NAME, *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _runtime_imports(path: Path) -> set[str]:
    """Package modules ``path`` imports when it runs, in functions too (a lazy import is
    still a dependency); only ``if TYPE_CHECKING`` blocks do not count."""
    tree = ast.parse(path.read_text())
    skipped = {
        id(node)
        for guard in ast.walk(tree)
        if isinstance(guard, ast.If) and "TYPE_CHECKING" in ast.unparse(guard.test)
        for node in ast.walk(guard)
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith(NAME):
                found.add(node.module)
                found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith(NAME))
    return found


def test_no_import_cycles() -> None:
    modules = {_module(p): p for p in PACKAGE.rglob("*.py")}
    graph = {
        name: {m for m in _runtime_imports(path) if m in modules and m != name}
        for name, path in modules.items()
    }
    # A package imports its own __init__ when a submodule is imported: not a cycle edge.
    for name, edges in graph.items():
        edges -= {p for p in modules if name.startswith(p + ".")}
    done: set[str] = set()

    def visit(name: str, stack: list[str]) -> None:
        if name in stack:
            raise AssertionError(
                "import cycle: " + " -> ".join([*stack[stack.index(name) :], name])
            )
        if name in done:
            return
        for other in sorted(graph[name]):
            visit(other, [*stack, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])


def test_the_public_surface_is_short() -> None:
    assert sorted(langchain_wandb_inference.__all__) == [
        "Budget",
        "ChatWBInference",
        "CircuitBreaker",
        "ModelInfo",
        "RetryPolicy",
        "WBModel",
        "__version__",
        "errors",
        "get_wb_inference_callback",
        "model_info",
    ]


def test_the_readme_design_tree_names_every_module() -> None:
    readme = (PACKAGE.parent / "README.md").read_text()
    design = readme[readme.index("## Design") :]
    for path in PACKAGE.rglob("*.py"):
        if path.name in ("__init__.py", "__main__.py", "_version.py"):
            continue
        assert path.stem in design, f"{path.relative_to(PACKAGE)} is missing from README's Design"
