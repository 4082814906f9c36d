"""The CLI's tables look as tabulate's "simple" format prints text cells, one line per row."""

from __future__ import annotations

import pytest
from tabulate import tabulate

from registry.tables import table

CASES = [
    (
        [["1000", "None", "prod", ""], ["7", "Production", "", "0.9667"]],
        ["version", "stage", "aliases", "accuracy"],
    ),
    ([], ["seq", "time"]),
    ([["3", "müde Größe"], ["12", "日本語の理由"]], ["seq", "reason"]),
    ([["a-much-longer-cell-than-its-header", ""]], ["x", "y"]),
]


@pytest.mark.parametrize(("rows", "headers"), CASES)
def test_table_matches_tabulate_simple_for_text_cells(rows: list[list[str]], headers: list[str]) -> None:
    assert table(rows, headers) == tabulate(rows, headers=headers, disable_numparse=True)


def test_a_cell_with_line_breaks_stays_on_its_row() -> None:
    lines = table([["1", "first line\nsecond line"], ["2", "ok"]], ["seq", "reason"]).splitlines()
    assert lines[2:] == ["1      first line second line", "2      ok"]
