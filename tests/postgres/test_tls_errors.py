"""libpq's TLS refusals become one line naming the bundle and the fix (real refusals: tests/sandbox/test_sandbox_credentials.py)."""
from __future__ import annotations

import pytest

from scripts.common import Exit
from scripts.contract import RDS_CA_BUNDLE, parse
from scripts.postgres.client import connect_failure
from scripts.postgres.dsn import tls

DSN = "host=orders.example.com port=5432 sslmode=verify-full sslrootcert=/ca/bundle.pem"
WHERE = 'connection to server at "orders.example.com" (127.0.0.1), port 5432 failed'


@pytest.mark.parametrize("libpq, expected", [
    (f"{WHERE}: SSL error: certificate verify failed", "not signed by a CA in /ca/bundle.pem"),
    (f'{WHERE}: server certificate for "other.example.org" does not match host name "orders.example.com"',
     "does not match host name"),
    (f'{WHERE}: root certificate file "/ca/bundle.pem" does not exist\nEither provide the file, use the system\'s '
     "trusted roots with sslrootcert=system, or change sslmode to disable server certificate verification.",
     "no CA bundle at /ca/bundle.pem"),
])
def test_certificate_refusals_are_one_line(libpq, expected):
    reason, code = connect_failure(DSN, Exception(libpq))
    assert expected in reason and "\n" not in reason and code == Exit.FAILED


def test_verification_defaults_to_verify_full_against_the_images_rds_bundle(monkeypatch):
    import json
    from pathlib import Path
    doc = json.loads((Path(__file__).parents[1] / "fixtures" / "outputs.json").read_text())
    doc.pop("access", None)
    monkeypatch.delenv("PILOTLIGHT_SSLROOTCERT", raising=False)
    assert tls(parse(doc)) == {"sslmode": "verify-full", "sslrootcert": RDS_CA_BUNDLE}
    monkeypatch.setenv("PILOTLIGHT_SSLROOTCERT", "/etc/ssl/rds.pem")
    assert tls(parse(doc))["sslrootcert"] == "/etc/ssl/rds.pem"
