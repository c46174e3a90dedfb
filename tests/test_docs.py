"""Every Python block of the tutorials runs, in order, as a reader would run it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = sorted((DOCS / "tutorials").glob("*.md"))
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
#: A page that reads public real data says so in a comment, e.g.
#: ``<!-- test_docs: needs-real-data navy-winds -->``; it is skipped when they are not cached
#: (``python scripts/fetch_real_data.py`` fetches them; nothing is downloaded by the tests).
NEEDS_REAL_DATA = re.compile(r"<!--\s*test_docs:\s*needs-real-data\s+([^>]*?)\s*-->")


def _missing_real_data(text: str) -> list[str]:
    """The real datasets a page names in its marker that are not in the cache."""
    names = [n for m in NEEDS_REAL_DATA.findall(text) for n in m.replace(",", " ").split()]
    if not names:
        return []
    from xsr.data import list_real

    cached = {e["name"] for e in list_real() if e["cached"]}
    return [n for n in names if n not in cached]


def test_there_are_tutorials():
    assert PAGES, "docs/tutorials holds no page"


@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_tutorial_code_runs(page, tmp_path, monkeypatch):
    text = page.read_text()
    missing = _missing_real_data(text)
    if missing:
        pytest.skip(f"{page.name} reads real data not in the cache: {missing}")
    monkeypatch.chdir(tmp_path)
    blocks = BLOCK.findall(text)
    assert blocks, f"{page.name} has no python block"
    namespace: dict = {"__name__": "__tutorial__"}
    for i, code in enumerate(blocks):
        try:
            exec(compile(code, f"{page.name}[block {i}]", "exec"), namespace)
        except Exception as err:  # pragma: no cover - the failure message is the point
            pytest.fail(f"{page.name} block {i} failed: {err!r}\n{code}")


def test_real_data_marker_names_datasets(monkeypatch, tmp_path):
    monkeypatch.setenv("XSR_DATA_DIR", str(tmp_path))  # an empty cache
    page = "# t\n\n<!-- test_docs: needs-real-data navy-winds, etopo5 -->\n"
    assert _missing_real_data(page) == ["navy-winds", "etopo5"]
    assert _missing_real_data("# no marker\n") == []
    (tmp_path / "etopo5.nc").write_bytes(b"")  # list_real only checks the file is there
    assert _missing_real_data(page) == ["navy-winds"]


def test_shipped_models_page_is_generated_from_the_cards():
    from xsr.models.pretrained import pretrained_markdown

    page = DOCS / "reference" / "models.md"
    assert page.read_text() == pretrained_markdown(), (
        "docs/reference/models.md is stale: regenerate it with "
        "python -c \"from xsr.models.pretrained import pretrained_markdown as m; print(m(), end='')\""
        " > docs/reference/models.md"
    )
