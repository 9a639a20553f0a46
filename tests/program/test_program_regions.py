"""Providers and regions: stacks/ creates one provider per side; every resource lands where it belongs."""
import json
from collections import defaultdict

from stack_values import ROOT

PRIMARY, DR = "us-east-1", "us-west-2"
EXPECTED = {
    "aws:kms/key:Key": {PRIMARY, DR},  # the vault's multi-region key (primary), an alarm key per region
    "aws:kms/replicaKey:ReplicaKey": {DR},
    "aws:kms/alias:Alias": {PRIMARY, DR},
    "aws:s3/bucket:Bucket": {PRIMARY, DR},
    "aws:s3/bucketReplicationConfig:BucketReplicationConfig": {PRIMARY},
    "aws:iam/role:Role": {PRIMARY},
    "aws:iam/rolePolicy:RolePolicy": {PRIMARY},
    "aws:rds/instance:Instance": {DR},
    "aws:rds/instanceAutomatedBackupsReplication:InstanceAutomatedBackupsReplication": {DR},
    "aws:rds/subnetGroup:SubnetGroup": {DR},
    "aws:rds/parameterGroup:ParameterGroup": {DR},
    "aws:ec2/securityGroup:SecurityGroup": {DR},
    "aws:sns/topic:Topic": {PRIMARY, DR},
    # The audit trail is multi-region, managed from the primary; EventBridge rules sit where the calls happen.
    "aws:cloudtrail/trail:Trail": {PRIMARY},
    "aws:cloudwatch/eventRule:EventRule": {PRIMARY, DR},
    # Route 53 is global; its resources ride the primary provider.
    "aws:route53/healthCheck:HealthCheck": {PRIMARY},
    "aws:route53/record:Record": {PRIMARY},
}


def test_exactly_two_providers_created_by_the_stack_not_by_components(example):
    providers = [r for r in example.resources.values() if r.type == "pulumi:providers:aws"]
    assert sorted((p.name, p.inputs["region"]) for p in providers) == [("dr", DR), ("primary", PRIMARY)]
    assert all("pilotlight:dr:" not in p.parent for p in providers), [p.urn for p in providers]
    for p in providers:
        assert json.loads(p.inputs["defaultTags"])["tags"] == {"pilotlight:project": "pilotlight", "pilotlight:stack": "dr"}


def test_every_aws_resource_uses_one_of_the_stack_providers(example):
    for res in example.resources.values():
        if res.type.startswith("aws:"):
            assert res.region in (PRIMARY, DR), f"{res.urn} uses provider {res.provider!r}"


def test_each_resource_type_lives_in_its_region(example):
    seen = defaultdict(set)
    for res in example.resources.values():
        seen[res.type].add(res.region)
    for typ, regions in EXPECTED.items():
        assert seen[typ] == regions, f"{typ}: {sorted(seen[typ])}"
    for res in example.resources.values():
        if res.type == "aws:s3/bucket:Bucket":
            assert f"-{res.region}-" in res.inputs["bucket"], res.urn


def test_every_child_is_parented_by_its_component_and_named_from_it(example):
    for res in example.resources.values():
        if res.type.startswith("aws:"):
            parent = example.resources.get(res.parent)
            assert parent is not None and parent.type.startswith("pilotlight:dr:"), f"{res.urn} is not inside a component"
            assert res.name.startswith(f"{parent.name}-"), res.urn


def test_components_never_build_providers():
    """Providers are created once in stacks/ and passed in; a component building one would hide a region."""
    for path in sorted((ROOT / "components").glob("*.py")):
        assert "aws.Provider(" not in path.read_text(), path.name


def test_the_program_invokes_no_provider_function(example, failed_over):
    """Everything the program needs is config or another resource's output: a preview needs no credentials."""
    assert example.calls == [] and failed_over.calls == []
