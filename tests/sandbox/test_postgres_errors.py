"""A failed PostgreSQL program is reported by the line that says why, not by its clean-up line."""
from __future__ import annotations

from scripts.sandbox.postgres import failure_line


def test_pg_basebackup_failure_names_the_cause_not_the_removed_directory():
    output = ("pg_basebackup: error: unexpected termination of replication stream: FATAL:  terminating connection "
              "due to administrator command\n"
              "pg_basebackup: error: background process terminated unexpectedly\n"
              'pg_basebackup: removing data directory "/tmp/pilotlight-pg-x/primary"\n')
    assert failure_line(output).startswith("pg_basebackup: error: unexpected termination of replication stream")


def test_output_without_an_error_line_reports_its_last_line():
    assert failure_line("starting\nsomething odd happened\n") == "something odd happened"
    assert failure_line("") == "no output"
