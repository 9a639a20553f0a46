"""The sandbox's authoritative DNS server: answers for the hosted zone as Route53 would.

moto stores the zone's record sets but serves no DNS. This server (UDP and TCP on
127.0.0.1, wire format by dnspython) reads the record sets from moto directly - Route53's
answers are a global data plane, so they must keep working while a region proxy is blocked -
at most ``CACHE_SECONDS`` old, and answers the way Route53 does:

- failover record sets: the PRIMARY one while its health check is healthy, else the
  SECONDARY one if healthy; if both are unhealthy, Route53 answers as if both were healthy
  (PRIMARY). Health comes from :mod:`scripts.sandbox.health`, not from moto;
- a CNAME whose target lies in the zone is followed inside the answer (one lookup for clients);
- NXDOMAIN / NODATA with the SOA in the authority section; REFUSED outside the zone.

NS and SOA at the apex are synthesized: moto's delegation set names (``ns-….awsdns-….com``)
do not resolve offline, and the sandbox zone has exactly one authoritative server - this
one - so the apex NS is ``ns.<zone>`` with an A record of 127.0.0.1 (port: ``sandbox.dns.port``).
Alias records are not emulated.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import struct
import threading
import time
from typing import Any

import boto3
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from scripts.aws import botocore_config
from scripts.sandbox.state import EMULATOR_CREDENTIALS
from scripts.sandbox.health import HealthProber
from scripts.sandbox.state import ContractWatcher

log = logging.getLogger("pilotlight.sandbox.dns")
CACHE_SECONDS = 0.2
SOA_TIMERS = "7200 900 1209600 86400"  # Route53's defaults: refresh retry expire minimum
MAX_CHAIN = 8


class ZoneView:
    """The zone's records as Route53 would serve them now: moto's record sets + emulated health."""

    def __init__(self, moto_url: str, watcher: ContractWatcher, prober: HealthProber):
        self._route53 = boto3.session.Session().client(
            "route53", region_name="us-east-1", endpoint_url=moto_url,
            config=botocore_config(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=1, read_timeout=5),
            **EMULATOR_CREDENTIALS)
        self._watcher = watcher
        self._prober = prober
        self._lock = threading.Lock()
        self._fetched = 0.0
        self._zone: tuple[dns.name.Name, list[dict[str, Any]]] | None = None

    def zone(self) -> tuple[dns.name.Name, list[dict[str, Any]]] | None:
        """(origin, record sets) at most CACHE_SECONDS old; None before `up` wrote the contract."""
        with self._lock:
            if time.monotonic() - self._fetched > CACHE_SECONDS:
                contract = self._watcher.get()
                if contract is None:
                    return None
                records = []
                pages = self._route53.get_paginator("list_resource_record_sets").paginate(HostedZoneId=contract.zone_id)
                for page in pages:
                    records.extend(page["ResourceRecordSets"])
                self._zone = (dns.name.from_text(contract.zone_name), records)
                self._fetched = time.monotonic()
            return self._zone

    def respond(self, wire: bytes, udp: bool = False) -> bytes | None:
        """The wire answer to a wire query; over UDP truncated (TC) beyond the client's buffer size."""
        try:
            query = dns.message.from_wire(wire)
        except Exception:  # noqa: BLE001 - garbage in: no answer, like any server
            return None
        response = dns.message.make_response(query)
        response.flags &= ~dns.flags.RA
        if len(query.question) != 1:
            response.set_rcode(dns.rcode.FORMERR)
            return response.to_wire()
        try:
            zone = self.zone()
        except Exception as exc:  # noqa: BLE001 - emulator down: SERVFAIL, as an unreachable backend would
            log.warning("dns: cannot read records from moto: %s", exc)
            zone = None
        if zone is None:
            response.set_rcode(dns.rcode.SERVFAIL)
            return response.to_wire()
        _answer(response, query.question[0], zone[0], self._records(*zone))
        limit = max(512, query.payload if query.edns >= 0 else 512) if udp else 65535
        try:
            return response.to_wire(max_size=limit)
        except dns.exception.TooBig:
            response.answer, response.authority, response.additional = [], [], []
            response.flags |= dns.flags.TC
            return response.to_wire()

    def _records(self, origin: dns.name.Name, raw: list[dict[str, Any]]) -> dict[tuple[dns.name.Name, int], dns.rrset.RRset]:
        """One RRset per (name, type): failover picked by health, apex NS/SOA synthesized."""
        groups: dict[tuple[dns.name.Name, int], list[dict[str, Any]]] = {}
        for rec in raw:
            if "ResourceRecords" not in rec:
                continue  # alias records: not emulated
            name = dns.name.from_text(rec["Name"].replace("\\052", "*"))
            rdtype = dns.rdatatype.from_text(rec["Type"])
            if name == origin and rdtype in (dns.rdatatype.NS, dns.rdatatype.SOA):
                continue
            groups.setdefault((name, rdtype), []).append(rec)
        out = {}
        for (name, rdtype), recs in groups.items():
            chosen = self._choose(recs)
            out[(name, rdtype)] = dns.rrset.from_text_list(
                name, int(chosen.get("TTL", 300)), dns.rdataclass.IN, rdtype,
                [r["Value"] for r in chosen["ResourceRecords"]], origin=dns.name.root, relativize=False)
        serial = int(hashlib.sha256(repr(sorted((str(k[0]), k[1], str(v)) for k, v in out.items())).encode())
                     .hexdigest()[:7], 16)
        ns = dns.name.from_text("ns", origin)
        out[(origin, dns.rdatatype.SOA)] = dns.rrset.from_text(
            origin, 900, "IN", "SOA", f"{ns} hostmaster.{origin} {serial} {SOA_TIMERS}")
        out[(origin, dns.rdatatype.NS)] = dns.rrset.from_text(origin, 172800, "IN", "NS", str(ns))
        out.setdefault((ns, dns.rdatatype.A), dns.rrset.from_text(ns, 172800, "IN", "A", "127.0.0.1"))
        return out

    def _choose(self, recs: list[dict[str, Any]]) -> dict[str, Any]:
        """Route53's failover rule; a plain record set is returned as is."""
        by_role = {r.get("Failover"): r for r in recs}
        primary, secondary = by_role.get("PRIMARY"), by_role.get("SECONDARY")
        if primary is None and secondary is None:
            return recs[0]
        for rec in (primary, secondary):
            if rec is not None and (not rec.get("HealthCheckId") or self._prober.healthy(rec["HealthCheckId"])):
                return rec
        return primary or secondary


def _answer(response: dns.message.Message, question: dns.rrset.RRset, origin: dns.name.Name,
            records: dict[tuple[dns.name.Name, int], dns.rrset.RRset]) -> None:
    qname, qtype = question.name, question.rdtype
    if not qname.is_subdomain(origin):
        response.flags &= ~dns.flags.AA
        response.set_rcode(dns.rcode.REFUSED)
        return
    response.flags |= dns.flags.AA
    name = qname
    for depth in range(MAX_CHAIN):
        at_name = {t: rr for (n, t), rr in records.items() if n == name}
        if not at_name:
            if depth == 0 and not any(n.is_subdomain(name) for n, _ in records):
                response.set_rcode(dns.rcode.NXDOMAIN)
            break
        if qtype == dns.rdatatype.ANY:
            response.answer.extend(at_name.values())
            return
        if qtype in at_name:
            response.answer.append(at_name[qtype])
            if qtype == dns.rdatatype.NS and name == origin:
                response.additional.extend(rr for (n, t), rr in records.items()
                                           if t == dns.rdatatype.A and n == at_name[qtype][0].target)
            return
        cname = at_name.get(dns.rdatatype.CNAME)
        if cname is None:
            break
        response.answer.append(cname)
        name = cname[0].target
        if not name.is_subdomain(origin):
            return
    if not response.answer or response.rcode() == dns.rcode.NXDOMAIN:
        soa = records[(origin, dns.rdatatype.SOA)]
        response.authority.append(soa)


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, server: "DnsServer"):
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        asyncio.get_running_loop().create_task(self._reply(data, addr))

    async def _reply(self, data: bytes, addr) -> None:
        wire = await self.server.handle(data, udp=True)
        if wire is not None and self.transport is not None:
            self.transport.sendto(wire, addr)


class DnsServer:
    """UDP + TCP on the same loopback port (TCP for large answers and for tools that insist)."""

    def __init__(self, view: ZoneView, port: int = 0):
        self.view = view
        self.port = port
        self.queries = 0
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.base_events.Server | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(20):  # UDP and TCP must share the port; retry if TCP's half is taken
            self._udp, _ = await loop.create_datagram_endpoint(lambda: _Udp(self), local_addr=("127.0.0.1", self.port))
            port = self._udp.get_extra_info("sockname")[1]
            try:
                self._tcp = await asyncio.start_server(self._serve_tcp, "127.0.0.1", port)
                self.port = port
                return
            except OSError:
                self._udp.close()
        raise RuntimeError("no free loopback port for both UDP and TCP DNS")

    def stop(self) -> None:
        if self._udp:
            self._udp.close()
        if self._tcp:
            self._tcp.close()

    async def handle(self, wire: bytes, udp: bool = False) -> bytes | None:
        self.queries += 1
        return await asyncio.to_thread(self.view.respond, wire, udp)

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                size = struct.unpack("!H", await reader.readexactly(2))[0]
                wire = await self.handle(await reader.readexactly(size))
                if wire is None:
                    break
                writer.write(struct.pack("!H", len(wire)) + wire)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
