"""Real servers on loopback for collector tests, started and stopped by the suite.

  dns_server   NSD (Debian's nsd), authoritative for zones the test writes:
               dns_server.set_zone("shop.com", ["@ TXT \"pounce-verify=abc\""]) then query
               127.0.0.1:dns_server.port. Parent zones (com, net, org) answer NXDOMAIN for
               names without a zone, as the real registries' servers do.
  test_ca      a CA made at test time (cryptography): test_ca.issue(["good.com"], ...)
  web_server   nginx with HTTP and HTTPS virtual hosts of the standard test world
  rdap_server  a small RFC 9083 server: rdap_server.set("x.com", 200, rdap_domain(...))
  watch_world  all of the above, plus collector_config for the worker

Import the fixtures you need into a test module (`from local_servers import dns_server`);
every server binds 127.0.0.1 on a port free at run time.
"""

from __future__ import annotations

import datetime as dt
import http.server
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import dns.message
import dns.query
import dns.rdatatype
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

NSD = shutil.which("nsd") or "/usr/sbin/nsd"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
ECHO_MODULE = "/usr/lib/nginx/modules/ngx_http_echo_module.so"


def free_port(udp_too: bool = False) -> int:
    """A port free for TCP (and UDP) on 127.0.0.1 right now."""
    for _ in range(50):
        with socket.socket() as t:
            t.bind(("127.0.0.1", 0))
            port = t.getsockname()[1]
            if not udp_too:
                return port
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                try:
                    u.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port")


def _wait_for(predicate, what: str, timeout: float = 10.0, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    detail = log.read_text()[-2000:] if log and log.exists() else ""
    raise RuntimeError(f"{what} did not start within {timeout} s\n{detail}")


def _terminate(proc: subprocess.Popen | None) -> None:
    """Stop a server we started: SIGTERM, then SIGKILL after 5 s."""
    if proc is None:
        return
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# =============================================================================
# DNS: NSD
# =============================================================================

class DnsServer:
    PARENTS = ("com", "net", "org")

    def __init__(self, workdir: Path):
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port(udp_too=True)
        self.zones: dict[str, list[str]] = {p: [] for p in self.PARENTS}
        self.serial = int(time.time())
        self.proc: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def set_zone(self, name: str, records: list[str], restart: bool = True) -> None:
        """Serve zone `name` with these records (zone-file lines relative to the origin,
        e.g. '@ A 127.0.0.1', 'www CNAME @', '@ TXT "v=spf1 -all"'); SOA and NS are added."""
        self.zones[name.rstrip(".").lower()] = list(records)
        if restart and self.proc:
            self.restart()

    def remove_zone(self, name: str) -> None:
        self.zones.pop(name.rstrip(".").lower(), None)
        if self.proc:
            self.restart()

    def _write(self) -> Path:
        self.serial += 1
        conf = [
            "server:",
            f"  ip-address: 127.0.0.1@{self.port}",
            "  do-ip6: no",
            '  username: ""',
            '  chroot: ""',
            f'  zonesdir: "{self.dir}"',
            f'  zonelistfile: "{self.dir}/zone.list"',
            '  database: ""',
            f'  pidfile: "{self.dir}/nsd.pid"',
            f'  xfrdfile: "{self.dir}/xfrd.state"',
            f'  xfrdir: "{self.dir}"',
            f'  logfile: "{self.dir}/nsd.log"',
            "  server-count: 1",
            "  verbosity: 1",
            "  hide-version: yes",
            "remote-control:",
            "  control-enable: no",
        ]
        for name, records in sorted(self.zones.items()):
            path = self.dir / f"{name}.zone"
            path.write_text("\n".join([
                f"$ORIGIN {name}.", "$TTL 60",
                f"@ IN SOA ns1.{name}. hostmaster.{name}. {self.serial} 3600 600 86400 60",
                f"@ IN NS ns1.{name}.", f"@ IN NS ns2.{name}.",
                "ns1 IN A 127.0.0.53", "ns2 IN A 127.0.0.54",
                *records, ""]))
            conf += ["zone:", f"  name: {name}", f'  zonefile: "{path}"']
        (self.dir / "nsd.conf").write_text("\n".join(conf) + "\n")
        return self.dir / "nsd.conf"

    def start(self) -> None:
        conf = self._write()
        check = subprocess.run([shutil.which("nsd-checkconf") or "/usr/sbin/nsd-checkconf", str(conf)],
                               capture_output=True, text=True)
        if check.returncode:
            raise RuntimeError(f"nsd.conf: {check.stderr}")
        self.proc = subprocess.Popen([NSD, "-d", "-c", str(conf)], stdout=subprocess.DEVNULL,
                                     stderr=open(self.dir / "nsd.stderr", "a"))
        _wait_for(self._answers, "nsd", log=self.dir / "nsd.log")

    def _answers(self) -> bool:
        if self.proc and self.proc.poll() is not None:
            raise RuntimeError(f"nsd exited: {(self.dir / 'nsd.log').read_text()[-2000:]}"
                               f"{(self.dir / 'nsd.stderr').read_text()[-2000:]}")
        try:
            q = dns.message.make_query("com.", dns.rdatatype.SOA)
            r = dns.query.udp(q, "127.0.0.1", port=self.port, timeout=0.2)
            return any(str(rr.serial) == str(self.serial) for rrset in r.answer for rr in rrset)
        except (dns.exception.Timeout, OSError):
            return False

    def stop(self) -> None:
        _terminate(self.proc)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture(scope="session")
def dns_server(tmp_path_factory):
    """NSD on a free port; tests add zones with set_zone (each change restarts it)."""
    server = DnsServer(tmp_path_factory.mktemp("nsd"))
    server.start()
    yield server
    server.stop()


# =============================================================================
# A test CA
# =============================================================================

class TestCA:
    __test__ = False  # not a test class

    def __init__(self, workdir: Path):
        self.dir = workdir
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.timezone.utc)
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Pounce Test CA"),
                               x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Pounce Tests")])
        self.cert = (x509.CertificateBuilder().subject_name(self.name).issuer_name(self.name)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - dt.timedelta(days=30)).not_valid_after(now + dt.timedelta(days=3650))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                                  content_commitment=False, key_encipherment=False,
                                                  data_encipherment=False, key_agreement=False,
                                                  encipher_only=False, decipher_only=False), critical=True)
                     .sign(self.key, hashes.SHA256()))
        self.bundle = workdir / "ca.pem"
        self.bundle.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, names: list[str], days: float = 90, not_before_days: float = -1, self_signed: bool = False,
              label: str | None = None) -> tuple[Path, Path]:
        """A leaf certificate for `names` valid from now + not_before_days for `days`
        days (negative end: already expired). Returns (cert chain path, key path)."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.timezone.utc)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
        issuer, signer = (subject, key) if self_signed else (self.name, self.key)
        start = now + dt.timedelta(days=not_before_days)
        cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(start).not_valid_after(start + dt.timedelta(days=days))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .sign(signer, hashes.SHA256()))
        label = label or names[0]
        cert_path, key_path = self.dir / f"{label}.crt", self.dir / f"{label}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        return cert_path, key_path


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory) -> TestCA:
    return TestCA(tmp_path_factory.mktemp("ca"))


# =============================================================================
# nginx: the standard web test world
# =============================================================================

PARKED_PAGE = "<html><body><h1>parked.com</h1><p>This domain is for sale! Buy this domain today.</p></body></html>"
SLOW_SECONDS = 3.3

# host -> (certificate kind, nginx directives for its HTTPS server, for its HTTP server)
WEB_SITES = {
    "good.com": ("valid", 'return 200 "welcome to good.com\\n";', "return 301 https://$host$request_uri;"),
    "soon.com": ("soon", 'return 200 "certificate expires soon\\n";', 'return 200 "plain\\n";'),
    "expired.com": ("expired", 'return 200 "old certificate\\n";', 'return 200 "plain\\n";'),
    "wronghost.com": ("wronghost", 'return 200 "wrong name\\n";', 'return 200 "plain\\n";'),
    "selfsigned.com": ("selfsigned", 'return 200 "self-signed\\n";', 'return 200 "plain\\n";'),
    "redirect.com": ("valid", "location = / { return 302 https://$host/step2; }\n"
                              "    location = /step2 { return 301 https://good.com/landing; }",
                     "return 301 https://$host/;"),
    "broken.com": ("valid", 'return 500 "internal error\\n";', "return 301 https://$host/;"),
    "parked.com": ("valid", f"default_type text/html; return 200 '{PARKED_PAGE}';",
                   f"default_type text/html; return 200 '{PARKED_PAGE}';"),
    "slow.com": ("valid", f"location / {{ echo_sleep {SLOW_SECONDS}; echo 'slow but fine'; }}",
                 "return 301 https://$host/;"),
}


class WebServer:
    def __init__(self, workdir: Path, ca: TestCA):
        self.dir = workdir
        self.http_port = free_port()
        self.https_port = free_port()
        for sub in ("tmp", "logs"):
            (workdir / sub).mkdir(parents=True, exist_ok=True)
        servers = []
        for host, (kind, https_body, http_body) in WEB_SITES.items():
            if kind == "valid":
                cert, key = ca.issue([host, f"www.{host}"])
            elif kind == "soon":
                cert, key = ca.issue([host], days=10 + 1, not_before_days=-1)
            elif kind == "expired":
                cert, key = ca.issue([host], days=30, not_before_days=-60)
            elif kind == "wronghost":
                cert, key = ca.issue(["other.com"], label=host)
            else:
                cert, key = ca.issue([host], self_signed=True)
            servers.append(f"""
  server {{
    listen 127.0.0.1:{self.https_port} ssl;
    server_name {host} www.{host};
    ssl_certificate {cert};
    ssl_certificate_key {key};
    {https_body}
  }}
  server {{
    listen 127.0.0.1:{self.http_port};
    server_name {host} www.{host};
    {http_body}
  }}""")
        default_cert, default_key = ca.issue(["default.invalid"])
        temp = self.dir / "tmp"
        (self.dir / "nginx.conf").write_text(f"""
load_module {ECHO_MODULE};
daemon off;
worker_processes 1;
pid {self.dir}/nginx.pid;
error_log {self.dir}/logs/error.log warn;
events {{ worker_connections 2048; }}
http {{
  access_log off;
  client_body_temp_path {temp}/body;
  proxy_temp_path {temp}/proxy;
  fastcgi_temp_path {temp}/fastcgi;
  uwsgi_temp_path {temp}/uwsgi;
  scgi_temp_path {temp}/scgi;
  default_type text/plain;
  keepalive_requests 10000;
  server {{ listen 127.0.0.1:{self.http_port} default_server; return 404; }}
  server {{ listen 127.0.0.1:{self.https_port} ssl default_server;
           ssl_certificate {default_cert}; ssl_certificate_key {default_key}; return 404; }}
  {''.join(servers)}
}}
""")
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        conf = self.dir / "nginx.conf"
        test = subprocess.run([NGINX, "-t", "-q", "-c", str(conf), "-p", str(self.dir)], capture_output=True, text=True)
        if test.returncode:
            raise RuntimeError(f"nginx.conf: {test.stderr}")
        self.proc = subprocess.Popen([NGINX, "-c", str(conf), "-p", str(self.dir)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def listening() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited: {(self.dir / 'logs/error.log').read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.https_port), 0.2).close()
                return True
            except OSError:
                return False

        _wait_for(listening, "nginx", log=self.dir / "logs/error.log")

    def stop(self) -> None:
        _terminate(self.proc)
        self.proc = None


@pytest.fixture(scope="session")
def web_server(tmp_path_factory, test_ca):
    server = WebServer(tmp_path_factory.mktemp("nginx"), test_ca)
    server.start()
    yield server
    server.stop()


# =============================================================================
# RDAP (RFC 9083)
# =============================================================================

def rdap_domain(name: str, statuses=("active",), registrar: str = "Example Registrar, Inc.",
                registered: str = "2015-03-01T12:00:00Z", expires: str | None = None,
                changed: str | None = None, nameservers=()) -> dict:
    """An RFC 9083 domain object as registries serve it."""
    expires = expires or (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=200)).strftime("%Y-%m-%dT%H:%M:%SZ")
    events = [{"eventAction": "registration", "eventDate": registered},
              {"eventAction": "expiration", "eventDate": expires}]
    if changed:
        events.append({"eventAction": "last changed", "eventDate": changed})
    events.append({"eventAction": "last update of RDAP database", "eventDate": "2026-12-04T00:00:00Z"})
    return {
        "objectClassName": "domain", "rdapConformance": ["rdap_level_0", "icann_rdap_response_profile_0"],
        "handle": f"{name.upper()}-TEST", "ldhName": name.upper(), "status": list(statuses), "events": events,
        "entities": [{"objectClassName": "entity", "handle": "9999", "roles": ["registrar"],
                      "publicIds": [{"type": "IANA Registrar ID", "identifier": "9999"}],
                      "vcardArray": ["vcard", [["version", {}, "text", "4.0"], ["fn", {}, "text", registrar]]]}],
        "nameservers": [{"objectClassName": "nameserver", "ldhName": ns.upper()} for ns in nameservers],
        "secureDNS": {"delegationSigned": False},
    }


class LoopbackHttp:
    """A threaded http.server on 127.0.0.1 (subclasses set self.httpd and self.thread)."""

    def start(self):
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class RdapServer(LoopbackHttp):
    def __init__(self):
        self.routes: dict[str, tuple[int, bytes, dict]] = {}
        self.hits: dict[str, int] = {}
        routes, hits = self.routes, self.hits

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802
                name = self.path.rsplit("/domain/", 1)[-1].lower()
                hits[name] = hits.get(name, 0) + 1
                status, body, headers = routes.get(name, (404, json.dumps(
                    {"errorCode": 404, "title": "Not Found", "description": ["domain not found"]}).encode(), {}))
                self.send_response(status)
                self.send_header("Content-Type", "application/rdap+json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        class Server(http.server.ThreadingHTTPServer):
            request_queue_size = 256  # socketserver's default backlog of 5 drops bursts of connections

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/rdap/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def set(self, domain: str, status: int, body, headers: dict | None = None) -> None:
        """Answer for /domain/<domain>: a JSON document (dict) or raw bytes/str."""
        raw = json.dumps(body).encode() if isinstance(body, (dict, list)) else (
            body.encode() if isinstance(body, str) else body)
        self.routes[domain.lower()] = (status, raw, headers or {})

    def bootstrap_file(self, path: Path, tlds=("com",)) -> Path:
        path.write_text(json.dumps({"version": "1.0", "services": [[list(tlds), [self.base_url]]]}))
        return path



@pytest.fixture(scope="session")
def rdap_server():
    server = RdapServer()
    server.start()
    yield server
    server.stop()


# =============================================================================
# The standard test world
# =============================================================================

def now_plus(days: float) -> str:
    return (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(scope="session")
def watch_world(dns_server, web_server, rdap_server, test_ca, tmp_path_factory):
    """DNS zones, web sites and RDAP answers for the standard test domains, and the
    collector configuration pointing at them (resolver, RDAP bootstrap, CA bundle,
    ports). RDAP serves .com only; .net names fall back to DNS."""
    web = ["@ A 127.0.0.1", "www A 127.0.0.1", "@ MX 10 mail.example.net.", '@ TXT "v=spf1 -all"',
           '@ CAA 0 issue "letsencrypt.org"']
    for host in WEB_SITES:
        dns_server.set_zone(host, web, restart=False)
        rdap_server.set(host, 200, rdap_domain(host, nameservers=(f"ns1.{host}", f"ns2.{host}")))
    dns_server.set_zone("down.com", ["@ A 127.0.0.2", "@ MX 10 mail.down.com.", "mail A 127.0.0.2"], restart=False)
    rdap_server.set("down.com", 200, rdap_domain("down.com"))
    dns_server.set_zone("mailonly.com", ["@ MX 10 mx.mailonly.com.", "mx A 127.0.0.1"], restart=False)
    rdap_server.set("mailonly.com", 200, rdap_domain("mailonly.com"))
    rdap_server.set("dropping.com", 200, rdap_domain("dropping.com", statuses=["pending delete"],
                                                      expires=now_plus(-70), changed=now_plus(-2)))
    rdap_server.set("redeem.com", 200, rdap_domain("redeem.com", statuses=["redemption period"],
                                                    expires=now_plus(-50), changed=now_plus(-5)))
    rdap_server.set("expiring.com", 200, rdap_domain("expiring.com", expires=now_plus(10)))
    # a registry that redirects to the registrar's RDAP server (RFC 7480 5.2)
    rdap_server.set("moved.com", 302, b"", {"Location": f"{rdap_server.base_url}domain/moved-target.com"})
    rdap_server.set("moved-target.com", 200, rdap_domain("moved.com", registrar="Registrar Behind A Redirect"))
    rdap_server.set("limited.com", 429, {"errorCode": 429, "title": "Too Many Requests"}, {"Retry-After": "120"})
    rdap_server.set("garbled.com", 200, b'{"objectClassName": "domain", "status": [')
    dns_server.set_zone("garbled.com", ["@ A 127.0.0.3"], restart=False)
    dns_server.set_zone("ghost.com", ["@ A 127.0.0.2"], restart=False)  # delegated, but RDAP says 404
    dns_server.set_zone("delegated.net", ["@ A 127.0.0.2", "@ MX 10 mx.delegated.net.", "mx A 127.0.0.2"],
                        restart=False)
    dns_server.restart()
    config = {"resolver": dns_server.address, "ca_bundle": str(test_ca.bundle),
              "rdap_bootstrap": str(rdap_server.bootstrap_file(tmp_path_factory.mktemp("rdap") / "dns.json")),
              "http_port": web_server.http_port, "https_port": web_server.https_port, "timeout": 6,
              "host_rate": 1000}
    return {"dns": dns_server, "web": web_server, "rdap": rdap_server, "ca": test_ca, "collector_config": config}


def worker_env(config: dict) -> dict:
    """Environment for a `pounce worker` subprocess using this configuration."""
    env = dict(os.environ)
    env.update({"POUNCE_RESOLVER": config["resolver"], "POUNCE_CA_BUNDLE": config["ca_bundle"],
                "POUNCE_RDAP_BOOTSTRAP": config["rdap_bootstrap"], "POUNCE_HTTP_PORT": str(config["http_port"]),
                "POUNCE_HTTPS_PORT": str(config["https_port"]), "POUNCE_CHECK_TIMEOUT": str(config["timeout"]),
                "POUNCE_HOST_RATE": str(config["host_rate"])})
    return env


# =============================================================================
# Source files (market-data collectors): a static file server with the failure modes
# =============================================================================

class SourceServer(LoopbackHttp):
    """Serves recorded source files at paths a test chooses:

        source_server.set("/godaddy.json.zip", data, etag='"v1"')   -> url
        set(..., status=500) / set(..., delay=2.0) / set(..., chunked=True)

    A route with an ETag answers 304 to a matching If-None-Match; one with
    last_modified answers 304 to an equal If-Modified-Since. `hits[path]` counts
    requests and `requests[path]` keeps their headers."""

    def __init__(self):
        self.routes: dict[str, dict] = {}
        self.hits: dict[str, int] = {}
        self.requests: dict[str, list[dict]] = {}
        routes, hits, requests = self.routes, self.hits, self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self):
                path = self.path.split("?", 1)[0]
                hits[path] = hits.get(path, 0) + 1
                requests.setdefault(path, []).append({k.lower(): v for k, v in self.headers.items()})
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                route = routes.get(path)
                if route is None:
                    return self._send(404, b"not found\n", {})
                if route["delay"]:
                    time.sleep(route["delay"])
                etag, modified = route["etag"], route["last_modified"]
                if (etag and self.headers.get("If-None-Match") == etag) or (
                        modified and self.headers.get("If-Modified-Since") == modified):
                    return self._send(304, b"", {"ETag": etag} if etag else {})
                headers = dict(route["headers"])
                if etag:
                    headers["ETag"] = etag
                if modified:
                    headers["Last-Modified"] = modified
                self._send(route["status"], route["body"], headers, route["chunked"], route["length"])

            def _send(self, status, body, headers, chunked=False, length=None):
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                if chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for i in range(0, len(body), 4096):
                        part = body[i:i + 4096]
                        self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
                    self.wfile.write(b"0\r\n\r\n")
                    return
                self.send_header("Content-Length", str(len(body) if length is None else length))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _serve  # noqa: N815

            def log_message(self, *args):
                pass

        class Server(http.server.ThreadingHTTPServer):
            request_queue_size = 64

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def set(self, path: str, body: bytes | str, status: int = 200, headers: dict | None = None, etag: str | None = None,
            last_modified: str | None = None, delay: float = 0.0, chunked: bool = False,
            length: int | None = None) -> str:
        """Serve `body` at `path`; returns its URL. `length` overrides Content-Length."""
        self.routes[path] = {"body": body.encode() if isinstance(body, str) else body, "status": status,
                             "headers": headers or {}, "etag": etag, "last_modified": last_modified, "delay": delay,
                             "chunked": chunked, "length": length}
        return self.url(path)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"



@pytest.fixture(scope="session")
def source_server():
    server = SourceServer()
    server.start()
    yield server
    server.stop()


__all__ = ["dns_server", "test_ca", "web_server", "rdap_server", "watch_world", "rdap_domain", "worker_env",
           "free_port", "DnsServer", "TestCA", "WebServer", "RdapServer", "now_plus", "source_server", "SourceServer"]
