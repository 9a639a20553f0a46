"""The shared sandbox, read-mostly: contract, emulator resources, streaming standby, replication, DNS."""
from __future__ import annotations

import json
import shutil
import stat
import subprocess
import time
import uuid

import dns.message
import dns.query
import dns.rcode
import psycopg
import pytest

from scripts.aws import client
from scripts.contract import parse
from scripts.postgres.dsn import side_dsn
from scripts.sandbox import control
from scripts.sandbox.replicator import POLL_SECONDS
from scripts.commands import sandbox as cli
from scripts.failover.service import resolve, service_dsn
from sandbox_wait import wait_until

pytestmark = pytest.mark.integration


def test_up_writes_a_parseable_contract_without_secrets(sandbox):
    doc = json.loads(sandbox.outputs_path.read_text())
    contract = parse(doc)
    assert contract.sandbox is not None
    assert set(contract.sandbox.aws_endpoints) == {"us-east-1", "us-west-2", "route53"}
    assert contract.aws_endpoint("dr") == contract.sandbox.aws_endpoints["us-west-2"]
    assert stat.S_IMODE(sandbox.outputs_path.stat().st_mode) == 0o644
    passfile = sandbox.state_dir / "pgpass"
    assert contract.sandbox.passfile == str(passfile)
    assert stat.S_IMODE(passfile.stat().st_mode) == 0o600
    secrets = [line.rsplit(":", 1)[1] for line in passfile.read_text().splitlines()]
    assert len(secrets) == 2
    logs = "".join(p.read_text(errors="replace") for p in (sandbox.state_dir / "logs").iterdir())
    for secret in secrets:
        assert secret not in sandbox.outputs_path.read_text()
        assert secret not in logs
    ports = {c.port for c in contract.sandbox.clusters.values()}
    assert len(ports) == 2


def test_emulator_has_the_vault_keys_and_zone(sandbox):
    c = sandbox.contract
    for side in ("primary", "dr"):
        s3 = client(c, "s3", side)
        bucket = c.buckets[side].bucket
        lock = s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
        assert lock["ObjectLockEnabled"] == "Enabled"
        retention = lock["Rule"]["DefaultRetention"]
        assert (retention["Mode"], retention["Days"]) == (c.object_lock_mode, c.object_lock_days)
        assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
        sse = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
        assert sse["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"] == c.keys[side].arn
        key = client(c, "kms", side).describe_key(KeyId=c.keys[side].alias)["KeyMetadata"]
        assert key["Arn"] == c.keys[side].arn and key["MultiRegion"]
    rules = client(c, "s3", "primary").get_bucket_replication(Bucket=c.buckets["primary"].bucket)
    assert rules["ReplicationConfiguration"]["Rules"][0]["Destination"]["Bucket"] == c.buckets["dr"].arn
    records = client(c, "route53").list_resource_record_sets(HostedZoneId=c.zone_id)["ResourceRecordSets"]
    failover = {r["Failover"]: r for r in records if r.get("Failover")}
    db = c.database()
    assert failover["PRIMARY"]["ResourceRecords"][0]["Value"] == db.dns.primary_target
    assert failover["SECONDARY"]["ResourceRecords"][0]["Value"] == db.dns.dr_target
    assert failover["PRIMARY"]["HealthCheckId"] == db.dns.switch.health_check_id  # the calculated switch
    assert "HealthCheckId" not in failover["SECONDARY"]


def test_standby_is_a_streaming_replica(sandbox):
    c = sandbox.contract
    table = f"probe_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(side_dsn(c, "primary", superuser=True), autocommit=True) as conn:
        state = conn.execute("SELECT state FROM pg_stat_replication").fetchall()
        assert ("streaming",) in state
        conn.execute(f"CREATE TABLE {table} (v text)")
        conn.execute(f"INSERT INTO {table} VALUES ('hello')")
    with psycopg.connect(side_dsn(c, "dr", superuser=True), autocommit=True) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone()[0] is True
        assert wait_until(lambda: conn.execute(f"SELECT v FROM {table}").fetchall()) == [("hello",)]
    with psycopg.connect(side_dsn(c, "primary", superuser=True), autocommit=True) as conn:
        conn.execute(f"DROP TABLE {table}")


def test_app_database_has_seed_rows_and_an_extension(sandbox):
    with psycopg.connect(side_dsn(sandbox.contract, "primary")) as conn:
        assert conn.execute("SELECT count(*) FROM customers").fetchone()[0] > 0
        assert conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'pgcrypto'").fetchone()[0] == 1


def test_replicator_copies_versions_but_never_delete_markers(sandbox):
    c = sandbox.contract
    src, dst = client(c, "s3", "primary"), client(c, "s3", "dr")
    key = f"hourly/test-{uuid.uuid4().hex}"
    src.put_object(Bucket=c.buckets["primary"].bucket, Key=key, Body=b"payload", Metadata={"backup-id": "b1"},
                   ChecksumAlgorithm="SHA256")
    head = wait_until(lambda: dst.head_object(Bucket=c.buckets["dr"].bucket, Key=key))
    assert head["Metadata"] == {"backup-id": "b1"}
    assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"] == c.keys["dr"].arn
    assert head["ObjectLockMode"] == c.object_lock_mode
    body = dst.get_object(Bucket=c.buckets["dr"].bucket, Key=key)["Body"].read()
    assert body == b"payload"
    src.delete_object(Bucket=c.buckets["primary"].bucket, Key=key)
    # A later object replicates after the delete marker was looked at (oldest first): by then the
    # marker has been skipped, so a delete in the primary region leaves the DR copy current.
    later = f"{key}-later"
    time.sleep(4 * POLL_SECONDS)  # passes in which the replicator sees the delete on its own
    src.put_object(Bucket=c.buckets["primary"].bucket, Key=later, Body=b"x", ChecksumAlgorithm="SHA256")
    wait_until(lambda: dst.head_object(Bucket=c.buckets["dr"].bucket, Key=later))
    assert dst.get_object(Bucket=c.buckets["dr"].bucket, Key=key)["Body"].read() == b"payload"
    found = dst.list_object_versions(Bucket=c.buckets["dr"].bucket, Prefix=key)
    assert not [m for m in found.get("DeleteMarkers", []) if m["Key"] == key]


def test_dns_answers_the_primary_target_like_route53(sandbox):
    c = sandbox.contract
    db = c.database()
    where = resolve(c)
    assert (where.side, where.target, where.address) == ("primary", db.dns.primary_target, "127.0.0.1")
    assert where.port == c.sandbox.clusters["primary"].port
    with psycopg.connect(service_dsn(c)) as conn:
        assert conn.execute("SELECT current_user").fetchone()[0] == c.sandbox.app_user
    server, port = c.sandbox.dns_host, c.sandbox.dns_port
    ns = dns.query.udp(dns.message.make_query(c.zone_name, "NS"), server, port=port, timeout=2)
    assert ns.answer and ns.additional  # the zone's nameserver, with its address
    soa = dns.query.tcp(dns.message.make_query(c.zone_name, "SOA"), server, port=port, timeout=2)
    assert soa.answer[0].rdtype == dns.rdatatype.SOA
    missing = dns.query.udp(dns.message.make_query(f"nope.{c.zone_name}", "A"), server, port=port, timeout=2)
    assert missing.rcode() == dns.rcode.NXDOMAIN and missing.authority
    outside = dns.query.udp(dns.message.make_query("example.org", "A"), server, port=port, timeout=2)
    assert outside.rcode() == dns.rcode.REFUSED


def test_dig_agrees_with_dnspython(sandbox):
    if shutil.which("dig") is None:
        pytest.skip("dig not installed (apt-get install dnsutils); dnspython checks above still ran")
    c = sandbox.contract
    out = subprocess.run(["dig", "+short", f"@{c.sandbox.dns_host}", "-p", str(c.sandbox.dns_port),
                          c.database().dns.record_name, "A"], capture_output=True, text=True, timeout=10).stdout
    assert out.split()[0].rstrip(".") == resolve(c).target


def test_status_and_a_second_up_reuse_the_running_sandbox(sandbox, capsys):
    before = control.load(sandbox.state_dir).daemon["pid"]
    assert cli.main(["status", "--state-dir", str(sandbox.state_dir)]) == 0
    assert "sandbox up" in capsys.readouterr().out
    assert cli.main(["up", "--state-dir", str(sandbox.state_dir), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["reused"] is True and result["contract"] == json.loads(sandbox.outputs_path.read_text())
    assert control.load(sandbox.state_dir).daemon["pid"] == before
