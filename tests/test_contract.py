"""The outputs contract: a valid document parses; a broken one fails with one line naming the key."""
import json
from pathlib import Path

import pytest

from scripts.contract import ContractError, load_file, parse
from stacks.vocabulary import CONTRACT_VERSION

FIXTURE = Path(__file__).parent / "fixtures" / "outputs.json"


def doc():
    return json.loads(FIXTURE.read_text())


def test_example_outputs_parse_into_typed_contract():
    contract = parse(doc())
    assert contract.regions == {"primary": "us-east-1", "dr": "us-west-2"}
    assert contract.buckets["dr"].bucket == "pilotlight-dr-vault-us-west-2-123456789012"
    assert contract.tiers["daily"].interval_seconds == 86400
    assert contract.database().dns.record_name == "db.orders.example.com"
    assert contract.objectives["regional-outage"].rto_seconds == 900
    assert contract.sandbox is None and contract.aws_endpoint("primary") is None


def test_wrong_contract_version_names_both_versions():
    bad = doc() | {"contractVersion": 99}
    with pytest.raises(ContractError, match=f"99.*version {CONTRACT_VERSION}"):
        parse(bad)


def test_missing_key_names_its_path():
    bad = doc()
    del bad["vault"]["dr"]["bucket"]
    with pytest.raises(ContractError, match="'vault.dr.bucket'"):
        parse(bad)


def test_malformed_bucket_and_region_are_refused():
    bad = doc()
    bad["vault"]["primary"]["bucket"] = "Bad_Bucket"
    with pytest.raises(ContractError, match="not a valid bucket name"):
        parse(bad)
    bad = doc()
    bad["regions"]["dr"] = "mars-1"
    with pytest.raises(ContractError, match="not an AWS region"):
        parse(bad)


def test_missing_and_non_json_files_give_one_line(tmp_path):
    with pytest.raises(ContractError, match="not found"):
        load_file(tmp_path / "nope.json")
    junk = tmp_path / "junk.json"
    junk.write_text("{not json")
    with pytest.raises(ContractError, match="is not JSON"):
        load_file(junk)


def test_unknown_database_lists_the_known_ones():
    with pytest.raises(ContractError, match="protects: orders"):
        parse(doc()).database("billing")


def test_application_and_smoke_checks_parse_from_the_contract():
    db = parse(doc()).database()
    assert db.application.kind == "command" and db.application.stop[:2] == ("sh", "-c")
    assert [(c.name, c.kind, c.expect, c.max_age_seconds) for c in db.smoke_checks] == [
        ("orders readable", "sql", "true", None), ("orders fresh", "freshness", None, 21600)]
    without = doc()
    for key in ("application", "smokeChecks"):
        del without["databases"][0][key]
    bare = parse(without).database()
    assert bare.application is None and bare.smoke_checks == ()  # optional: older producers omit them


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["application"].update(kind="lambda"), "'databases.0.application.kind' must be one of ecs"),
    (lambda d: d["application"].update(start="x"), "'databases.0.application.start' must be a command line"),
    (lambda d: d.update(application={"kind": "ecs", "timeoutSeconds": 5, "cluster": "c", "service": "s",
                                     "region": "eu-west-1"}), "'databases.0.application.region' = 'eu-west-1'"),
    (lambda d: d["smokeChecks"][1].pop("maxAgeSeconds"), "'databases.0.smokeChecks.1.maxAgeSeconds'"),
    (lambda d: d["smokeChecks"][0].update(kind="ping"), "'databases.0.smokeChecks.0.kind' must be one of sql"),
    (lambda d: d["smokeChecks"][0].update(expect=True), "'databases.0.smokeChecks.0.expect' must be a string"),
])
def test_a_broken_application_or_smoke_check_names_its_path(edit, message):
    bad = doc()
    edit(bad["databases"][0])
    with pytest.raises(ContractError, match=message.replace(".", r"\.").replace("(", r"\(")):
        parse(bad)
