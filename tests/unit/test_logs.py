"""``dockyard.logs``: JSON lines for every logger; uvicorn's TLS-probe warning demoted to DEBUG."""

from __future__ import annotations

import json
import logging

import pytest

from dockyard.logs import configure_logging


def test_lines_are_json_and_tls_probes_are_debug(capsys: pytest.CaptureFixture[str]) -> None:
    try:
        configure_logging("info")
        logging.getLogger("uvicorn.error").warning("Invalid HTTP request received.")
        logging.getLogger("alembic.runtime.migration").info("Running upgrade %s -> %s", "1", "2")
        logging.getLogger("dockyard.access").info("request", extra={"status": 200, "actor": "alice"})
        lines = capsys.readouterr().err.splitlines()
        records = [json.loads(line) for line in lines]
        assert [(r["logger"], r["level"], r["message"]) for r in records] == [
            ("alembic.runtime.migration", "INFO", "Running upgrade 1 -> 2"),
            ("dockyard.access", "INFO", "request"),
        ]
        assert records[1]["status"] == 200
        assert records[1]["actor"] == "alice"
        configure_logging("debug")
        logging.getLogger("uvicorn.error").warning("Invalid HTTP request received.")
        (probe,) = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
        assert (probe["level"], probe["message"]) == ("DEBUG", "Invalid HTTP request received.")
    finally:
        configure_logging("warning")
