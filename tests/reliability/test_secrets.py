"""Case 20: secret hygiene. Every command runs at -vv, once normally and once with a failure forced;
everything it leaves — stdout, stderr (tracebacks included), log records at DEBUG, report files,
the restored manifests — is searched for the database passwords (from the sandbox's passfile),
every plaintext data key KMS handed out during the run (hex, base64 and repr), and the AWS keys.

The sandbox's AWS credentials are swapped for distinctive ones for this module, so a leak of the
access key or secret cannot hide behind the word "testing". Stack outputs under mocks are covered
by tests/program (test_password_from_secret_config_only_applies_to_a_promoted_standby).
"""
from __future__ import annotations

import base64
import logging
from pathlib import Path

import pytest

from scripts import aws
from scripts.commands import backup
from scripts.vault import backup as vault_backup
from scripts.commands import backups
from scripts.commands import cutover
from scripts.commands import drill
from scripts.commands import restore
from scripts.commands import runbook
from scripts.commands import status
from scripts.commands import verify
from scripts.common import Exit
from tests.support.faultproxy import Fault, get_object, s3_writes

pytestmark = pytest.mark.integration

ACCESS_KEY = "AKIARELIABILITYSUITE"
SECRET_KEY = "rel/Secret+Key+0f+The+Suite+never+printed+"


def passwords(passfile: Path) -> list[str]:
    out = []
    for line in passfile.read_text().splitlines():
        fields, cur, esc = [], "", False
        for ch in line:
            if esc:
                cur, esc = cur + ch, False
            elif ch == "\\":
                esc = True
            elif ch == ":":
                fields.append(cur)
                cur = ""
            else:
                cur += ch
        fields.append(cur)
        if len(fields) == 5 and fields[4]:
            out.append(fields[4])
    return out


@pytest.fixture
def leak_watch(rel, monkeypatch, caplog, tmp_path):
    """Distinctive AWS keys; every plaintext data key KMS returns is recorded as a secret to look for."""
    credentials = tmp_path / "aws-credentials"  # what access.credentialsFile names, with keys worth spotting
    credentials.write_text(f"[default]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {SECRET_KEY}\n")
    aws._client.cache_clear()
    keys: list[bytes] = []

    def grab(parsed, **kwargs):
        if isinstance(parsed.get("Plaintext"), bytes):
            keys.append(parsed["Plaintext"])

    real_client = aws._client

    def watched(service, region, endpoint, _credentials_file, config_json):
        c = real_client(service, region, endpoint, str(credentials), config_json)
        if service == "kms" and not getattr(c, "_rel_watched", False):
            c.meta.events.register("after-call.kms.*", grab)
            c._rel_watched = True
        return c

    monkeypatch.setattr(aws, "_client", watched)
    monkeypatch.setattr(aws._client, "cache_clear", real_client.cache_clear, raising=False)
    caplog.set_level(logging.DEBUG)
    yield keys
    real_client.cache_clear()


def forms(secret: bytes | str) -> list[str]:
    if isinstance(secret, str):
        return [secret]
    return [secret.hex(), base64.b64encode(secret).decode(), repr(secret)[2:-1]]


def run_all(rel, proxied, tmp_path, capsys) -> list[tuple[str, int, str]]:
    """Each command at -vv, normal then forced to fail; returns (what, rc, everything it printed)."""
    db = rel.contract.database()
    pw = passwords(Path(rel.contract.sandbox.passfile))[0]
    src = rel.dsn(db.db_name)
    with_pw = f"host=127.0.0.1 port=1 dbname={db.db_name} user=postgres password={pw} connect_timeout=2"
    reports = tmp_path / "reports"
    made = vault_backup.perform_backup(rel.contract, "daily", source_dsn=src)
    rel.wait_replicated(made.id)  # verify checks the DR copy: wait for the (asynchronous) replication
    runs = [
        ("backup", backup.main, rel.args("-vv", "--tier", "daily", "--source", src, "--json")),
        ("backup: password DSN, dead port", backup.main, rel.args("-vv", "--tier", "daily", "--source", with_pw)),
        ("backup: S3 keeps failing", backup.main, rel.args_via("-vv", "--tier", "daily", "--source", src)),
        ("backups list", backups.main, rel.args("-vv", "list", "--json")),
        ("verify", verify.main, rel.args("-vv", "--backup", made.id, "--json")),
        ("verify: downloads keep dropping", verify.main, rel.args_via("-vv", "--backup", made.id, "--json")),
        ("restore", restore.main, rel.args("-vv", "--target", rel.dsn("rel_secret_copy"), "--backup", made.id,
                                           "--jobs", "2", "--allow-rename", "--yes", "--json")),
        ("restore: password DSN, dead port", restore.main, rel.args("-vv", "--target", with_pw, "--backup", made.id, "--allow-rename", "--yes")),
        ("restore: downloads keep dropping", restore.main, rel.args_via("-vv", "--target", rel.dsn("rel_secret_copy"),
                                                                        "--backup", made.id, "--allow-rename", "--yes")),
        ("status", status.main, rel.args("-vv", "--reports", str(reports), "--json")),
        ("runbook", runbook.main, rel.args("-vv", "--out", str(tmp_path / "runbook.md"))),
        ("cutover dry run", cutover.main, rel.args("-vv", "--to", "dr", "--dry-run", "--json")),
        ("cutover without --yes", cutover.main, rel.args("-vv", "--to", "dr")),
        ("drill: vault unreachable", drill.main, rel.args_via("-vv", "--scenario", "ransomware", "--yes-on-stack", "dr",
                                                              "--report", str(reports),
                                                              "--json")),
    ]
    proxied.add(Fault("503", match=s3_writes))
    proxied.add(Fault("truncate", match=get_object))
    out = []
    for what, main, argv in runs:
        rc = main(argv)
        cap = capsys.readouterr()
        out.append((what, rc, cap.out + cap.err))
    return out


def test_case20_no_secret_in_any_output_log_report_or_traceback(rel, proxied, few_retries, leak_watch, tmp_path,
                                                                capsys, caplog):
    results = run_all(rel, proxied, tmp_path, capsys)
    codes = {what: rc for what, rc, _ in results}
    assert codes["backup"] == Exit.OK and codes["restore"] == Exit.OK and codes["verify"] == Exit.OK, codes
    assert all(rc != Exit.OK for what, rc in codes.items() if ":" in what and what != "drill: vault unreachable"), codes
    assert codes["drill: vault unreachable"] == Exit.FAILED, codes
    assert leak_watch, "no data key was seen: the watch is broken"
    secrets = [*passwords(Path(rel.contract.sandbox.passfile)), ACCESS_KEY, SECRET_KEY]
    texts = {f"{what} (exit {rc})": text for what, rc, text in results}
    texts["log records"] = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    for f in tmp_path.rglob("*"):
        if f.is_file() and f.suffix in (".json", ".md", ".html"):
            texts[str(f.relative_to(tmp_path))] = f.read_text(errors="replace")
    # -vv logs go to stderr (setup_logging's basicConfig(force=True) also replaces caplog's handler,
    # so the stderr text is the complete log of each command).
    assert sum("DEBUG " in t or "INFO " in t for t in texts.values()) >= 3, "nothing ran at debug verbosity"
    leaks = [(where, s if isinstance(s, str) else "a data key")
             for s in [*secrets, *leak_watch] for form in forms(s) for where, text in texts.items() if form in text]
    assert leaks == []
