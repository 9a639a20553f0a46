"""boto3 clients for a contract: the right region, the sandbox's endpoints, bounded retries.

Every AWS call the tools make goes through :func:`client`, so retries (botocore's standard
mode: exponential backoff with jitter on throttling, 5xx and connection errors) are set
once, and the sandbox is just a different endpoint. Route53 is a global service whose
control plane lives in us-east-1; the sandbox gives it its own endpoint (``route53``) so a
drill can take it away independently of, or together with, the primary region.
"""
from __future__ import annotations

import json
import os
import threading
from functools import lru_cache
from typing import Any

import boto3
from botocore.config import Config

from scripts.contract import Contract

MAX_ATTEMPTS = int(os.environ.get("PILOTLIGHT_AWS_MAX_ATTEMPTS", "5"))
SANDBOX_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def botocore_config(**overrides: Any) -> Config:
    base = dict(
        retries={"mode": "standard", "max_attempts": MAX_ATTEMPTS},
        connect_timeout=5,
        read_timeout=60,
        max_pool_connections=16,
    )
    base.update(overrides)
    return Config(**base)


def endpoint_for(contract: Contract, service: str, side: str) -> str | None:
    """None on real AWS; on the sandbox the per-region (or Route53) emulator endpoint."""
    if contract.sandbox is None:
        return None
    endpoints = contract.sandbox.aws_endpoints
    if service == "route53":
        return endpoints.get("route53") or endpoints[contract.regions["primary"]]
    return endpoints[contract.regions[side]]


def client(contract: Contract, service: str, side: str = "primary", **config: Any):
    """A boto3 client for ``service`` in the region of ``side`` ("primary" or "dr")."""
    region = contract.regions[side]
    endpoint = endpoint_for(contract, service, side)
    # JSON is the cache key: overrides may nest (retries={...}), which a tuple of items could not hash.
    return _client(service, region, endpoint, json.dumps(config, sort_keys=True))


_SESSION: boto3.session.Session | None = None
_SESSION_LOCK = threading.Lock()


@lru_cache(maxsize=64)
def _client(service: str, region: str, endpoint: str | None, config_json: str):
    kwargs: dict[str, Any] = {"region_name": region, "config": botocore_config(**json.loads(config_json))}
    if endpoint is not None:
        kwargs["endpoint_url"] = endpoint
        kwargs.update(SANDBOX_CREDENTIALS)
    # One Session per process: each new Session loads the service models and endpoint rules
    # again (0.1-0.3 s per client); a Session is not thread-safe, clients made from it are.
    global _SESSION
    with _SESSION_LOCK:
        if _SESSION is None:
            _SESSION = boto3.session.Session()
        return _SESSION.client(service, **kwargs)
