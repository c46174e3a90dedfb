"""Every Python block of the tutorials runs, in order, as a reader would run it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = sorted((DOCS / "tutorials").glob("*.md"))
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def test_there_are_tutorials():
    assert PAGES, "docs/tutorials holds no page"


@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_tutorial_code_runs(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blocks = BLOCK.findall(page.read_text())
    assert blocks, f"{page.name} has no python block"
    namespace: dict = {"__name__": "__tutorial__"}
    for i, code in enumerate(blocks):
        try:
            exec(compile(code, f"{page.name}[block {i}]", "exec"), namespace)
        except Exception as err:  # pragma: no cover - the failure message is the point
            pytest.fail(f"{page.name} block {i} failed: {err!r}\n{code}")


def test_shipped_models_page_is_generated_from_the_cards():
    from xsr.models.pretrained import pretrained_markdown

    page = DOCS / "reference" / "models.md"
    assert page.read_text() == pretrained_markdown(), (
        "docs/reference/models.md is stale: regenerate it with "
        "python -c \"from xsr.models.pretrained import pretrained_markdown as m; print(m(), end='')\""
        " > docs/reference/models.md"
    )
