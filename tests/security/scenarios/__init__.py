"""Scenario rows of the permission matrix (``test_permission_matrix.test_scenario``): one module per topic in this
package, each with ``ROWS: dict[str, tuple[Call, Expect]]`` keyed by a sentence that says what is tried. Their
union is ``SCENARIOS``; a key used twice is an error. Modules are found by listing the package, so a new topic
needs no registration."""

from __future__ import annotations

import importlib
import pkgutil

from tests.security.rows_oci import Call, Expect


def _collect() -> dict[str, tuple[Call, Expect]]:
    out: dict[str, tuple[Call, Expect]] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        rows: dict[str, tuple[Call, Expect]] = importlib.import_module(f"{__name__}.{info.name}").ROWS
        clash = set(rows) & set(out)
        assert not clash, f"scenario rows named twice: {sorted(clash)}"
        out.update(rows)
    return out


SCENARIOS = _collect()
