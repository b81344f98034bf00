"""The `check_domain` job: registration (RDAP, DNS as second signal and fallback) and
health (DNS, HTTP, TLS) of one domain, reported to collector.record_checks().

Only bytes are moved here: every judgement (health issues, score, drop date, changes,
notifications) is made in SQL from the stored result. The result is a flat object
whose keys are pounce.domain_checks columns.

Configuration (worker options or environment; all optional):
  resolver        IP[:PORT] of the DNS server asked for every record (default: system)
  rdap_bootstrap  IANA dns.json-format file mapping TLDs to RDAP base URLs, used
                  instead of pounce.tlds (IANA's bootstrap data in the database)
  ca_bundle       PEM file of trusted CAs for the TLS chain check (default: system)
  timeout         seconds per network operation (default 10)
  host_rate       requests per second per RDAP host (default 5)
  http_port / https_port   where plain HTTP / HTTPS are served (tests only)
"""

from __future__ import annotations

import asyncio
import json
import re
import ssl
import time
from datetime import datetime, timezone
from typing import Any

import dns.asyncresolver
import dns.exception
import dns.rdatatype
import dns.resolver
import httpcore
import httpx
import psycopg
from cryptography import x509
from cryptography.x509.oid import ExtensionOID, NameOID

from .worker import Context, Job, Permanent, Retry, handler

DNS_TYPES = ("A", "AAAA", "MX", "NS", "TXT", "CAA", "SOA")
MAX_REDIRECTS = 10
BODY_LIMIT = 65536
# Phrases of domain parking and for-sale pages (Sedo, Bodis, ParkingCrew, Dan, Afternic, ...).
PARKED = re.compile(
    r"(this domain (name )?(is|may be) for sale|buy this domain|domain is parked|parked (free|domain)"
    r"|parkingcrew|sedoparking|bodis\.com|domain for sale|is available for purchase|dan\.com"
    r"|afternic|hugedomains)", re.IGNORECASE)
# RDAP status values (RFC 8056 mapping of EPP statuses) -> EPP names.
RDAP_TO_EPP = {"active": "ok", "auto renew period": "autoRenewPeriod", "redemption period": "redemptionPeriod",
               "pending delete": "pendingDelete", "pending restore": "pendingRestore"}


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


# =============================================================================
# Rate limiting
# =============================================================================

class HostRateLimiter:
    """At most `rate` requests per second to one host (spaced evenly), any concurrency."""

    def __init__(self, rate: float):
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.next_slot: dict[str, float] = {}

    async def wait(self, host: str) -> None:
        if not self.interval:
            return
        now = time.monotonic()
        slot = max(now, self.next_slot.get(host, now))
        self.next_slot[host] = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)


# =============================================================================
# DNS
# =============================================================================

class Dns:
    def __init__(self, resolver: str | None, timeout: float):
        self.resolver = dns.asyncresolver.Resolver(configure=resolver is None)
        if resolver:
            host, _, port = resolver.rpartition(":") if resolver.count(":") == 1 else (resolver, "", "")
            self.resolver.nameservers = [host or resolver]
            if port:
                self.resolver.port = int(port)
        self.resolver.lifetime = timeout
        self.resolver.timeout = min(timeout, 3.0)
        self.cache: dict[str, tuple[float, list[str]]] = {}

    async def records(self, name: str) -> tuple[dict[str, list[str]], bool, str | None]:
        """Every record type of DNS_TYPES: ({type: [values]}, nxdomain, error)."""
        answers = await asyncio.gather(*(self.query(name, t) for t in DNS_TYPES))
        out: dict[str, list[str]] = {}
        nxdomain = False
        errors = []
        for t, (values, nx, err) in zip(DNS_TYPES, answers):
            out[t.lower()] = values
            nxdomain = nxdomain or nx
            if err:
                errors.append(f"{t}: {err}")
        return out, nxdomain, "; ".join(errors) or None

    async def query(self, name: str, rdtype: str) -> tuple[list[str], bool, str | None]:
        """One record type of a name: (sorted values, NXDOMAIN?, error or None). TXT
        strings are joined, names lower-cased without the trailing dot."""
        try:
            answer = await self.resolver.resolve(name, rdtype, raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN:
            return [], True, None
        except (dns.exception.Timeout, dns.resolver.NoNameservers, dns.resolver.LifetimeTimeout) as e:
            return [], False, type(e).__name__
        values = []
        for rr in answer.rrset or ():
            if rdtype == "TXT":
                values.append(b"".join(rr.strings).decode("utf-8", "replace"))
            elif rdtype == "MX":
                values.append(f"{rr.preference} {str(rr.exchange).rstrip('.').lower()}")
            elif rdtype == "NS":
                values.append(str(rr.target).rstrip(".").lower())
            elif rdtype == "SOA":
                values.append(f"{str(rr.mname).rstrip('.').lower()} {rr.serial}")
            elif rdtype == "CAA":
                values.append(f"{rr.flags} {rr.tag.decode()} {rr.value.decode()}")
            else:
                values.append(rr.to_text())
        return sorted(values), False, None

    async def address(self, host: str) -> str:
        """The first A (else AAAA) address of a host, cached for a minute."""
        hit = self.cache.get(host)
        if hit and hit[0] > time.monotonic():
            return hit[1][0]
        for rdtype in ("A", "AAAA"):
            values, _, _ = await self.query(host, rdtype)
            if values:
                self.cache[host] = (time.monotonic() + 60, values)
                return values[0]
        raise httpcore.ConnectError(f"{host} has no address")


# =============================================================================
# RDAP (RFC 9083)
# =============================================================================

def load_bootstrap(path: str) -> dict[str, list[str]]:
    """IANA's dns.json format: {"services": [[["com", "net"], ["https://rdap.example/"]], ...]}."""
    with open(path) as f:
        doc = json.load(f)
    return {tld.lower(): urls for tlds, urls in doc.get("services", []) for tld in tlds}


def rdap_url(base: str, domain: str) -> str:
    base = base if base.endswith("/") else base + "/"
    return base + domain if base.endswith("/domain/") else base + "domain/" + domain


def epp_status(rdap_status: str) -> str:
    s = rdap_status.strip().lower()
    if s in RDAP_TO_EPP:
        return RDAP_TO_EPP[s]
    words = s.split()
    return words[0] + "".join(w.capitalize() for w in words[1:]) if words else s


def parse_rdap(doc: dict, checked_at: datetime) -> dict[str, Any]:
    """Registration facts of an RDAP domain object."""
    if not isinstance(doc, dict) or doc.get("objectClassName") not in (None, "domain"):
        raise ValueError("not an RDAP domain object")
    statuses = sorted({epp_status(s) for s in doc.get("status", []) if isinstance(s, str)})
    events = {}
    for e in doc.get("events", []) or []:
        if isinstance(e, dict) and isinstance(e.get("eventDate"), str):
            try:
                events[e.get("eventAction")] = datetime.fromisoformat(e["eventDate"].replace("Z", "+00:00"))
            except ValueError:
                pass
    registrar = None
    for ent in doc.get("entities", []) or []:
        if isinstance(ent, dict) and "registrar" in (ent.get("roles") or []):
            registrar = _vcard_fn(ent.get("vcardArray")) or ent.get("handle")
            break
    nameservers = sorted({ns["ldhName"].rstrip(".").lower() for ns in doc.get("nameservers", []) or []
                          if isinstance(ns, dict) and isinstance(ns.get("ldhName"), str)})
    expires = events.get("expiration")
    if "pendingDelete" in statuses:
        registration = "pending_delete"
    elif "redemptionPeriod" in statuses or "pendingRestore" in statuses:
        registration = "redemption"
    elif "autoRenewPeriod" in statuses or (expires and expires < checked_at):
        registration = "grace"
    else:
        registration = "registered"
    return {"registration": registration, "registration_source": "rdap", "registrar": registrar,
            "epp_statuses": statuses, "registered_at": iso(events.get("registration")),
            "expires_at": iso(expires), "last_changed_at": iso(events.get("last changed")),
            "rdap_nameservers": nameservers}


def _vcard_fn(vcard) -> str | None:
    # ["vcard", [["version", {}, "text", "4.0"], ["fn", {}, "text", "Example Registrar"], ...]]
    if isinstance(vcard, list) and len(vcard) == 2 and isinstance(vcard[1], list):
        for prop in vcard[1]:
            if isinstance(prop, list) and len(prop) >= 4 and prop[0] == "fn" and isinstance(prop[3], str):
                return prop[3]
    return None


# =============================================================================
# HTTP and TLS
# =============================================================================

class ResolvingBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, connecting to the address our resolver gives (not
    the system's) and, in tests, to the ports where HTTP and HTTPS are served. TLS
    still sees the real host name (SNI, certificate checks)."""

    def __init__(self, dns_: Dns, ports: dict[int, int]):
        self.inner = httpcore.AnyIOBackend()
        self.dns = dns_
        self.ports = ports

    async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        address = await self.dns.address(host)
        return await self.inner.connect_tcp(address, self.ports.get(port, port), timeout=timeout,
                                            local_address=local_address, socket_options=socket_options)

    async def connect_unix_socket(self, *args, **kwargs):
        raise httpcore.ConnectError("no unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


def hostname_matches(host: str, names: list[str]) -> bool:
    host = host.lower().rstrip(".")
    for name in names:
        name = name.lower().rstrip(".")
        if name == host:
            return True
        if name.startswith("*.") and "." in host and host.split(".", 1)[1] == name[2:]:
            return True
    return False


def describe_certificate(der: bytes, host: str) -> dict[str, Any]:
    cert = x509.load_der_x509_certificate(der)

    def name_of(n: x509.Name) -> str:
        parts = [a.value for oid in (NameOID.COMMON_NAME, NameOID.ORGANIZATION_NAME)
                 for a in n.get_attributes_for_oid(oid)]
        return ", ".join(dict.fromkeys(str(p) for p in parts)) or n.rfc4514_string()

    try:
        sans = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value \
            .get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        sans = []
    names = sans or [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    return {"tls_issuer": name_of(cert.issuer), "tls_subject": name_of(cert.subject), "tls_sans": sorted(sans),
            "tls_not_after": iso(cert.not_valid_after_utc), "tls_hostname_ok": hostname_matches(host, names)}


# =============================================================================
# The check
# =============================================================================

class DomainChecker:
    def __init__(self, config: dict, bootstrap: dict[str, list[str]]):
        self.timeout = float(config.get("timeout") or 10)
        self.dns = Dns(config.get("resolver"), self.timeout)
        self.bootstrap = bootstrap
        self.limiter = HostRateLimiter(float(config.get("host_rate") or 5))
        ports = {}
        if config.get("http_port"):
            ports[80] = int(config["http_port"])
        if config.get("https_port"):
            ports[443] = int(config["https_port"])
        self.ports = ports
        self.verify = ssl.create_default_context(cafile=config.get("ca_bundle"))
        self.verify.check_hostname = False  # checked apart, so a wrong host and a bad chain are told apart
        self.no_verify = ssl.create_default_context()
        self.no_verify.check_hostname = False
        self.no_verify.verify_mode = ssl.CERT_NONE
        # Sites: no verification (the TLS check judges certificates); RDAP: verified.
        self.web = self._client(self.no_verify, self.dns)
        # RDAP servers redirect (RFC 7480 section 5.2: a registry to its registrar's server)
        self.rdap = httpx.AsyncClient(timeout=self.timeout, follow_redirects=True, max_redirects=5,
                                      verify=ssl.create_default_context(cafile=config.get("ca_bundle")),
                                      headers={"Accept": "application/rdap+json, application/json"})

    def _client(self, context: ssl.SSLContext, dns_: Dns) -> httpx.AsyncClient:
        transport = httpx.AsyncHTTPTransport(verify=context)
        transport._pool = httpcore.AsyncConnectionPool(  # our resolver and ports, httpx's request model
            ssl_context=context, network_backend=ResolvingBackend(dns_, self.ports), max_connections=1000,
            # each site is visited once per check: idle connections would only pile up
            # (and the pool scans them all on every request)
            max_keepalive_connections=0)
        return httpx.AsyncClient(transport=transport, timeout=self.timeout, follow_redirects=False,
                                 headers={"User-Agent": "Pounce-Monitor/1.0 (+domain health check)"})

    async def close(self) -> None:
        await self.web.aclose()
        await self.rdap.aclose()

    async def check(self, domain: str) -> dict[str, Any]:
        checked_at = now_utc()
        result: dict[str, Any] = {"domain": domain, "checked_at": iso(checked_at)}
        errors: dict[str, str] = {}
        records, nxdomain, dns_error = await self.dns.records(domain)
        if dns_error:
            errors["dns"] = dns_error
        result.update({k: v for k, v in records.items() if k not in ("ns", "soa")})
        result["nameservers"] = records["ns"]

        registration = await self._registration(domain, checked_at, records, nxdomain, errors)
        rdap_ns = registration.pop("rdap_nameservers", [])
        if not result["nameservers"] and rdap_ns:
            result["nameservers"] = rdap_ns
        result.update(registration)

        if result["registration"] != "available" and (records["a"] or records["aaaa"]):
            http, tls = await asyncio.gather(self._http(domain), self._tls(domain, records))
            if "error" in http:
                errors["http"] = http.pop("error")
            if "error" in tls:
                errors["tls"] = tls.pop("error")
            result.update(http)
            result.update(tls)
        result["errors"] = errors
        return result

    async def _registration(self, domain, checked_at, records, nxdomain, errors) -> dict[str, Any]:
        tld = domain.rsplit(".", 1)[-1]
        servers = self.bootstrap.get(tld)
        if servers:
            url = rdap_url(servers[0], domain)
            host = httpx.URL(url).host
            await self.limiter.wait(host)
            try:
                response = await self.rdap.get(url)
            except httpx.HTTPError as e:
                errors["rdap"] = f"{type(e).__name__}: {e}"
            else:
                if response.status_code == 404:
                    if records["ns"] or records["soa"]:
                        # the second signal disagrees: a delegated name is not free (RDAP
                        # databases can lag the registry); say so rather than raise hopes
                        errors["rdap"] = "RDAP has no record, but the domain is delegated in DNS"
                        return {"registration": "registered", "registration_source": "dns"}
                    return {"registration": "available", "registration_source": "rdap"}
                if response.status_code == 429:
                    raise Retry(f"RDAP {host} answered 429 (rate limited)", _retry_after(response, 60))
                if response.status_code == 200:
                    try:
                        return parse_rdap(response.json(), checked_at)
                    except (ValueError, TypeError, AttributeError) as e:
                        errors["rdap"] = f"malformed RDAP answer: {e}"
                else:
                    errors["rdap"] = f"RDAP {host} answered HTTP {response.status_code}"
        # No RDAP for this TLD, or it failed: the delegation in DNS is the signal.
        if records["ns"] or records["soa"] or records["a"] or records["aaaa"] or records["mx"]:
            return {"registration": "registered", "registration_source": "dns"}
        if nxdomain:
            return {"registration": "available", "registration_source": "dns"}
        return {"registration": "unknown", "registration_source": "dns"}

    async def _http(self, domain: str) -> dict[str, Any]:
        url = f"http://{domain}/"
        chain: list[str] = []
        started = time.monotonic()
        elapsed_ms = None
        try:
            for _ in range(MAX_REDIRECTS + 1):
                request = self.web.build_request("GET", url)
                response = await self.web.send(request, stream=True)
                try:
                    # until the final response's headers: what a visitor waits, redirects included
                    elapsed_ms = round((time.monotonic() - started) * 1000)
                    location = response.headers.get("location")
                    if response.is_redirect and location:
                        chain.append(f"{response.status_code} {url}")
                        url = str(response.url.join(location))
                        continue
                    body = b""
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        if len(body) >= BODY_LIMIT:
                            break
                finally:
                    await response.aclose()
                text = body[:BODY_LIMIT].decode(response.encoding or "utf-8", "replace")
                return {"http_status": response.status_code, "http_final_url": url, "http_redirects": chain,
                        "http_ms": elapsed_ms, "parked": bool(PARKED.search(text))}
            return {"http_redirects": chain, "http_final_url": url, "http_ms": elapsed_ms,
                    "error": f"more than {MAX_REDIRECTS} redirects"}
        except (httpx.HTTPError, httpcore.ConnectError, OSError, ssl.SSLError) as e:
            return {"http_redirects": chain, "http_ms": None,
                    "error": f"{type(e).__name__}: {e}" if str(e) else type(e).__name__}

    async def _tls(self, domain: str, records: dict[str, list[str]]) -> dict[str, Any]:
        address = (records["a"] or records["aaaa"])[0]
        port = self.ports.get(443, 443)
        chain_ok, chain_error = True, None
        der = None
        try:
            der = await self._handshake(address, port, domain, self.verify)
        except ssl.SSLCertVerificationError as e:
            chain_ok, chain_error = False, e.verify_message or str(e)
        except (OSError, ssl.SSLError, asyncio.TimeoutError) as e:
            return {"error": f"{type(e).__name__}: {e}" if str(e) else type(e).__name__}
        if der is None:
            try:
                der = await self._handshake(address, port, domain, self.no_verify)
            except (OSError, ssl.SSLError, asyncio.TimeoutError) as e:
                return {"tls_chain_ok": False, "error": f"{type(e).__name__}: {e}"}
        out = describe_certificate(der, domain)
        out["tls_chain_ok"] = chain_ok
        if chain_error:
            out["error"] = f"certificate not trusted: {chain_error}"
        return out

    async def _handshake(self, address: str, port: int, host: str, context: ssl.SSLContext) -> bytes:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(address, port, ssl=context, server_hostname=host), self.timeout)
        try:
            return writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        finally:
            writer.close()
            try:
                await asyncio.wait_for(writer.wait_closed(), 1)
            except (OSError, ssl.SSLError, asyncio.TimeoutError):
                pass


def _retry_after(response: httpx.Response, default: float) -> float:
    value = response.headers.get("retry-after", "")
    return float(value) if value.strip().isdigit() else default


# =============================================================================
# Registration in the worker
# =============================================================================

async def setup(ctx: Context) -> None:
    config = ctx.config
    if config.get("rdap_bootstrap"):
        bootstrap = load_bootstrap(config["rdap_bootstrap"])
    else:
        async with await psycopg.AsyncConnection.connect(ctx.conninfo) as conn:
            cur = await conn.execute("SELECT collector.rdap_bootstrap()")
            bootstrap = (await cur.fetchone())[0]
    ctx.state["domain_checker"] = DomainChecker(config, bootstrap)


@handler("check_domain", report="SELECT collector.record_checks(%s::jsonb)", setup=setup)
async def check_domain(job: Job, ctx: Context) -> dict[str, Any]:
    domain = job.payload.get("domain")
    if not isinstance(domain, str) or "." not in domain:
        raise Permanent(f"payload has no domain: {job.payload!r}")
    return await ctx.state["domain_checker"].check(domain)
