"""Ask the zone's authoritative nameservers directly what the service name answers.

A cutover is done when every authoritative server hands out the new target — not when a
(possibly caching) resolver does. So we look up the zone's NS set, resolve each server,
and query each one over UDP with recursion off. When the contract names a resolver
(``access.dnsResolver``) the NS lookup goes there, and the servers are asked on
``access.authoritativePort`` (the sandbox's DNS server is its zone's only authoritative server).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rdatatype
import dns.resolver

from scripts.common import PilotlightError, Exit
from scripts.contract import Contract, Database

QUERY_TIMEOUT = 1.0


@dataclass(frozen=True)
class Server:
    name: str
    address: str
    port: int = 53

    def __str__(self) -> str:
        return f"{self.name}({self.address}:{self.port})"


def _bootstrap(contract: Contract) -> tuple[dns.resolver.Resolver, int]:
    """Where to look the NS set up (the contract's resolver, else the system's), and the servers' port."""
    access = contract.access
    if access.dns_resolver is None:
        return dns.resolver.Resolver(), access.authoritative_port
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers, resolver.port = [access.dns_resolver[0]], access.dns_resolver[1]
    return resolver, access.authoritative_port


def authoritative_servers(contract: Contract) -> list[Server]:
    """Every authoritative nameserver of the zone: NS lookup, then each server's address."""
    resolver, port = _bootstrap(contract)
    resolver.cache, resolver.lifetime = None, 3.0
    try:
        names = sorted(str(r.target) for r in resolver.resolve(contract.zone_name, "NS", search=False))
        servers = []
        for name in names:
            address = next(iter(resolver.resolve(name, "A", search=False))).address
            servers.append(Server(name.rstrip("."), address, port))
    except dns.exception.DNSException as exc:
        raise PilotlightError(f"cannot list the nameservers of {contract.zone_name}: {exc}", Exit.NETWORK) from None
    return servers


def answer(server: Server, name: str, timeout: float = QUERY_TIMEOUT) -> str | None:
    """The target ``name`` answers on ``server``: the CNAME target, else the first A address.

    None when the server has no answer for the name; raises DNSException when unreachable.
    """
    query = dns.message.make_query(name, dns.rdatatype.A)
    query.flags &= ~dns.flags.RD  # an authoritative answer, not a recursive one
    response = dns.query.udp(query, server.address, port=server.port, timeout=timeout)
    qname = dns.name.from_text(name)
    for rrset in response.answer:
        if rrset.name == qname and rrset.rdtype == dns.rdatatype.CNAME:
            return str(rrset[0].target).rstrip(".")
    for rrset in response.answer:
        if rrset.rdtype == dns.rdatatype.A:
            return rrset[0].address
    return None


def answers(contract: Contract, db: Database, servers: list[Server] | None = None) -> dict[str, str | None]:
    """What each authoritative server answers for the service name right now ("error: ..." if unreachable)."""
    result: dict[str, str | None] = {}
    for server in servers or authoritative_servers(contract):
        try:
            result[str(server)] = answer(server, db.dns.record_name)
        except (dns.exception.DNSException, OSError) as exc:
            result[str(server)] = f"error: {type(exc).__name__}"
    return result


def side_of(db: Database, target: str | None) -> str | None:
    """Which side a DNS answer names."""
    if target is None:
        return None
    target = target.rstrip(".").lower()
    if target == db.dns.primary_target.rstrip(".").lower():
        return "primary"
    if target == db.dns.dr_target.rstrip(".").lower():
        return "dr"
    return None


def answering_side(contract: Contract, db: Database) -> str | None:
    """The side every authoritative server agrees on, or None when they disagree or fail."""
    sides = {side_of(db, t) for t in answers(contract, db).values()}
    return sides.pop() if len(sides) == 1 else None


def wait_for(contract: Contract, db: Database, side: str, timeout: float, interval: float = 0.1) -> dict[str, str | None]:
    """Poll every authoritative server until all answer ``side``'s target; raise on timeout."""
    servers = authoritative_servers(contract)
    deadline = time.monotonic() + timeout
    while True:
        seen = answers(contract, db, servers)
        if all(side_of(db, t) == side for t in seen.values()):
            return seen
        if time.monotonic() >= deadline:
            shown = ", ".join(f"{s} -> {t}" for s, t in seen.items())
            raise PilotlightError(
                f"DNS did not answer the {side} target within {timeout:.0f} s ({shown})", Exit.NETWORK
            )
        time.sleep(interval)
