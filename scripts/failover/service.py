"""Resolve the service name the application connects to, through DNS, as the application would.

Drills measure RTO through this (the heartbeat writer connects via :func:`service_dsn`), so it
asks DNS every time - no cache - and reports which side the name points at. On the sandbox it
asks the contract's resolver (``access.dnsResolver``) when it names one, else the system resolver.
The answer is mapped back to a side by the contract's ``dns.primaryTarget`` / ``dns.drTarget``,
and the port is that side's endpoint port (two instances may share an address).
"""
from __future__ import annotations

from dataclasses import dataclass

import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver
from psycopg.conninfo import make_conninfo

from scripts.common import Exit, PilotlightError
from scripts.contract import Contract, Database
from scripts.postgres.dsn import login

DEFAULT_TIMEOUT = 2.0


@dataclass(frozen=True)
class Resolved:
    """Where the service name points now: ``side`` is "primary", "dr" or None (neither target)."""

    side: str | None
    target: str
    address: str
    port: int


def _database(contract: Contract, db: Database | str | None) -> Database:
    return db if isinstance(db, Database) else contract.database(db)


def _resolver(contract: Contract, nameserver: str | None, timeout: float) -> dns.resolver.Resolver:
    """No cache: every call asks the server, like a client whose TTL ran out."""
    if nameserver is not None:
        host, _, port = nameserver.partition(":")
        address = (host, int(port or 53))
    else:
        address = contract.access.dns_resolver
    resolver = dns.resolver.Resolver(configure=address is None)
    if address is not None:
        resolver.nameservers, resolver.port = [address[0]], address[1]
    resolver.cache = None
    resolver.lifetime = timeout
    resolver.timeout = timeout
    return resolver


def resolve(contract: Contract, db: Database | str | None = None, nameserver: str | None = None,
            timeout: float = DEFAULT_TIMEOUT) -> Resolved:
    """Resolve ``db``'s record name (default: the first database); ``nameserver`` is "HOST[:PORT]".

    Raises PilotlightError (exit NETWORK) if DNS does not answer or the name does not resolve.
    """
    db = _database(contract, db)
    resolver = _resolver(contract, nameserver, timeout)
    try:
        answer = resolver.resolve(db.dns.record_name, "A", search=False)
    except dns.exception.DNSException as exc:
        where = ", ".join(f"{ns}:{resolver.port}" for ns in resolver.nameservers)
        raise PilotlightError(f"cannot resolve {db.dns.record_name} via {where}: {exc}", Exit.NETWORK) from None
    target = _first_target(answer, dns.name.from_text(db.dns.record_name))
    side = {_norm(db.dns.primary_target): "primary", _norm(db.dns.dr_target): "dr"}.get(_norm(target))
    port = db.port_of(side) if side is not None else db.port
    return Resolved(side=side, target=target, address=answer[0].address, port=port)


def _first_target(answer: dns.resolver.Answer, qname: dns.name.Name) -> str:
    """The service record's own CNAME target (RDS endpoints may CNAME further; we want the first hop)."""
    for rrset in answer.response.answer:
        if rrset.rdtype == dns.rdatatype.CNAME and rrset.name == qname:
            return rrset[0].target.to_text(omit_final_dot=True)
    return qname.to_text(omit_final_dot=True)


def _norm(name: str) -> str:
    return name.rstrip(".").lower()


def service_dsn(contract: Contract, db: Database | str | None = None, dbname: str | None = None,
                connect_timeout: int = 3) -> str:
    """A DSN for the application user through the service name as DNS answers it right now.

    ``host`` is the target name (TLS verifies against it on AWS), ``hostaddr`` the address DNS gave,
    so libpq does not look the name up a second time.
    """
    db = _database(contract, db)
    where = resolve(contract, db)
    params = {"host": where.target, "hostaddr": where.address, "port": where.port, "dbname": dbname or db.db_name,
              "connect_timeout": connect_timeout, "application_name": "pilotlight-service",
              **login(contract, db=db, side=where.side or "primary", host=where.target, port=where.port)}
    return make_conninfo(**params)
