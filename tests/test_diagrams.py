"""The model diagrams of docs/explanation/models.md are what scripts/draw_model_diagrams.py draws."""

from __future__ import annotations

import importlib.util
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "draw_model_diagrams.py"
COMMITTED = ROOT / "docs" / "img"
NAMES = [
    "model-srcnn.svg",
    "model-fsrcnn.svg",
    "model-srnet3d.svg",
    "model-chains.svg",
    "model-xsrnet.svg",
]


def load_script() -> ModuleType:
    """Import the script as a module (``scripts/`` is not a package)."""
    spec = importlib.util.spec_from_file_location("draw_model_diagrams", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


@pytest.fixture(scope="module")
def drawn(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("diagrams")
    load_script().main(["--out", str(out)])
    return out


def test_the_five_diagrams_are_drawn(drawn: Path):
    assert sorted(p.name for p in drawn.iterdir()) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_diagram_is_small_valid_svg_with_text(drawn: Path, name: str):
    data = (drawn / name).read_bytes()
    assert 0 < len(data) < 60_000
    root = ET.fromstring(data)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "C×sH×sW" in texts, "the output shape is written as text (svg.fonttype: none)"
    assert b"<image" not in data, "no embedded raster"


def _texts(data: bytes) -> list[str]:
    root = ET.fromstring(data)
    return [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text")]


@pytest.mark.parametrize("name", NAMES)
def test_committed_diagram_matches_the_code(drawn: Path, name: str):
    # Every label (layers, filters, shapes) must match what the code draws today. Labels, not
    # bytes: another matplotlib version may write the same picture with other SVG bytes.
    committed = COMMITTED / name
    assert committed.exists(), f"docs/img/{name} is missing"
    assert _texts((drawn / name).read_bytes()) == _texts(committed.read_bytes()), (
        f"docs/img/{name} is stale (the models or the script changed): regenerate it with "
        "python scripts/draw_model_diagrams.py"
    )
