"""The layering of the design notes, and no import cycles.

app_pages -> ui -> explore, provenance, explain, viz, models, training     viz -> explain.types, explain.attention_views
explore, provenance -> explain, training -> models -> common              explain -> models -> common
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = (
    "common",
    "models",
    "training",
    "explain",
    "provenance",
    "explore",
    "viz",
    "ui",
    "app_pages",
    "bench",
    "tools",
)
FORBIDDEN = {
    "common": {
        "models",
        "training",
        "explain",
        "provenance",
        "explore",
        "viz",
        "ui",
        "app_pages",
        "streamlit",
        "torch",
        "plotly",
    },
    "models": {"streamlit", "plotly", "explain", "provenance", "explore", "viz", "ui", "app_pages", "training"},
    "training": {"streamlit", "plotly", "explain", "provenance", "explore", "viz", "ui", "app_pages"},
    "explain": {"streamlit", "plotly", "viz", "ui", "app_pages", "training", "provenance", "explore"},
    "provenance": {"streamlit", "plotly", "viz", "ui", "app_pages"},
    "explore": {"streamlit", "plotly", "viz", "ui", "app_pages", "provenance"},
    "viz": {"streamlit", "torch", "transformers", "captum", "ui", "app_pages", "models", "training"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_files() -> list[Path]:
    files = [REPO / "app.py"]
    for package in PACKAGES:
        files += sorted((REPO / package).rglob("*.py"))
    return files


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def import_time_modules(path: Path) -> set[str]:
    """Modules imported when ``path`` is imported: statements at module level (``if``/``try`` blocks included,
    ``if TYPE_CHECKING`` and function bodies not: those run later or never)."""
    found: set[str] = set()

    def walk(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module)
            elif isinstance(node, ast.If) and not _is_type_checking(node):
                walk(node.body)
                walk(node.orelse)
            elif isinstance(node, ast.Try):
                walk(node.body)
                for handler in node.handlers:
                    walk(handler.body)
                walk(node.orelse)
                walk(node.finalbody)

    walk(ast.parse(path.read_text(encoding="utf-8")).body)
    return found


def all_imports(path: Path) -> list[tuple[str, list[str]]]:
    """Every import in the file (at any depth) with the names of the functions it sits in."""
    found: list[tuple[str, list[str]]] = []

    def visit(node: ast.AST, functions: list[str]) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            functions = [*functions, node.name]
        if isinstance(node, ast.Import):
            found.extend((a.name, functions) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, functions))
        for child in ast.iter_child_nodes(node):
            visit(child, functions)

    visit(ast.parse(path.read_text(encoding="utf-8")), [])
    return found


def import_graph() -> dict[str, set[str]]:
    """Project module -> the project modules it imports at import time (a package's ``__init__`` counts too)."""
    modules = {module_name(p): p for p in project_files()}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for imported in import_time_modules(path):
            parts = imported.split(".")
            targets |= {".".join(parts[:i]) for i in range(1, len(parts) + 1)} & modules.keys()
        graph[name] = targets - {name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (a list of modules, first == last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    stack: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := dfs(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := dfs(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_planted_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_the_project_has_no_import_cycle():
    graph = import_graph()
    assert len(graph) > 60 and "models.registry" in graph["models.loading"]  # the graph is really built
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_does_not_import_forbidden_layers(package):
    for path in (REPO / package).rglob("*.py"):
        for imported, functions in all_imports(path):
            root = imported.split(".")[0]
            if root not in FORBIDDEN[package]:
                continue
            # the one exception: a result shows itself in Jupyter with the plotting layer, imported only then
            allowed = package == "explain" and root == "viz" and functions == ["_repr_html_"]
            assert allowed, f"{path.relative_to(REPO)} imports {imported} (in {functions or 'the module'})"


NUMPY_ONLY = ("explain.types", "explain.attention_views", "explain.inside_types", "explain.inside_views")


def test_viz_reads_only_numpy_parts_of_explain():
    for path in (REPO / "viz").rglob("*.py"):
        for imported, _ in all_imports(path):
            if imported.startswith("explain"):
                assert imported in NUMPY_ONLY, f"{path.name} imports {imported}"


def test_plots_results_and_package_facades_load_without_torch():
    code = (
        "import sys, viz.heatmaps, viz.curves, viz.notebook, viz.inside, explain, explain.types, "
        "explain.attention_views, explain.inside_types, explain.inside_views, "
        "models, models.folder, common.text, common.files, common.paths; print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
