"""What a collector receives: RFC 5424 syslog over TCP or TLS (RFC 6587 octet counting), or JSON lines over HTTPS.

Every message carries the whole event as JSON (the same document as an archive file's line), so a collector can
recompute each hash, check that ``prev_hash`` names the event before it in its ``chain``, and de-duplicate on
``hash``.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
from collections.abc import Sequence
from datetime import UTC, datetime

import requests
from requests.auth import HTTPBasicAuth

from .choices import Outcome
from .hashing import HASHED_FIELDS, canonical_timestamp
from .sink_urls import BEARER_USER, SinkUrl

# Columns read per event, in this order.
EVENT_COLUMNS = ("id", *HASHED_FIELDS, "hash", "chain")
# Facility 13, "log audit" (RFC 5424 section 6.2.1); severity from the outcome.
FACILITY_LOG_AUDIT = 13
SEVERITIES = {Outcome.SUCCESS: 6, Outcome.DENIED: 5, Outcome.FAILURE: 4}  # informational, notice, warning
APP_NAME = "opsdeck"
MSG_ID = "audit"
# RFC 5424 asks for name@<private enterprise number>; 32473 is the number reserved for examples (RFC 5612).
SD_ID = "opsdeck@32473"
# SD-PARAM name → document key, in the order written.
SD_PARAMS = (
    ("id", "id"),
    ("hash", "hash"),
    ("prev_hash", "prev_hash"),
    ("chain", "chain"),
    ("action", "action"),
    ("actor", "actor_username"),
    ("outcome", "outcome"),
    ("ip", "ip"),
    ("object_type", "object_type"),
    ("object_id", "object_id"),
    ("object", "object_repr"),
    ("request_id", "request_id"),
)
BOM = "\ufeff"
JSON_LINES_TYPE = "application/x-ndjson"


class DeliveryError(Exception):
    """The collector did not accept a batch; the message says why (credentials hidden)."""


def event_document(row: Sequence) -> dict:
    """One event read as ``values_list(*EVENT_COLUMNS)``, as the JSON document every sink receives."""
    document = dict(zip(EVENT_COLUMNS, row, strict=True))
    document["timestamp"] = canonical_timestamp(document["timestamp"])
    document["ip"] = document["ip"] or ""
    return document


def document_json(document: dict) -> str:
    return json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _sd_value(value) -> str:
    # RFC 5424 section 6.3.3: '"', '\' and ']' are escaped inside a PARAM-VALUE.
    text = str(value)
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _printable(text: str, limit: int) -> str:
    cleaned = "".join(char for char in text if 33 <= ord(char) <= 126)[:limit]
    return cleaned or "-"


def syslog_message(document: dict, *, hostname: str) -> bytes:
    """The RFC 5424 message of one event: header, structured data with its identity, the JSON document as MSG."""
    severity = SEVERITIES.get(document["outcome"], 5)
    timestamp = datetime.fromisoformat(document["timestamp"]).astimezone(UTC)
    header = (
        f"<{FACILITY_LOG_AUDIT * 8 + severity}>1 {timestamp:%Y-%m-%dT%H:%M:%S.%f}Z "
        f"{_printable(hostname, 255)} {APP_NAME} - {MSG_ID}"
    )
    params = " ".join(f'{name}="{_sd_value(document[key])}"' for name, key in SD_PARAMS)
    return f"{header} [{SD_ID} {params}] {BOM}{document_json(document)}".encode()


def octet_counted(message: bytes) -> bytes:
    """RFC 6587 section 3.4.1 framing: the message's length in bytes, a space, the message."""
    return b"%d %s" % (len(message), message)


def tls_context(ca_file: str) -> ssl.SSLContext:
    # The system's CAs unless the sink names its own; the host name is always checked.
    return ssl.create_default_context(cafile=ca_file or None)


def syslog_send(target: SinkUrl, documents: Sequence[dict], *, ca_file: str, timeout: float) -> None:
    """Send ``documents`` over one new connection; return once the collector has read them all.

    TCP syslog has no acknowledgement, so the connection is the acknowledgement: after the last frame the
    forwarder closes its sending side and waits for the collector to close the connection, which it does only
    once it has read everything before the end (rsyslog, syslog-ng and the like close when the client does).
    A reset, a refusal or a timeout instead means the batch was not accepted, and it is sent again later.
    """
    hostname = socket.gethostname()
    payload = b"".join(octet_counted(syslog_message(document, hostname=hostname)) for document in documents)
    try:
        raw = socket.create_connection((target.host, target.port), timeout=timeout)
    except OSError as exc:
        raise DeliveryError(f"cannot connect to {target.endpoint}: {_reason(exc)}") from None
    connection = raw
    try:
        if target.scheme == "syslog+tls":
            connection = tls_context(ca_file).wrap_socket(raw, server_hostname=target.host)
        connection.sendall(payload)
        # Half-close: the collector reads to the end, then closes its side. (On a TLS socket this leaves TLS.)
        connection.shutdown(socket.SHUT_WR)
        while connection.recv(65536):
            pass
    except ssl.SSLCertVerificationError as exc:
        raise DeliveryError(f"TLS certificate of {target.endpoint} not trusted: {exc.verify_message}") from None
    except OSError as exc:
        raise DeliveryError(f"{target.endpoint} did not accept the batch: {_reason(exc)}") from None
    finally:
        connection.close()


def json_lines(documents: Sequence[dict]) -> bytes:
    return "".join(document_json(document) + "\n" for document in documents).encode()


def https_send(target: SinkUrl, documents: Sequence[dict], *, ca_file: str, timeout: float) -> None:
    """POST ``documents`` as JSON lines; any 2xx answer accepts the whole batch, anything else refuses it."""
    headers = {"Content-Type": JSON_LINES_TYPE, "User-Agent": APP_NAME}
    auth = None
    if target.username == BEARER_USER and target.password:
        headers["Authorization"] = f"Bearer {target.password}"
    elif target.username:
        auth = HTTPBasicAuth(target.username, target.password)
    verify = (ca_file or True) if target.uses_tls else False
    try:
        response = requests.post(
            target.request_url,
            data=json_lines(documents),
            headers=headers,
            auth=auth,
            timeout=timeout,
            verify=verify,
            allow_redirects=False,
        )
    except requests.exceptions.SSLError as exc:
        raise DeliveryError(target.hide(f"TLS with {target.endpoint} failed: {_reason(exc)}")) from None
    except (requests.RequestException, OSError) as exc:
        raise DeliveryError(target.hide(f"{target.endpoint} did not answer: {_reason(exc)}")) from None
    if not 200 <= response.status_code < 300:
        body = target.hide(" ".join(response.text.split())[:200])
        raise DeliveryError(f"{target.endpoint} answered HTTP {response.status_code}" + (f": {body}" if body else ""))


def deliver(target: SinkUrl, documents: Sequence[dict], *, ca_file: str, timeout: float) -> None:
    """Hand ``documents`` to the collector ``target``; DeliveryError unless it accepted all of them."""
    if ca_file and not os.path.isfile(ca_file):
        raise DeliveryError(f"the TLS CA file {ca_file} does not exist on this host")
    send = syslog_send if target.is_syslog else https_send
    send(target, documents, ca_file=ca_file, timeout=timeout)


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:300] if text else type(exc).__name__
