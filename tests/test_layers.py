"""The layering of docs/explanation/architecture.md (DESIGN's layer table), enforced statically.

Every module under ``xsr/`` is parsed with :mod:`ast` (nothing is imported). The rules:

* models and the engine never import xarray or dask (at any level, functions included);
* models never import the engine, training or data;
* the simulation core (``xsr/data/swe.py``, ``xsr/data/phantom.py``) never imports
  xarray;
* nothing imports the accessor except ``xsr/__init__.py``;
* no layer imports a layer above it (accessor > xarray layer > array layer > engine > models);
* no import cycle among xsr's modules (module-level imports; a submodule import counts as a
  dependency on the submodule, not on its parent packages).

``xsr.digest`` and ``xsr._version`` are leaf utilities every layer may use.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "xsr"

#: DESIGN's layers, from the top; a module belongs to the first layer whose prefix it matches.
LAYERS = {
    "accessor": ("xsr.accessor",),
    "xarray layer": (
        "xsr.upscaling",
        "xsr.site",
        "xsr.coords",
        "xsr.degradation",
        "xsr.metrics",
        "xsr.data.datasets",
    ),
    "array layer": ("xsr._chunked",),
    "engine": ("xsr.engine",),
    "models": ("xsr.models",),
}
LEAVES = ("xsr.digest", "xsr._version")
SIMULATION_CORE = ("xsr.data.swe", "xsr.data.phantom")
XARRAY_DASK = ("xarray", "dask", "distributed", "xbatcher")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _imports(module: str, *, module_level: bool) -> Iterator[tuple[str, int]]:
    """``(imported module, line)`` of every import in ``module`` (resolved to xsr modules)."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]

    def walk(nodes: list[ast.stmt]) -> Iterator[ast.stmt]:
        for node in nodes:
            if isinstance(node, ast.Import | ast.ImportFrom):
                yield node
            elif not module_level or not isinstance(
                node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef
            ):
                for field in ("body", "orelse", "finalbody", "handlers"):
                    yield from walk(getattr(node, field, []) or [])

    for node in walk(tree.body):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
            continue
        base = node.module or ""
        if node.level:
            anchor = package.split(".")
            anchor = anchor[: len(anchor) - node.level + 1]
            base = ".".join([*anchor, base] if base else anchor)
        for alias in node.names:
            sub = f"{base}.{alias.name}"
            yield (sub if sub in MODULES else base), node.lineno


def _layer(module: str) -> int | None:
    for rank, prefixes in enumerate(reversed(LAYERS.values())):
        if _within(module, prefixes):
            return rank
    return None


def _violations() -> list[str]:
    found = []
    names = list(LAYERS)[::-1]
    for module in MODULES:
        for target, line in _imports(module, module_level=False):
            where = f"{module} (line {line}) imports {target}"
            in_models = _within(module, LAYERS["models"])
            if (in_models or _within(module, LAYERS["engine"])) and _within(target, XARRAY_DASK):
                found.append(f"{where}: models and the engine never import xarray or dask")
            if in_models and _within(target, ("xsr.engine", "xsr.train", "xsr.data")):
                found.append(f"{where}: models never import the engine, training or data")
            if _within(module, SIMULATION_CORE) and _within(target, ("xarray",)):
                found.append(f"{where}: the simulation core never imports xarray")
            if _within(module, ("xsr._chunked",)) and _within(target, ("xarray",)):
                found.append(f"{where}: the array layer never imports xarray")
            if _within(target, ("xsr.accessor",)) and module != "xsr":
                found.append(f"{where}: only xsr/__init__.py imports the accessor")
            if _within(target, LEAVES):
                continue
            own, other = _layer(module), _layer(target)
            if own is not None and other is not None and other > own:
                found.append(f"{where}: the {names[own]} never imports the {names[other]} above it")
    return found


def _cycles() -> list[list[str]]:
    graph = {
        m: sorted({t for t, _ in _imports(m, module_level=True) if t in MODULES and t != m})
        for m in MODULES
    }
    cycles, state, stack = [], {}, []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node)
    return cycles


def test_every_layer_imports_only_below_itself() -> None:
    assert _violations() == []


def test_no_import_cycle_among_xsr_modules() -> None:
    assert _cycles() == []


def test_the_layer_table_names_real_modules() -> None:
    for prefixes in (*LAYERS.values(), LEAVES, SIMULATION_CORE):
        for prefix in prefixes:
            assert any(_within(m, (prefix,)) for m in MODULES), prefix


@pytest.mark.parametrize(
    ("module", "source", "rule"),
    [
        ("xsr.models.fsrcnn", "import xarray", "never import xarray or dask"),
        ("xsr.engine.inference", "def f():\n    import dask.array", "never import xarray or dask"),
        ("xsr.models.base", "from xsr.engine import infer", "never import the engine"),
        ("xsr.data.phantom", "import xarray as xr", "simulation core never imports xarray"),
        ("xsr.metrics", "from xsr import accessor", "only xsr/__init__.py imports the accessor"),
        ("xsr.engine.planning", "from xsr._chunked import halo_depths", "above it"),
    ],
)
def test_a_violation_is_caught(
    module: str, source: str, rule: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(MODULES[module].read_text(encoding="utf-8") + "\n" + source + "\n")
    monkeypatch.setitem(MODULES, module, bad)
    assert any(rule in v for v in _violations())


def test_a_cycle_is_caught(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bad = tmp_path / "registry.py"
    bad.write_text(MODULES["xsr.models.registry"].read_text(encoding="utf-8"))
    chain = tmp_path / "chain.py"
    chain.write_text(
        MODULES["xsr.models.chain"].read_text(encoding="utf-8")
        + "\nfrom xsr.models.registry import get_model\n"
    )
    monkeypatch.setitem(MODULES, "xsr.models.chain", chain)
    assert any("xsr.models.chain" in c and "xsr.models.registry" in c for c in _cycles())
