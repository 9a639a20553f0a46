"""The outputs contract: a valid document parses; a broken one fails with one line naming the key."""
import json
from pathlib import Path

import pytest

from scripts.contract import CONTRACT_VERSION, ContractError, load_file, parse

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
