"""Audit sink URLs: which targets the forwarder accepts, and how they are shown without their credentials.

Plain Python (no models), so that the settings can validate AUDIT_FORWARD_URLS with the same rules as the admin.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

MASK = "********"
DEFAULT_PORTS = {"syslog+tcp": 514, "syslog+tls": 6514, "https": 443, "http": 80}
SYSLOG_SCHEMES = ("syslog+tcp", "syslog+tls")
# Query parameters the forwarder reads itself; an HTTPS URL's other parameters go to the collector as they are.
OWN_PARAMETERS = ("ca_file",)
SECRET_PARAMETER = re.compile(r"pass|secret|token|key|auth|signature|credential", re.IGNORECASE)
# A bearer token given as the URL's password under this user name, e.g. https://bearer:TOKEN@collector/path.
BEARER_USER = "bearer"


class SinkUrlError(ValueError):
    """The URL cannot be forwarded to; the message says why (and never repeats its credentials)."""


@dataclass(frozen=True)
class SinkUrl:
    url: str
    scheme: str
    host: str
    port: int
    path: str = ""
    username: str = ""
    password: str = field(default="", repr=False)
    ca_file: str = ""
    name: str = ""
    # An HTTPS URL's own query parameters, passed on to the collector.
    query: tuple[tuple[str, str], ...] = ()

    @property
    def is_syslog(self) -> bool:
        return self.scheme in SYSLOG_SCHEMES

    @property
    def uses_tls(self) -> bool:
        return self.scheme in ("syslog+tls", "https")

    @property
    def endpoint(self) -> str:
        """Where events go, without credentials: also the default name of a sink."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}{self.path}"

    @property
    def request_url(self) -> str:
        """The URL an HTTP POST goes to: credentials left out (they travel in a header), own parameters removed."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return urlunsplit((self.scheme, f"{host}:{self.port}", self.path or "/", urlencode(self.query), ""))

    def secrets(self) -> list[str]:
        """The texts that must never reach a log, an error message or a page."""
        values = [self.password] if self.password else []
        if self.username and not self.password:
            values.append(self.username)  # a token given as the user name
        values += [value for name, value in self.query if SECRET_PARAMETER.search(name) and value]
        return values

    def hide(self, text: str) -> str:
        """``text`` with every credential of this URL replaced by MASK."""
        for secret in sorted(self.secrets(), key=len, reverse=True):
            text = text.replace(secret, MASK)
        return text


def url_masked(url: str) -> str:
    """``url`` for display: the password (or a lone user name, a token) and secret-looking parameters masked."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, colon, _password = userinfo.partition(":")
        netloc = f"{user}:{MASK}@{hostport}" if colon else f"{MASK}@{hostport}"
    query = urlencode(
        [
            (name, MASK if SECRET_PARAMETER.search(name) and value else value)
            for name, value in parse_qsl(parts.query, keep_blank_values=True)
        ],
        safe="/",
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def sink_url_parse(url: str, *, allow_http: bool = False) -> SinkUrl:
    """Check ``url`` and split it into what the forwarder needs; SinkUrlError when it cannot be used.

    Accepted: ``syslog+tcp://host[:514]``, ``syslog+tls://host[:6514][?ca_file=/path/ca.pem]``,
    ``https://[user:password@]host[:443]/path[?ca_file=…]`` and, only with ``allow_http``, ``http://``.
    A ``#fragment`` names the sink.
    """
    shown = url_masked(url)
    try:
        parts = urlsplit(url.strip())
    except ValueError as exc:
        raise SinkUrlError(f"{shown} is not a URL ({exc}).") from None
    scheme = parts.scheme.lower()
    if scheme == "http" and not allow_http:
        raise SinkUrlError(
            f"{shown}: plain http:// would send audit events unencrypted; use https:// "
            "(AUDIT_FORWARD_ALLOW_HTTP=true permits http:// for tests)."
        )
    if scheme not in DEFAULT_PORTS:
        raise SinkUrlError(f"{shown}: unsupported scheme {scheme!r}; use syslog+tcp://, syslog+tls:// or https://.")
    if not parts.hostname:
        raise SinkUrlError(f"{shown}: no host.")
    try:
        port = DEFAULT_PORTS[scheme] if parts.port is None else parts.port
    except ValueError:
        raise SinkUrlError(f"{shown}: the port must be a number from 1 to 65535.") from None
    if port == 0:
        raise SinkUrlError(f"{shown}: the port must be a number from 1 to 65535.")
    parameters = parse_qsl(parts.query, keep_blank_values=True)
    own = {name: value for name, value in parameters if name in OWN_PARAMETERS}
    passed_on = tuple((name, value) for name, value in parameters if name not in OWN_PARAMETERS)
    if scheme in SYSLOG_SCHEMES:
        if parts.path not in ("", "/"):
            raise SinkUrlError(f"{shown}: a syslog URL has no path.")
        if passed_on:
            raise SinkUrlError(f"{shown}: unknown parameter {passed_on[0][0]!r}; a syslog URL takes only ca_file.")
        if parts.username or parts.password:
            raise SinkUrlError(f"{shown}: syslog carries no credentials; use syslog+tls:// and the collector's CA.")
    if own.get("ca_file") and scheme in ("syslog+tcp", "http"):
        raise SinkUrlError(f"{shown}: ca_file needs TLS (syslog+tls:// or https://).")
    return SinkUrl(
        url=url.strip(),
        scheme=scheme,
        host=parts.hostname,
        port=port,
        path="" if scheme in SYSLOG_SCHEMES else parts.path,
        username=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        ca_file=own.get("ca_file", ""),
        name=parts.fragment,
        query=passed_on,
    )
