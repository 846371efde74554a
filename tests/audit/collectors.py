"""Real collectors on 127.0.0.1 for the forwarding tests: a syslog listener (TCP or TLS) and an HTTP(S) one."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
import socket
import socketserver
import ssl
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.helpers import free_port

SYSLOG_HEADER = re.compile(
    r"^<(?P<pri>\d+)>1 (?P<timestamp>\S+) (?P<host>\S+) (?P<app>\S+) (?P<procid>\S+) (?P<msgid>\S+) "
    r"\[(?P<sd_id>\S+) (?P<params>(?:[^\]\\]|\\.)*)\] \ufeff(?P<msg>.*)$",
    re.DOTALL,
)
SD_PARAM = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


@dataclass
class SyslogMessage:
    pri: int
    msgid: str
    sd_id: str
    params: dict[str, str]
    document: dict


def parse_syslog(message: bytes) -> SyslogMessage:
    """One RFC 5424 message as the forwarder writes it (structured data, then the JSON document after a BOM)."""
    match = SYSLOG_HEADER.match(message.decode())
    assert match, message
    params = {name: re.sub(r"\\(.)", r"\1", value) for name, value in SD_PARAM.findall(match["params"])}
    return SyslogMessage(int(match["pri"]), match["msgid"], match["sd_id"], params, json.loads(match["msg"]))


def octet_frames(data: bytes) -> list[bytes]:
    """Split an RFC 6587 octet-counted stream into its messages; a truncated last frame fails the test."""
    frames = []
    while data:
        length, space, rest = data.partition(b" ")
        assert space, data[:40]
        assert length.isdigit(), data[:40]
        size = int(length)
        assert len(rest) >= size, "truncated frame"
        frames.append(rest[:size])
        data = rest[size:]
    return frames


class SyslogListener:
    """A TCP (or TLS) syslog collector: each connection is read to its end, its frames recorded, then closed."""

    def __init__(self, port: int | None = None, tls: ssl.SSLContext | None = None):
        self.port = port or free_port()
        self.tls = tls
        self.messages: list[SyslogMessage] = []
        self.connections = 0
        self._lock = threading.Lock()
        self._server: socketserver.ThreadingTCPServer | None = None

    @property
    def documents(self) -> list[dict]:
        with self._lock:
            return [message.document for message in self.messages]

    def start(self) -> SyslogListener:
        listener = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                connection = self.request
                if listener.tls is not None:
                    connection = listener.tls.wrap_socket(connection, server_side=True)
                chunks = []
                while chunk := connection.recv(65536):
                    chunks.append(chunk)
                frames = [parse_syslog(frame) for frame in octet_frames(b"".join(chunks))]
                with listener._lock:
                    listener.messages.extend(frames)
                    listener.connections += 1

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

            def handle_error(self, request, client_address):  # a refused TLS handshake is the test's business
                pass

        self._server = Server(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class HttpCollector:
    """An HTTP(S) server taking JSON lines by POST; answers ``status`` (settable) and records accepted lines."""

    def __init__(self, tls: ssl.SSLContext | None = None):
        self.status = 200
        self.lines: list[dict] = []
        self.headers: list[dict] = []
        self.posts = 0
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                collector.posts += 1
                collector.headers.append(dict(self.headers))
                if collector.status == 200:
                    collector.lines.extend(json.loads(line) for line in body.decode().splitlines())
                self.send_response(collector.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@dataclass
class Certificates:
    ca_file: Path
    server_context: ssl.SSLContext


def certificates(folder: Path) -> Certificates:
    """A CA of the test's own and a server certificate it signed for 127.0.0.1 and localhost."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Opsdeck test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return Certificates(ca_file=ca_file, server_context=context)


def port_closed(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0
