"""databases[].application and databases[].smokeChecks: parsed into frozen dataclasses, every mistake one line."""
import dataclasses

import pytest
from stack_values import EXAMPLE, config, example_values

from stacks.config import ConfigError, load_stack_file
from stacks.outputs import application_sections


def with_db(**keys):
    values = example_values()
    values["databases"] = [values["databases"][0] | keys]
    return values


def test_the_example_declares_a_command_hook_and_smoke_checks_and_exports_them():
    db = load_stack_file(EXAMPLE).databases[0]
    assert db.application.kind == "command" and db.application.stop[0] == "sh" and db.application.timeout_seconds == 60
    assert [(c.name, c.kind) for c in db.smoke_checks] == [("orders readable", "sql"), ("orders fresh", "freshness")]
    assert db.smoke_checks[0].expect == "true" and db.smoke_checks[1].max_age_seconds == 6 * 3600
    with pytest.raises(dataclasses.FrozenInstanceError):
        db.application.kind = "ecs"
    exported = application_sections(db)
    assert exported["application"]["stop"] == list(db.application.stop)
    assert exported["smokeChecks"][1] == {"name": "orders fresh", "kind": "freshness", "timeoutSeconds": 10,
                                          "sql": "select max(created_at) from orders", "maxAgeSeconds": 21600}


def test_each_kind_parses_with_its_defaults():
    ecs = config(with_db(application={"kind": "ecs", "cluster": "prod", "service": "orders-api"})).databases[0]
    assert (ecs.application.region, ecs.application.timeout_seconds) == ("us-east-1", 300)
    k8s = config(with_db(application={"kind": "kubernetes", "deployment": "orders-api"})).databases[0].application
    assert (k8s.namespace, k8s.context) == ("default", None)
    unit = config(with_db(application={"kind": "systemd", "unit": "orders-api.service", "timeout": "30s"}))
    assert unit.databases[0].application.contract() == {"kind": "systemd", "timeoutSeconds": 30,
                                                         "unit": "orders-api.service"}
    checks = config(with_db(smokeChecks=[{"name": "health", "url": "http://127.0.0.1:8080/health"},
                                         {"name": "count", "sql": "select count(*) from orders", "expect": 5}]))
    url, count = checks.databases[0].smoke_checks
    assert (url.kind, url.expect_status, url.timeout_seconds) == ("url", 200, 10) and count.expect == "5"


@pytest.mark.parametrize("application, message", [
    ({"kind": "lambda"}, r"databases\[0\].application.kind = 'lambda': use one of ecs, kubernetes, systemd, command"),
    ({}, r"databases\[0\].application.kind is missing: say how the application is stopped"),
    ({"kind": "ecs", "service": "api"}, r"application.cluster is missing: set the ECS cluster"),
    ({"kind": "ecs", "cluster": "c", "service": "api", "region": "eu-west-1"},
     r"application.region = 'eu-west-1': use primaryRegion us-east-1 or drRegion us-west-2"),
    ({"kind": "ecs", "cluster": "c", "service": "api", "unit": "x"}, r"application.unit: not used by kind ecs"),
    ({"kind": "command", "stop": ["app-ctl", "stop"]}, r"application.start is missing: set the command line"),
    ({"kind": "command", "stop": "app-ctl stop", "start": ["a"]}, r"application.stop = .*use a command line as a list"),
    ({"kind": "command", "stop": ["app-ctl", "--token=abc123"], "start": ["a"]},
     r"application.stop = '\(a command line with a credential\)': never put a password or token on a command line"),
    ({"kind": "kubernetes", "deployment": "Orders_API"}, r"application.deployment = 'Orders_API': use a Kubernetes name"),
    ({"kind": "systemd", "unit": "x", "timeout": "2d"}, r"application.timeout = '2d': use 1s to 1h"),
    ({"kind": "systemd", "unit": "x", "stopp": ["y"]}, r"application.stopp: unknown key; did you mean 'stop'\?"),
])
def test_application_mistakes_name_the_key_and_the_fix(application, message):
    with pytest.raises(ConfigError, match=message) as err:
        config(with_db(application=application))
    assert "\n" not in str(err.value) and str(err.value).startswith("pilotlight:databases[0].application")


@pytest.mark.parametrize("checks, message", [
    ({"name": "x"}, r"smokeChecks = .*use a list of checks"),
    ([{"name": "x"}], r"smokeChecks\[0\]: give exactly one of sql .* found none"),
    ([{"name": "x", "sql": "select 1", "url": "http://a/"}], r"found sql, url"),
    ([{"name": "x", "sql": "select 1"}], r"smokeChecks\[0\].expect is missing: set the value"),
    ([{"name": "x", "freshness": "select now()"}], r"smokeChecks\[0\].maxAge is missing"),
    ([{"name": "x", "freshness": "select now()", "maxAge": "soon"}], r"maxAge = 'soon': use a duration"),
    ([{"name": "x", "sql": "select 1; drop table orders", "expect": 1}], r"use one statement"),
    ([{"name": "x", "url": "ftp://host/x"}], r"url = 'ftp://host/x': use an http:// or https:// URL"),
    ([{"name": "x", "url": "https://u:pw@host/x"}], r"url = '\(a URL with credentials\)'"),
    ([{"name": "x", "url": "https://host/x", "expectStatus": 99}], r"expectStatus = 99: use an integer from 100"),
    ([{"name": "x", "url": "https://host/x", "expect": 1}], r"smokeChecks\[0\].expect: not used by a url check"),
    ([{"name": "x", "sql": "select 1", "expect": 1}, {"name": "x", "url": "https://h/"}],
     r"smokeChecks\[1\].name = 'x': every smoke check of a database needs its own name"),
])
def test_smoke_check_mistakes_name_the_key_and_the_fix(checks, message):
    with pytest.raises(ConfigError, match=message) as err:
        config(with_db(smokeChecks=checks))
    assert "\n" not in str(err.value)
