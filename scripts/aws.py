"""boto3 clients for a contract: the right region, the contract's endpoints, bounded retries.

Every AWS call the tools make goes through :func:`client`, so retries (botocore's standard
mode: exponential backoff with jitter on throttling, 5xx and connection errors) are set
once. Endpoints and credentials come from the contract's ``access`` section when it has one
(VPC interface endpoints, an emulator, a shared credentials file), else boto3's defaults.
Route53 is a global service whose control plane lives in us-east-1; ``access.awsEndpoints``
may name it on its own (``route53``), so its control plane can fail apart from the region.
"""
from __future__ import annotations

import json
import os
import threading
from functools import lru_cache
from typing import Any

import boto3
import botocore.session
from botocore.config import Config

from scripts.contract import Contract

MAX_ATTEMPTS = int(os.environ.get("PILOTLIGHT_AWS_MAX_ATTEMPTS", "5"))


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
    """The contract's endpoint for ``service`` in ``side``'s region; None means AWS's public one."""
    endpoints = contract.access.aws_endpoints
    if service == "route53":
        return endpoints.get("route53") or endpoints.get(contract.regions["primary"])
    return endpoints.get(contract.regions[side])


def client(contract: Contract, service: str, side: str = "primary", **config: Any):
    """A boto3 client for ``service`` in the region of ``side`` ("primary" or "dr")."""
    region = contract.regions[side]
    endpoint = endpoint_for(contract, service, side)
    # JSON is the cache key: overrides may nest (retries={...}), which a tuple of items could not hash.
    return _client(service, region, endpoint, contract.access.credentials_file, json.dumps(config, sort_keys=True))


_SESSIONS: dict[str | None, boto3.session.Session] = {}
_SESSION_LOCK = threading.Lock()


@lru_cache(maxsize=64)
def _client(service: str, region: str, endpoint: str | None, credentials_file: str | None, config_json: str):
    kwargs: dict[str, Any] = {"region_name": region, "config": botocore_config(**json.loads(config_json))}
    if endpoint is not None:
        kwargs["endpoint_url"] = endpoint
    # One Session per credentials source: each new Session loads the service models and endpoint
    # rules again (0.1-0.3 s per client); a Session is not thread-safe, clients made from it are.
    with _SESSION_LOCK:
        if credentials_file not in _SESSIONS:
            core = botocore.session.Session()
            if credentials_file is not None:
                core.set_config_variable("credentials_file", credentials_file)
            _SESSIONS[credentials_file] = boto3.session.Session(botocore_session=core)
        return _SESSIONS[credentials_file].client(service, **kwargs)
