"""No import circles among the core modules: a static graph of every import (module level and inside
functions; ``if TYPE_CHECKING:`` blocks are type hints only) has no cycle, and every core module imports
first, on its own, in a fresh package (no partially initialised module on any import order)."""

import ast
import subprocess
import sys
from pathlib import Path

import napari_hsi_anomaly

PACKAGE = Path(napari_hsi_anomaly.__file__).parent
CORE = "napari_hsi_anomaly.core"


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted((PACKAGE / "core").rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The core modules ``name`` imports anywhere but under ``if TYPE_CHECKING:`` (``from a import b``
    names module ``a.b`` where that is one, else ``a``; a package's ``__init__`` run on the way is not
    counted: it is initialising already or imports nothing back at module level)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.Import):
                found.update(a.name for a in child.names if a.name in modules)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    up = package.split(".")[: len(package.split(".")) - (child.level - 1)]
                    base = ".".join(up + ([base] if base else []))
                for a in child.names:
                    full = f"{base}.{a.name}"
                    found.add(full if full in modules else base)
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return {m for m in found if m in modules and m != name}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            w = next(children, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_the_cycle_finder_finds_cycles():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_among_core_modules():
    modules = _modules()
    assert f"{CORE}.detectors.base" in modules and f"{CORE}.guards" in modules
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    assert f"{CORE}.detectors.calibration" in graph[f"{CORE}.detectors.base"]  # edges are seen
    short = [[m[len(CORE) + 1:] for m in comp] for comp in _cycles(graph)]
    assert short == [], f"import cycles among core modules: {short}"


SCRIPT = """
import importlib, sys
failed = []
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m.split(".")[0] == "napari_hsi_anomaly"]:
        del sys.modules[loaded]  # our package afresh; third-party libraries stay loaded (speed)
    try:
        importlib.import_module(name)
    except Exception as exc:
        failed.append(f"{name}: {type(exc).__name__}: {exc}")
print("\\n".join(failed))
sys.exit(1 if failed else 0)
"""


def test_every_core_module_imports_first():
    names = sorted(_modules())
    proc = subprocess.run([sys.executable, "-c", SCRIPT, *names], capture_output=True, text=True,
                          timeout=600, cwd=PACKAGE.parent)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
