"""bench/run_all.py renders the performance table from the bench scripts' JSON; the README holds that table."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run_all():
    sys.path.insert(0, str(ROOT / "bench"))
    spec = importlib.util.spec_from_file_location("bench_run_all", ROOT / "bench" / "run_all.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _entry(sections):
    return {"command": "python bench/bench_x.py", "seconds": 12.0, "when": "2026-12-02 07:00", "sections": sections}


def test_section_renders_as_a_markdown_table(run_all):
    sec = {"heading": "Serving", "intro": "One row.", "header": ["what", "ms", "ratio", "rows", "verdict"],
           "rows": [["p50", 0.4321, 1.25, 2434601, "met"], ["p|99", None, float("nan"), 7, "MISSED"]],
           "notes": ["goal ≤ 1.3×"]}
    lines = run_all.render_section(sec)
    assert lines == [
        "### Serving", "", "One row.", "",
        "| what | ms | ratio | rows | verdict |",
        "|---|---|---|---|---|",
        "| p50 | 0.4321 | 1.2 | 2,434,601 | met |",
        "| p\\|99 | – | – | 7 | MISSED |",
        "",
        "- goal ≤ 1.3×", "",
    ]


def test_page_lists_benches_in_order_and_says_where_it_ran(run_all):
    info = {"cpu": "Test CPU", "cores": 2, "memory_gib": 24.0, "os": "Linux", "python": "3.11.7",
            "libraries": {"xgboost": "3.2.0"}, "commit": "abc1234", "date": "2026-12-02"}
    sec = {"heading": "H", "header": ["a"], "rows": [["x"]], "notes": []}
    results = {"predict": _entry([{**sec, "heading": "Second"}]), "overhead": _entry([{**sec, "heading": "First"}]),
               "models": {"command": "python bench/bench_models.py", "seconds": 3.0, "error": "exited 1"}}
    page = run_all.render(results, info)
    assert page.index("### First") < page.index("Not measured: exited 1") < page.index("### Second")
    assert "Test CPU, 2 cores, 24 GiB" in page and "xgboost 3.2.0" in page and "commit abc1234" in page


def test_readme_update_replaces_only_the_marked_block(run_all, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n\n{run_all.README_START}\nold table\n{run_all.README_END}\n\n## Layout\nkept\n")
    page = "# kaayko-exp performance\n\nGenerated here.\n\n## overhead: `cmd`\n\n### Table\n\n| a |\n|---|\n| 1 |\n"
    assert run_all.update_readme(readme, page)
    text = readme.read_text()
    assert "old table" not in text and text.startswith("intro\n") and text.endswith("## Layout\nkept\n")
    assert "#### overhead: `cmd`" in text and "##### Table" in text and "# kaayko-exp performance" not in text
    assert run_all.update_readme(readme, page) and readme.read_text() == text  # markers kept: idempotent
    bare = tmp_path / "OTHER.md"
    bare.write_text("no markers\n")
    assert not run_all.update_readme(bare, page) and bare.read_text() == "no markers\n"


def test_readme_shows_the_generated_table(run_all):
    """The README's benchmark block is exactly bench/results.md (so no figure in it is typed by hand)."""
    results = ROOT / "bench" / "results.md"
    assert results.exists(), "bench/results.md is missing: run python bench/run_all.py"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start, end = readme.index(run_all.README_START), readme.index(run_all.README_END) + len(run_all.README_END)
    assert readme[start:end] == run_all.readme_block(results.read_text(encoding="utf-8"))
