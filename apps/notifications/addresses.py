"""Which webhook URLs the portal may send to: https on public addresses only, unless the settings relax it.

A webhook makes the portal's server send requests wherever an administrator points it; without this check, an
endpoint on 127.0.0.1, 10.x or the cloud metadata address (169.254.169.254) would turn it into a way into its own
network (SSRF). URLs are checked when an endpoint is saved (with a clear message) and again at every attempt, on
the address the connection actually reached: a name that resolved to a public address when it was saved may point
elsewhere later (DNS rebinding).
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
NAT64_PREFIX = ipaddress.IPv6Network("64:ff9b::/96")


class WebhookUrlRefused(ValueError):
    """The URL may not receive webhooks; the message says why and which setting would allow it."""


def address_kind(address: Address) -> str | None:
    """What makes ``address`` non-public ("loopback", "private"...), or None for a public address."""
    if address.version == 6:
        # IPv6 forms that carry an IPv4 address reach it: ::ffff:127.0.0.1 (mapped), 2002:7f00:1:: (6to4),
        # 64:ff9b::7f00:1 (NAT64).
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in NAT64_PREFIX:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return address_kind(embedded)
    for kind, flag in (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
    ):
        if flag:
            return kind
    # Shared (100.64/10), documentation and benchmarking ranges, 6to4 and the like.
    return None if address.is_global else "non-public"


def _refuse_address(host: str, address: Address) -> None:
    kind = address_kind(address)
    if kind is not None and not settings.WEBHOOK_ALLOW_PRIVATE:
        kind = f"{'an' if kind[0] in 'aeiou' else 'a'} {kind} address"
        what = f"{host} resolves to {address}, {kind}" if host != str(address) else f"{address} is {kind}"
        raise WebhookUrlRefused(
            f"{what}: webhooks go to public addresses only (set WEBHOOK_ALLOW_PRIVATE to allow "
            "receivers inside the portal's own network)."
        )


def _parsed(url: str):
    parts = urlsplit(url)
    allowed = ("https", "http") if settings.WEBHOOK_ALLOW_HTTP else ("https",)
    if parts.scheme not in allowed:
        raise WebhookUrlRefused(
            f"The URL must start with https:// (got {parts.scheme or 'no scheme'!r}); plain http is allowed only "
            "when WEBHOOK_ALLOW_HTTP is set."
            if parts.scheme == "http"
            else f"The URL must start with https:// (got {parts.scheme or 'no scheme'!r})."
        )
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        raise WebhookUrlRefused("The URL's port must be a number from 1 to 65535.") from None
    if not host:
        raise WebhookUrlRefused("The URL has no host name.")
    return host, port or (443 if parts.scheme == "https" else 80)


def webhook_url_check(url: str) -> None:
    """Refuse (WebhookUrlRefused) a URL with another scheme than http(s), or whose host is or resolves to a
    non-public address while WEBHOOK_ALLOW_PRIVATE is off."""
    host, port = _parsed(url)
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        _refuse_address(host, literal)
        return
    if settings.WEBHOOK_ALLOW_PRIVATE:
        return
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise WebhookUrlRefused(f"The host name {host} cannot be resolved.") from None
    for *_, sockaddr in found:
        # An IPv6 sockaddr may carry a zone ("fe80::1%eth0").
        _refuse_address(host, ipaddress.ip_address(sockaddr[0].split("%", 1)[0]))


def _connected_address_check(sock, host: str) -> None:
    """Close the connection and refuse if it reached a non-public address (whatever DNS said before)."""
    address = ipaddress.ip_address(sock.getpeername()[0].split("%", 1)[0])
    try:
        _refuse_address(host, address)
    except WebhookUrlRefused:
        sock.close()
        raise


class GuardedHTTPConnection(HTTPConnection):
    def _new_conn(self):
        sock = super()._new_conn()
        _connected_address_check(sock, self.host)
        return sock


class GuardedHTTPSConnection(HTTPSConnection):
    def _new_conn(self):
        sock = super()._new_conn()
        _connected_address_check(sock, self.host)
        return sock


class GuardedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = GuardedHTTPConnection


class GuardedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = GuardedHTTPSConnection


GUARDED_POOL_CLASSES = {"http": GuardedHTTPConnectionPool, "https": GuardedHTTPSConnectionPool}
