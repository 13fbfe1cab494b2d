"""Reading back what ``dockyard.cli.common.print_table`` and ``print_fields`` print for people (Rich tables drawn
with box characters): each table's title, header and rows, one list of cell texts per row.

A cell keeps its leading spaces (``print_fields`` indents the per-ecosystem counts of ``vulndb status``) and loses
Rich's padding. A table's title wraps at the table's width: its lines are joined with single spaces. Run the
command with ``COLUMNS`` wide enough that no cell folds onto a second line.
"""

from __future__ import annotations

from dataclasses import dataclass, field

_TOP = ("┌", "┏")
_BOTTOM = "└"


@dataclass
class Table:
    title: str
    header: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)

    def fields(self) -> dict[str, str]:
        """A ``print_fields`` table (two columns, no header) as a mapping."""
        assert not self.header, self.header
        assert all(len(row) == 2 for row in self.rows), self.rows
        return {row[0]: row[1] for row in self.rows}


def _cells(line: str, separator: str) -> list[str]:
    return [cell[1:].rstrip() for cell in line.strip().split(separator)[1:-1]]


def tables(output: str) -> list[Table]:
    """Every table in ``output``, in order; text between tables is the next one's title."""
    found: list[Table] = []
    title: list[str] = []
    current: Table | None = None
    for line in output.splitlines():
        stripped = line.strip()
        if current is None:
            if stripped.startswith(_TOP):
                current = Table(" ".join(title))
                title = []
            elif stripped:
                title.append(stripped)
        elif stripped.startswith("┃"):
            current.header = _cells(stripped, "┃")
        elif stripped.startswith("│"):
            current.rows.append(_cells(stripped, "│"))
        elif stripped.startswith(_BOTTOM):
            found.append(current)
            current = None
    assert current is None, f"a table does not end: {output}"
    return found
