"""Standby: an encrypted cross-region read replica in the DR region, locked down, with backups replicated."""
from scripts.preview.runtime import run_stack
from stack_values import config, example_values

INSTANCE = "aws:rds/instance:Instance"
PRIMARY_ARN = "arn:aws:rds:us-east-1:123456789012:db:orders-prod"


def test_standby_is_an_encrypted_replica_of_the_primary_in_the_dr_region(example):
    (db,) = example.of_type(INSTANCE)
    assert db.region == "us-west-2", db.urn
    assert db.inputs["identifier"] == "pilotlight-dr-orders-standby", db.urn
    assert db.inputs["replicateSourceDb"] == PRIMARY_ARN, db.urn
    assert db.inputs["storageEncrypted"] is True, db.urn
    assert db.inputs["kmsKeyId"] == example.document["keys"]["dr"]["arn"], db.urn
    assert db.inputs["instanceClass"] == "db.r6g.large", db.urn


def test_standby_safety_settings(example):
    (db,) = example.of_type(INSTANCE)
    assert db.inputs["deletionProtection"] is True, db.urn
    assert db.inputs["backupRetentionPeriod"] == 7 and db.inputs["backupRetentionPeriod"] > 0, db.urn
    assert db.inputs["publiclyAccessible"] is False, db.urn
    assert db.inputs["skipFinalSnapshot"] is False, db.urn
    assert db.protect and db.retain_on_delete, db.urn
    assert db.ignore_changes == ["replicateSourceDb"], db.urn
    assert "password" not in db.inputs, db.urn
    assert db.inputs["performanceInsightsEnabled"] is False and db.inputs["monitoringInterval"] == 0, db.urn


def test_standby_network_subnets_params_and_ingress_only_from_configured_sources(example):
    (db,) = example.of_type(INSTANCE)
    (subnets,) = example.of_type("aws:rds/subnetGroup:SubnetGroup")
    (params,) = example.of_type("aws:rds/parameterGroup:ParameterGroup")
    (sg,) = example.of_type("aws:ec2/securityGroup:SecurityGroup")
    assert {subnets.region, params.region, sg.region} == {"us-west-2"}
    assert subnets.inputs["subnetIds"] == ["subnet-0dr000000000000a1", "subnet-0dr000000000000b2"], subnets.urn
    assert db.inputs["dbSubnetGroupName"] == subnets.inputs["name"], db.urn
    assert params.inputs["family"] == "postgres15", params.urn
    assert {"name": "rds.force_ssl", "value": "1"} in params.inputs["parameters"], params.urn
    assert db.inputs["parameterGroupName"] == params.inputs["name"], db.urn
    assert sg.inputs["vpcId"] == "vpc-0dr0000000000000a" and "ingress" not in sg.inputs, sg.urn
    rules = example.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    assert [(r.inputs["cidrIpv4"], r.inputs["fromPort"], r.inputs["toPort"]) for r in rules] == [("10.20.0.0/16", 5432, 5432)]
    assert db.inputs["vpcSecurityGroupIds"] == [rules[0].inputs["securityGroupId"]]


def test_automated_backups_replicated_into_the_dr_region(example):
    (rep,) = example.of_type("aws:rds/instanceAutomatedBackupsReplication:InstanceAutomatedBackupsReplication")
    assert rep.region == "us-west-2", rep.urn
    assert rep.inputs["sourceDbInstanceArn"] == PRIMARY_ARN, rep.urn
    assert rep.inputs["kmsKeyId"] == example.document["keys"]["dr"]["arn"], rep.urn
    assert rep.inputs["retentionPeriod"] == 7, rep.urn


def test_optional_performance_insights_monitoring_and_security_groups():
    values = example_values()
    values["standby"].update(performanceInsights=True, monitoringIntervalSeconds=30, allowedSecurityGroupIds=["sg-0app"])
    run = run_stack(config(values))
    (db,) = run.of_type(INSTANCE)
    assert db.inputs["performanceInsightsEnabled"] is True
    assert db.inputs["performanceInsightsKmsKeyId"] == run.document["keys"]["dr"]["arn"]
    assert db.inputs["monitoringInterval"] == 30
    (role,) = [r for r in run.of_type("aws:iam/role:Role") if r.name == "standby-monitoring"]
    assert db.inputs["monitoringRoleArn"] == "arn:aws:iam::123456789012:role/" + role.inputs["name"]
    assert '"monitoring.rds.amazonaws.com"' in role.inputs["assumeRolePolicy"]
    sources = [r.inputs.get("referencedSecurityGroupId") for r in run.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")]
    assert "sg-0app" in sources
