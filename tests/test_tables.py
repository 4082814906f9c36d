"""The CLI's tables are tabulate's "simple" format, one line per row, long cells cut."""

from __future__ import annotations

from registry.tables import MAX_CELL, table


def test_a_table_is_tabulates_simple_format_without_number_parsing() -> None:
    lines = table([["1000", "None", "0.9667"], ["7", "Production", ""]], ["version", "stage", "acc"])
    assert lines.splitlines() == [
        "version    stage       acc",
        "---------  ----------  ------",
        "1000       None        0.9667",
        "7          Production",
    ]


def test_a_cell_with_line_breaks_stays_on_its_row() -> None:
    lines = table([["1", "first line\nsecond line"], ["2", "ok"]], ["seq", "reason"]).splitlines()
    assert lines[2:] == ["1      first line second line", "2      ok"]


def test_a_long_cell_is_cut_with_an_ellipsis() -> None:
    row = table([["1", "x" * 500]], ["seq", "reason"]).splitlines()[2]
    assert row.endswith("x" * (MAX_CELL - 1) + "…")
    assert len(row) < 80
