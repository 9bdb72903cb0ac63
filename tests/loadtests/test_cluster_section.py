"""`python -m loadtests --only cluster` keeps its rows in their own section of RESULTS.md.

Why: with `--only`, the rest of RESULTS.md is another run's and must stay as it is; the cluster rows go
before the chaos run's section, and a second run replaces them instead of adding a second copy.
"""

from __future__ import annotations

from pathlib import Path

from loadtests.cluster_bench import BEGIN, END, section, write_section
from loadtests.report import Row

CHAOS = "<!-- chaos run: begin -->\n## Chaos run\n<!-- chaos run: end -->\n"


def _section(measured: str) -> str:
    rows = [Row("16", "one acks=all write | RF 3", measured, "RF 1", "", "")]
    return section(rows, "python -m loadtests --only cluster", "2026-12-07 20:35 UTC", "1.0 1.0 1.0", 464)


def test_the_section_goes_before_the_chaos_run_and_is_replaced_by_the_next(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    results.write_text("# Benchmark results\n\n| main table |\n\n" + CHAOS, encoding="utf-8")
    write_section(_section("p50 4.1 ms"), results)
    write_section(_section("p50 9.3 ms"), results)
    text = results.read_text(encoding="utf-8")
    assert text.count(BEGIN) == 1
    assert text.count(END) == 1
    assert "p50 9.3 ms" in text
    assert "p50 4.1 ms" not in text
    assert text.index("| main table |") < text.index(BEGIN) < text.index(END) < text.index("<!-- chaos run: begin")
    assert "one acks=all write \\| RF 3" in text  # a cell's pipe does not break the table
    assert "load average at start 1.0 1.0 1.0" in text


def test_a_file_without_a_chaos_section_gets_the_section_at_its_end(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    results.write_text("# Benchmark results\n", encoding="utf-8")
    write_section(_section("p50 4.1 ms"), results)
    assert results.read_text(encoding="utf-8").rstrip().endswith(END)
