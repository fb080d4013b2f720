"""Packages that say their role, arrows in one direction: the project's import graph.

Every import statement counts: top level, inside functions and under `if TYPE_CHECKING`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("cds_service", "fhir_mappings")


def module_files(root: Path, packages: Iterable[str]) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file of `packages` under `root`."""
    found: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _base(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The module a `from ... import` names, relative imports resolved."""
    if not node.level:
        return node.module or ""
    parts = module.split(".")
    anchor = parts if is_package else parts[:-1]
    anchor = anchor[: len(anchor) - (node.level - 1)]
    return ".".join([*anchor, node.module] if node.module else anchor)


def _closest(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of `name` that is one of our modules."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def imports_of(module: str, modules: dict[str, Path]) -> set[str]:
    """The project modules `module` imports anywhere in its source."""
    path = modules[module]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    targets: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _base(module, path.name == "__init__.py", node)
            # `from pkg import mod` imports the module pkg.mod; `from mod import name` imports mod.
            names = [f"{base}.{alias.name}" for alias in node.names] or [base]
        for name in names:
            target = _closest(name, modules)
            if target and target != module:
                targets.add(target)
    return targets


def import_graph(root: Path, packages: Iterable[str]) -> dict[str, set[str]]:
    modules = module_files(root, packages)
    return {module: imports_of(module, modules) for module in modules}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path (first module repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in sorted(graph):
        if state.get(start):
            continue
        path = [start]
        stack = [iter(sorted(graph[start]))]
        state[start] = 1
        while stack:
            child = next(stack[-1], None)
            if child is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(child) == 1:
                return [*path[path.index(child) :], child]
            elif not state.get(child):
                state[child] = 1
                path.append(child)
                stack.append(iter(sorted(graph.get(child, ()))))
    return None


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph(ROOT, PACKAGES)


def test_no_import_cycle(graph: dict[str, set[str]]) -> None:
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_graph_sees_the_projects_imports(graph: dict[str, set[str]]) -> None:
    # Guards the checker itself: top-level, `from pkg import module` and function-level edges.
    assert "cds_service.hooks.calls" in graph["cds_service.hooks.routes"]
    assert "cds_service.hooks.routes" in graph["cds_service.app"]
    assert "fhir_mappings.terminology" in graph["fhir_mappings"]


def test_the_checker_finds_a_cycle_through_a_function_level_import(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg import b\n")
    (package / "b.py").write_text("def f():\n    from .c import g\n")
    (package / "c.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.a\n"
    )
    assert find_cycle(import_graph(tmp_path, ["pkg"])) == ["pkg.a", "pkg.b", "pkg.c", "pkg.a"]
    (package / "c.py").write_text("import json\n")
    assert find_cycle(import_graph(tmp_path, ["pkg"])) is None


def test_hook_types_import_nothing_of_the_project(graph: dict[str, set[str]]) -> None:
    assert graph["cds_service.model.types"] == set()


# Layers that must never import the CDS Hooks edge: it depends on them, not the reverse.
BELOW_THE_EDGE = ("cds_service.model", "cds_service.fhir", "cds_service.security")
EDGE = "cds_service.hooks"


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def upward_imports(
    graph: dict[str, set[str]], lower: Iterable[str], upper: str
) -> list[tuple[str, str]]:
    """(importer, imported) for every module of a `lower` package importing `upper`."""
    lower = tuple(lower)
    return sorted(
        (module, target)
        for module, targets in graph.items()
        if any(_within(module, package) for package in lower)
        for target in targets
        if _within(target, upper)
    )


def test_fhir_security_and_the_model_never_import_the_edge(graph: dict[str, set[str]]) -> None:
    assert upward_imports(graph, BELOW_THE_EDGE, EDGE) == []


def test_the_edge_does_build_on_the_layers_below(graph: dict[str, set[str]]) -> None:
    # Guards the rule above against a rename that would make it vacuous.
    edge_imports = {t for m, ts in graph.items() if _within(m, EDGE) for t in ts}
    for package in BELOW_THE_EDGE:
        assert any(_within(t, package) for t in edge_imports), package


def test_the_model_builds_on_nothing_but_the_domain_errors(graph: dict[str, set[str]]) -> None:
    model_imports = {t for m, ts in graph.items() if _within(m, "cds_service.model") for t in ts}
    assert {t for t in model_imports if not _within(t, "cds_service.model")} <= {
        "cds_service.errors"
    }


def test_the_layering_rule_finds_an_upward_import(tmp_path: Path) -> None:
    package = tmp_path / "app"
    for sub in ("hooks", "fhir", "security"):
        (package / sub).mkdir(parents=True)
        (package / sub / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "hooks" / "types.py").write_text("X = 1\n")
    (package / "hooks" / "routes.py").write_text("from app.fhir import gateway\n")
    (package / "fhir" / "gateway.py").write_text("def f():\n    from ..hooks.types import X\n")
    (package / "security" / "limits.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import app.hooks\n"
    )
    lower, upper = ("app.fhir", "app.security"), "app.hooks"
    assert upward_imports(import_graph(tmp_path, ["app"]), lower, upper) == [
        ("app.fhir.gateway", "app.hooks.types"),
        ("app.security.limits", "app.hooks"),
    ]
    (package / "fhir" / "gateway.py").write_text("import json\n")
    (package / "security" / "limits.py").write_text("from app import fhir\n")
    assert upward_imports(import_graph(tmp_path, ["app"]), lower, upper) == []


def test_mappings_do_not_depend_on_the_service(graph: dict[str, set[str]]) -> None:
    mapping_imports = {t for m, ts in graph.items() if m.startswith("fhir_mappings") for t in ts}
    assert not {t for t in mapping_imports if t.startswith("cds_service")}


def test_the_product_never_imports_the_benchmarks() -> None:
    for path in sorted((ROOT / "cds_service").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            assert not [n for n in names if n.split(".")[0] == "benchmarks"], path
