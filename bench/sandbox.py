"""A sandbox of the benchmark's own, in a temp state dir: always brought down, also on failure or Ctrl-C."""
from __future__ import annotations

import io
import os
import shutil
import tempfile
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from psycopg.conninfo import make_conninfo

from scripts.contract import Contract, load_file
from scripts.sandbox import control
from scripts.commands import sandbox as cli
from scripts.sandbox.state import SandboxState


@dataclass
class Bench:
    state_dir: Path
    outputs: Path
    contract: Contract

    @property
    def state(self) -> SandboxState:
        return control.load(self.state_dir)

    def dsn(self, dbname: str, side: str = "primary") -> str:
        cluster = self.contract.sandbox.clusters[side]
        return make_conninfo(host=cluster.host, port=cluster.port, dbname=dbname, user=self.contract.sandbox.superuser,
                             passfile=self.contract.sandbox.passfile, connect_timeout=10)

    def pg_env(self, side: str = "primary") -> dict[str, str]:
        """libpq environment for pgbench/pg_dump/pg_restore against ``side`` (password from the passfile)."""
        cluster = self.contract.sandbox.clusters[side]
        return {**os.environ, "PGHOST": cluster.host, "PGPORT": str(cluster.port),
                "PGUSER": self.contract.sandbox.superuser, "PGPASSFILE": self.contract.sandbox.passfile}


@contextmanager
def bench_sandbox(seed_rows: int = 100) -> Iterator[Bench]:
    state_dir = Path(tempfile.mkdtemp(prefix="pilotlight-bench-"))
    try:
        with redirect_stdout(io.StringIO()):  # `up` prints the endpoints; the benchmark's output is its figures
            rc = cli.main(["up", "--state-dir", str(state_dir), "--seed-rows", str(seed_rows), "-q"])
        if rc != 0:
            raise RuntimeError(f"the benchmark sandbox did not come up; see {state_dir / 'logs'}")
        outputs = state_dir / "outputs.json"
        yield Bench(state_dir, outputs, load_file(outputs))
    finally:
        with redirect_stdout(io.StringIO()):
            cli.main(["down", "--state-dir", str(state_dir), "-q"])
        shutil.rmtree(state_dir, ignore_errors=True)
