"""Stack config: the example parses with runbook defaults; every mistake is one line naming key, value and fix."""
import pytest
import yaml
from stack_values import EXAMPLE, config, example_values

from stacks.config import TOP_KEYS, ConfigError, load_stack_file, parse_config, parse_duration


def test_example_stack_file_parses_with_runbook_defaults():
    cfg = load_stack_file(EXAMPLE)
    assert (cfg.project, cfg.stack, cfg.primary_region, cfg.dr_region, cfg.active) == (
        "pilotlight", "dr", "us-east-1", "us-west-2", "primary",
    )
    tiers = cfg.vault.tiers
    assert {n: (t.prefix, t.interval_seconds, t.retention_days) for n, t in tiers.items()} == {
        "hourly": ("hourly/", 3600, 7),
        "daily": ("daily/", 86400, 30),
        "weekly": ("weekly/", 604800, 90),
        "monthly": ("monthly/", 2592000, 365),
    }
    # Instantly readable: GLACIER/DEEP_ARCHIVE would need RestoreObject before verify or restore.
    assert (tiers["monthly"].archive_after_days, tiers["monthly"].archive_class) == (90, "GLACIER_IR")
    assert {n: t.noncurrent_days for n, t in tiers.items()} == {"hourly": 7, "daily": 30, "weekly": 90, "monthly": 365}
    assert cfg.vault.bucket_suffix == "account"
    assert cfg.vault.object_lock_mode == "GOVERNANCE" and cfg.vault.object_lock_days == 7
    assert cfg.objectives["data-corruption"].rpo_seconds == 3600
    assert cfg.alarms.backup_age_slack_seconds == 7200
    assert cfg.account_id == "123456789012" and cfg.partition == "aws"
    assert cfg.databases[0].primary_identifier == "orders-prod"


def test_minimal_config_gets_safe_defaults():
    values = example_values()
    for key in ("vault", "alarms", "objectives", "active"):
        values.pop(key)
    values["dns"] = {"zoneId": "Z0123456789EXAMPLE", "zoneName": "example.com", "healthCheck": {"fqdn": "api.example.com"}}
    values["databases"] = [{"name": "billing", "primaryArn": "arn:aws:rds:us-east-1:123456789012:db:b", "primaryHost": "b.example.net"}]
    cfg = config(values)
    assert cfg.active == "primary"
    # The database itself decides failover by default (issue 10, item 9b), not the application endpoint.
    assert cfg.dns.ttl == 30 and cfg.dns.health_check.type == "DATABASE" and cfg.dns.health_check.fqdn == ""
    assert cfg.dns.routing_control is False
    assert [t.retention_days for t in cfg.vault.tiers.values()] == [7, 30, 90, 365]
    assert cfg.vault.infrequent_access_after_days == 30
    assert cfg.vault.abort_multipart_days == 1
    assert [t.noncurrent_days for t in cfg.vault.tiers.values()] == [7, 30, 90, 365]
    assert cfg.vault.tiers["monthly"].archive_class == "GLACIER_IR" and cfg.vault.bucket_suffix == "account"
    assert (cfg.vault.object_lock_mode, cfg.vault.object_lock_days) == ("GOVERNANCE", 7)
    db = cfg.databases[0]
    assert (db.db_name, db.port, db.record_name, db.instance_class) == ("billing", 5432, "db.billing.example.com", "db.r6g.large")
    assert set(cfg.objectives) == {"regional-outage", "database-loss", "data-corruption", "ransomware", "accidental-deletion"}


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("15m", 900), ("1h", 3600), ("7d", 604800), (" 2h ", 7200), (45, 45)]
)
def test_parse_duration(text, seconds):
    assert parse_duration(text, "x") == seconds


@pytest.mark.parametrize("text", ["5", "1w", "-1m", "", "h", None, True, 1.5])
def test_parse_duration_rejects_bad_values_naming_the_key(text):
    with pytest.raises(ConfigError, match=r"^pilotlight:objectives\.ransomware\.rpo = .*: use a duration with a unit"):
        parse_duration(text, "objectives.ransomware.rpo")


def _set(values, path, value):
    cur = values
    parts = path.split(".")
    for part in parts[:-1]:
        cur = cur[int(part)] if isinstance(cur, list) else cur.setdefault(part, {})
    cur[parts[-1]] = value
    return values


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("primaryRegion", "us-est-1", r"pilotlight:primaryRegion = 'us-est-1': unknown AWS region; did you mean us-"),
        ("drRegion", "us-east-1", r"pilotlight:drRegion = 'us-east-1': must differ from primaryRegion"),
        ("active", "secondary", r"pilotlight:active = 'secondary': use primary .* or dr"),
        ("vault.tiers.weekly.retentionDays", 3, r"pilotlight:vault\.tiers\.weekly\.retentionDays = 3: shorter than the weekly interval"),
        ("vault.tiers.monthly.retentionDays", 29, r"retentionDays = 29: shorter than the monthly interval"),
        ("vault.tiers.daily.prefix", "../", r"pilotlight:vault\.tiers\.daily\.prefix = '\.\./': use lowercase letters, digits"),
        ("vault.objectLock.mode", "STRICT", r"pilotlight:vault\.objectLock\.mode = 'STRICT': use GOVERNANCE"),
        ("vault.tiers.monthly.archiveClass", "TAPE", r"archiveClass = 'TAPE': use one of GLACIER_IR"),
        ("vault.tiers.monthly.archiveClass", "GLACIER", r"archiveClass = 'GLACIER': needs a RestoreObject request"),
        ("vault.tiers.monthly.archiveClass", "DEEP_ARCHIVE", r"'DEEP_ARCHIVE': needs a RestoreObject request .* use GLACIER_IR"),
        ("vault.tiers.daily.noncurrentDays", 29, r"noncurrentDays = 29: must be at least retentionDays \(30\)"),
        ("vault.noncurrentVersionDays", 30, r"vault\.noncurrentVersionDays: replaced by vault\.tiers\.<tier>\.noncurrentDays"),
        ("vault.bucketSuffix", "Ab", r"vault\.bucketSuffix = 'Ab': use 'account'"),
        ("vault.breakGlassPrincipalArn", "root", r"breakGlassPrincipalArn = 'root': use an IAM role or user ARN"),
        ("vault.tiers.monthly.archiveAfterDays", 40, r"archiveAfterDays = 40: objects must stay 30 days in STANDARD_IA"),
        ("vault.infrequentAccessAfterDays", 10, r"infrequentAccessAfterDays = 10: use 30 or more"),
        ("dns.ttl", 600, r"pilotlight:dns\.ttl = 600: use 1 to 300 seconds"),
        ("dns.healthCheck.intervalSeconds", 20, r"intervalSeconds = 20: Route 53 supports 10 or 30"),
        ("dns.healthCheck.type", "PING", r"healthCheck\.type = 'PING': use one of DATABASE, HTTPS"),
        ("dns.zoneId", "example.com", r"pilotlight:dns\.zoneId = 'example.com': use a hosted zone id"),
        ("objectives.dataCorruption.rpo", "5", r"pilotlight:objectives\.dataCorruption\.rpo = '5': use a duration with a unit"),
        ("alarms.backupAgeSlack", "soon", r"pilotlight:alarms\.backupAgeSlack = 'soon': use a duration"),
        ("alarms.email", "ops", r"pilotlight:alarms\.email = 'ops': use an email address"),
        ("standby.subnetIds", ["subnet-1"], r"pilotlight:standby\.subnetIds = .*: list at least two subnet ids"),
        ("standby.allowedCidrs", ["0.0.0.0/0"], r"never open the standby to the whole internet"),
        ("standby.allowedCidrs", ["10.0.0.1/8"], r"allowedCidrs = '10.0.0.1/8': use CIDR blocks"),
        ("standby.backupRetentionDays", 0, r"backupRetentionDays = 0: use 1 to 35: applied when the standby is promoted"),
        ("standby.monitoringIntervalSeconds", 7, r"monitoringIntervalSeconds = 7: use one of 0, 1, 5"),
        ("databases.0.primaryArn", "orders-prod", r"pilotlight:databases\[0\]\.primaryArn = 'orders-prod': use an RDS instance ARN"),
        ("databases.0.primaryArn", "arn:aws:rds:eu-west-1:123456789012:db:x", r"must be in primaryRegion us-east-1"),
        ("databases.0.name", "Orders_DB", r"pilotlight:databases\[0\]\.name = 'Orders_DB': use 1-24 lowercase"),
        ("databases.0.recordName", "db.orders.example.org", r"use a name below the hosted zone example\.com"),
        ("databases", [], r"pilotlight:databases = \[\]: list at least one database"),
    ],
)
def test_invalid_values_fail_with_one_line_naming_key_value_and_fix(path, value, message):
    values = _set(example_values(), path, value)
    with pytest.raises(ConfigError, match=message) as info:
        config(values)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("databases.0.primaryArn", r"pilotlight:databases\[0\]\.primaryArn is missing: set the primary RDS instance ARN"),
        ("databases.0.primaryHost", r"pilotlight:databases\[0\]\.primaryHost is missing"),
        ("primaryRegion", r"pilotlight:primaryRegion is missing: set an AWS region"),
        ("dns.zoneId", r"pilotlight:dns\.zoneId is missing"),
        ("standby.vpcId", r"pilotlight:standby\.vpcId is missing"),
    ],
)
def test_missing_required_values_name_the_key(path, message):
    values = example_values()
    parts = path.split(".")
    cur = values
    for part in parts[:-1]:
        cur = cur[int(part)] if isinstance(cur, list) else cur[part]
    del cur[parts[-1]]
    with pytest.raises(ConfigError, match=message):
        config(values)


def test_unknown_keys_are_rejected_with_did_you_mean():
    with pytest.raises(ConfigError, match=r"^pilotlight:drRegoin: unknown key; did you mean 'drRegion'\?$"):
        config(example_values() | {"drRegoin": "us-west-2"})
    values = _set(example_values(), "vault.tiers.daily.retention", 30)
    with pytest.raises(ConfigError, match=r"pilotlight:vault\.tiers\.daily\.retention: unknown key; did you mean 'retentionDays'"):
        config(values)


def test_other_namespaces_are_ignored():
    cfg = parse_config(example_values() | {"aws:region": "us-east-1"}, project="p", stack="s")
    assert cfg.project == "p"


def test_duplicate_databases_are_rejected():
    values = example_values()
    values["databases"].append(dict(values["databases"][0]))
    with pytest.raises(ConfigError, match=r"databases\[1\]\.name = 'orders': duplicate name"):
        config(values)


def test_a_password_is_refused_because_failover_never_rotates_credentials():
    """Issue 10, item 13: the stack handles no password; a set one is refused, never echoed."""
    with pytest.raises(ConfigError, match=r"^pilotlight:dbPassword: no longer used .*pulumi config rm") as info:
        config(example_values() | {"dbPassword": "hunter2"})
    assert "hunter2" not in str(info.value)


def test_parameter_group_family_must_match_the_declared_engine_version():
    """Issue 10, item 15: a family of another major version is a one-line preview error."""
    values = example_values()
    values["databases"][0]["engineVersion"] = "16.3"
    with pytest.raises(ConfigError, match=r"^pilotlight:standby\.parameterGroupFamily = 'postgres15': "
                                          r"databases\[0\]\.engineVersion is 16\.3: use postgres16") as info:
        config(values)
    assert "\n" not in str(info.value)
    values["standby"]["parameterGroupFamily"] = "postgres16"
    assert config(values).databases[0].engine_major == "16"


def test_promotion_settings_and_generation_default_safely():
    cfg = config()
    assert (cfg.standby.multi_az_when_promoted, cfg.standby.max_allocated_storage_gb) == (True, 0)
    assert cfg.databases[0].generation == 0
    values = example_values()
    values["databases"][0]["generation"] = -1
    with pytest.raises(ConfigError, match=r"databases\[0\]\.generation = -1: use the generation"):
        config(values)


def test_cloudwatch_health_check_needs_alarm_name():
    values = _set(example_values(), "dns.healthCheck.type", "CLOUDWATCH_METRIC")
    with pytest.raises(ConfigError, match=r"pilotlight:dns\.healthCheck\.alarmName is missing"):
        config(values)
    cfg = config(_set(values, "dns.healthCheck.alarmName", "app-5xx"))
    assert cfg.dns.health_check.alarm_name == "app-5xx"


def test_stack_file_errors_are_one_line(tmp_path):
    bad = tmp_path / "Pulumi.prod.yaml"
    bad.write_text("config: [\n")
    (tmp_path / "Pulumi.yaml").write_text("name: x\nruntime: python\n")
    with pytest.raises(ConfigError, match=r"Pulumi\.prod\.yaml: not valid YAML"):
        load_stack_file(bad)
    with pytest.raises(ConfigError, match="named Pulumi.<stack>.yaml"):
        load_stack_file(tmp_path / "Pulumi.yaml")


def test_project_file_declares_only_known_keys():
    project = yaml.safe_load((EXAMPLE.parent / "Pulumi.yaml").read_text())
    assert project["name"] == "pilotlight" and project["runtime"]["name"] == "python"
    assert set(project["config"]) <= set(TOP_KEYS)
    assert project["config"]["active"]["default"] == "primary"


def test_contacts_are_parsed_in_escalation_order_and_mistakes_name_the_key():
    cfg = config()
    assert [c.name for c in cfg.contacts] == ["Database on-call", "Platform lead", "Head of engineering"]
    assert cfg.contacts[0].escalate_after_seconds == 900 and cfg.contacts[2].escalate_after_seconds is None
    for bad, message in (([{"name": "A", "role": "r"}], "pilotlight:contacts[0].reach is missing"),
                         ([{"name": "A", "role": "r", "reach": "x", "phone": 1}],
                          "pilotlight:contacts[0].phone: unknown key"),
                         ([{"name": "A", "role": "r", "reach": "x"}] * 2, "pilotlight:contacts[1].name = 'A'"),
                         ({"name": "A"}, "pilotlight:contacts = ")):
        with pytest.raises(ConfigError) as err:
            config(contacts=bad)
        assert message in str(err.value)


def test_the_credentials_secret_lives_in_the_primary_region():
    values = example_values()
    values["databases"][0]["credentialsSecretArn"] = "arn:aws:secretsmanager:us-west-2:123456789012:secret:orders-AbCdEf"
    with pytest.raises(ConfigError, match=r"credentialsSecretArn .*primaryRegion us-east-1.*replicate"):
        config(values)


def test_iam_auth_needs_the_primarys_resource_id_and_a_secret_key_needs_a_secret():
    values = example_values()
    db = values["databases"][0]
    db.pop("credentialsSecretArn")
    db.update(iamAuth=True, resourceId="orders-prod")
    with pytest.raises(ConfigError, match=r"resourceId = 'orders-prod': iamAuth needs the primary's DbiResourceId"):
        config(values)
    db.update(resourceId="db-ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    assert config(values).databases[0].resource_id == "db-ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    db.update(iamAuth=False, credentialsSecretKmsKeyArn="arn:aws:kms:us-east-1:123456789012:key/abc")
    with pytest.raises(ConfigError, match="only with credentialsSecretArn"):
        config(values)
