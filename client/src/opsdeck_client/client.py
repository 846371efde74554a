"""``Client``: the portal's API v1 over HTTP with a token, with bounded retries, pagination and downloads."""

from __future__ import annotations

import email.utils
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import requests
import requests.auth
from websockets.exceptions import WebSocketException

from . import signing
from .errors import (
    ERRORS_BY_STATUS,
    ApiError,
    ConfigurationError,
    Conflict,
    ConnectionFailed,
    JobFailed,
    OpsdeckError,
    StreamRefused,
    WaitTimedOut,
)
from .stream import TERMINAL_STATUSES, JobStream

__all__ = ["JOB_PATHS", "Client", "RetryPolicy"]

# Methods that change nothing, or the same thing however often they are sent: safe to send again after a
# connection error, when the portal may or may not have received the first one.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
DOWNLOAD_CHUNK = 64 * 1024

# The detail address of each kind of job the live stream carries.
JOB_PATHS = {
    "quantum": "/api/v1/quantum/jobs/{id}/",
    "inference": "/api/v1/registry/inference-jobs/{id}/",
    "report": "/api/v1/compliance/reports/{id}/",
    "backup": "/api/v1/backups/jobs/{id}/",
}

Progress = Callable[[dict[str, Any]], None]
RetryNotice = Callable[[str, float, int], None]


@dataclass(frozen=True)
class RetryPolicy:
    """When to send a request again.

    A 429 or 503 is retried whatever the method (the portal refused it before doing anything), after the
    ``Retry-After`` the portal sent (or the body's ``retry_after_seconds``; else ``backoff`` doubling). A
    connection error is retried for idempotent methods only: a POST may already have been received. At most
    ``attempts`` tries in all and ``max_wait`` seconds of waiting in all; a wait the portal asks for that would go
    past ``max_wait`` is not started: the error is raised at once.
    """

    attempts: int = 5
    max_wait: float = 60.0
    backoff: float = 0.5
    statuses: frozenset[int] = frozenset({429, 503})


NO_RETRIES = RetryPolicy(attempts=1)


def _retry_after(response: requests.Response, body: Any) -> float | None:
    """The wait the portal asked for, in seconds: ``Retry-After`` (seconds or an HTTP date), else the body's."""
    header = response.headers.get("Retry-After", "").strip()
    if header.isdigit():
        return float(header)
    if header:
        try:
            when = email.utils.parsedate_to_datetime(header)
        except (TypeError, ValueError):
            when = None
        if when is not None:
            return max(0.0, when.timestamp() - time.time())
    seconds = body.get("retry_after_seconds") if isinstance(body, dict) else None
    return float(seconds) if isinstance(seconds, int | float) and seconds >= 0 else None


def api_error(response: requests.Response) -> ApiError:
    """The exception for an error answer, carrying the API's error body."""
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("detail"), str):
        detail, code = body["detail"], str(body.get("code", ""))
    else:
        # Not the API's shape (a proxy's page, say): its first words are better than nothing.
        detail, code = " ".join(response.text.split())[:200] or response.reason or "", ""
    error_class = ERRORS_BY_STATUS.get(response.status_code, ApiError)
    return error_class(
        response.status_code,
        detail,
        code=code,
        body=body,
        retry_after=_retry_after(response, body),
        url=response.url,
    )


class _Credentials(requests.auth.AuthBase):
    """Puts the token (or the session cookie) on a request."""

    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = headers

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers.update(self.headers)
        return request


def _json_object(response: requests.Response) -> dict[str, Any]:
    """The JSON object a success carries; OpsdeckError when it is something else (a proxy's page, say)."""
    try:
        document = response.json()
    except ValueError:
        document = None
    if not isinstance(document, dict):
        raise OpsdeckError(f"{response.url} answered {response.status_code} without the JSON object expected.")
    return document


class Client:
    """The Opsdeck API for scripts.

    ``base_url`` defaults to ``OPSDECK_URL`` and ``token`` to ``OPSDECK_TOKEN``. ``session_cookie`` (default
    ``OPSDECK_SESSION``) is only for what the portal keeps from tokens: downloading a compliance report needs a
    browser session that re-authenticated with an authenticator code, and its ``sessionid`` cookie is sent for
    that download alone.
    """

    def __init__(
        self,
        base_url: str | None = None,
        token: str | None = None,
        *,
        session_cookie: str | None = None,
        timeout: float = 30.0,
        retry: RetryPolicy = RetryPolicy(),
        on_retry: RetryNotice | None = None,
    ) -> None:
        base_url = base_url or os.environ.get("OPSDECK_URL", "")
        if not base_url:
            raise ConfigurationError("No portal address: set OPSDECK_URL (e.g. https://ops.example.com).")
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigurationError(f"OPSDECK_URL must be an http:// or https:// address, got {base_url!r}.")
        self.base_url = base_url.rstrip("/") + "/"
        self.token = token if token is not None else os.environ.get("OPSDECK_TOKEN", "")
        self.session_cookie = session_cookie if session_cookie is not None else os.environ.get("OPSDECK_SESSION", "")
        self.timeout = timeout
        self.retry = retry
        self.on_retry = on_retry
        self._http = requests.Session()
        self._http.headers["User-Agent"] = "opsdeck-client/0.1"

    # --- plumbing

    def url(self, path: str) -> str:
        """The absolute address of an API path (``/api/v1/...``)."""
        return urljoin(self.base_url, path.lstrip("/"))

    def _headers(self, auth: str) -> dict[str, str]:
        if auth == "token":
            if not self.token:
                raise ConfigurationError("No API token: set OPSDECK_TOKEN (create one on the portal's account page).")
            return {"Authorization": f"Bearer {self.token}"}
        if auth == "session":
            if not self.session_cookie:
                raise ConfigurationError(
                    "This needs a browser session that re-authenticated with an authenticator code (API tokens are "
                    "refused): set OPSDECK_SESSION to its sessionid cookie."
                )
            return {"Cookie": f"sessionid={self.session_cookie}"}
        return {}

    def request(
        self,
        method: str,
        path: str,
        *,
        auth: str = "token",
        stream: bool = False,
        retry: RetryPolicy | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """Send a request, retrying as ``retry`` (default: the client's policy) allows; the response when it is
        a success, else the ApiError (or ConnectionFailed) of the last attempt."""
        policy = retry or self.retry
        method = method.upper()
        url = path if path.startswith(("http://", "https://")) else self.url(path)
        # Credentials as an auth object: requests then never replaces them with a ~/.netrc entry.
        credentials = _Credentials(self._headers(auth))
        waited = 0.0
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._http.request(
                    method,
                    url,
                    auth=credentials,
                    timeout=self.timeout,
                    stream=stream,
                    allow_redirects=False,
                    **kwargs,
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                failure: OpsdeckError = ConnectionFailed(f"Cannot reach {self.base_url}: {type(exc).__name__}.")
                if method not in IDEMPOTENT_METHODS:
                    raise failure from None
                wait = policy.backoff * 2 ** (attempt - 1)
                reason = "connection failed"
            else:
                if response.status_code < 400:
                    return response
                failure = api_error(response)
                response.close()
                if response.status_code not in policy.statuses:
                    raise failure
                asked = failure.retry_after if isinstance(failure, ApiError) else None
                wait = asked if asked is not None else policy.backoff * 2 ** (attempt - 1)
                reason = f"HTTP {response.status_code}"
            if attempt >= policy.attempts or waited + wait > policy.max_wait:
                raise failure
            if self.on_retry is not None:
                self.on_retry(reason, wait, attempt + 1)
            time.sleep(wait)
            waited += wait

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        """GET a JSON object."""
        return _json_object(self.request("GET", path, params=params or None))

    def post(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """POST a JSON body; the JSON object answered."""
        return _json_object(self.request("POST", path, json=body))

    def paginate(self, path: str, **params: Any) -> Iterator[dict[str, Any]]:
        """Every item of a list, page after page (page numbers or cursors: the ``next`` link is followed)."""
        page = self.request("GET", path, params=params or None).json()
        while True:
            if isinstance(page, list):
                yield from page
                return
            yield from page.get("results", [])
            next_url = page.get("next")
            if not next_url:
                return
            # A next link must lead back to this portal: the token goes with it.
            if urlsplit(next_url).netloc != urlsplit(self.base_url).netloc:
                raise OpsdeckError(f"The list's next page is on another host ({next_url}); not followed.")
            page = self.request("GET", next_url).json()

    def download(self, path: str, destination: str | os.PathLike[str], *, auth: str = "token") -> Path:
        """Stream a file to ``destination``; written under a temporary name and renamed once complete, so an
        interrupted download never leaves a complete-looking file."""
        destination = Path(destination)
        response = self.request("GET", path, auth=auth, stream=True)
        folder = destination.parent if str(destination.parent) else Path(".")
        descriptor, temporary = tempfile.mkstemp(dir=folder, prefix=f".{destination.name}.", suffix=".part")
        try:
            with os.fdopen(descriptor, "wb") as handle, response:
                for chunk in response.iter_content(DOWNLOAD_CHUNK):
                    handle.write(chunk)
            os.replace(temporary, destination)
        except requests.RequestException as exc:
            os.unlink(temporary)
            raise ConnectionFailed(f"The download from {self.url(path)} was cut off: {type(exc).__name__}.") from None
        except BaseException:
            os.unlink(temporary)
            raise
        return destination

    def me(self) -> dict[str, Any]:
        """The token's user: username and roles."""
        return self.get("/api/v1/accounts/me/")

    # --- the portal's state

    def maintenance(self) -> dict[str, Any]:
        """Maintenance mode now: ``active``, ``message``, ``until``, ``retry_after_seconds`` and the windows planned
        within a day (``upcoming``); any signed-in token."""
        return self.get("/api/v1/core/maintenance/")

    def workers(self, *, minutes: int | None = None) -> dict[str, Any]:
        """Live workers with their running jobs, each queue's depth, rate and jobs held during maintenance (staff
        tokens; others get a 403 ApiError). ``minutes``: the window of the jobs-per-minute figures."""
        params = {} if minutes is None else {"minutes": int(minutes)}
        return self.get("/api/v1/core/workers/", **params)

    # --- jobs of every kind

    def job(self, kind: str, job_id: int) -> dict[str, Any]:
        """One job's current state from the API (``kind``: quantum, inference, report or backup)."""
        if kind not in JOB_PATHS:
            raise ConfigurationError(f"Unknown job kind {kind!r}: one of {', '.join(JOB_PATHS)}.")
        return self.get(JOB_PATHS[kind].format(id=int(job_id)))

    def stream(self, kind: str | None = None, job_id: int | None = None, *, open_timeout: float = 10.0) -> JobStream:
        """The live stream of one job (``kind`` and ``job_id``) or, without them, of every job the user may see."""
        if not self.token:
            raise ConfigurationError("No API token: set OPSDECK_TOKEN (create one on the portal's account page).")
        path = "/ws/jobs/" if job_id is None else f"/ws/jobs/{quote(kind or 'quantum')}/{int(job_id)}/"
        return JobStream(self.base_url, path, self.token, open_timeout=open_timeout)

    def watch(
        self,
        kind: str | None = None,
        job_id: int | None = None,
        *,
        deadline: float | None = None,
        reconnects: int = 5,
    ) -> Iterator[dict[str, Any]]:
        """Live updates of one job until it has finished, or of every job the user may see (endless).

        A dropped connection is opened again (at most ``reconnects`` times in a row, backing off); its first
        message re-syncs. A message older than one already seen for the same job is skipped: messages from
        different portal processes can overtake each other. Refusals (bad token, job not visible) raise
        StreamRefused at once.
        """
        latest: dict[tuple[Any, Any], str] = {}
        failures = 0
        while True:
            try:
                with self.stream(kind, job_id) as updates:
                    for update in updates.messages(deadline=deadline):
                        failures = 0
                        key = (update.get("kind"), update.get("id"))
                        stamp = str(update.get("updated_at", ""))
                        if stamp and latest.get(key, "") > stamp:
                            continue
                        latest[key] = stamp
                        yield update
                        if job_id is not None and update.get("status") in TERMINAL_STATUSES:
                            return
                return
            except (StreamRefused, WaitTimedOut):
                raise
            except (OSError, WebSocketException) as exc:
                failures += 1
                if failures > reconnects:
                    raise ConnectionFailed(f"The live stream keeps dropping ({type(exc).__name__}).") from None
                time.sleep(min(0.5 * 2 ** (failures - 1), 10.0))

    def wait(
        self,
        kind: str,
        job_id: int,
        *,
        timeout: float | None = None,
        poll_interval: float = 1.0,
        on_update: Progress | None = None,
        stream: bool = True,
    ) -> dict[str, Any]:
        """Wait until a job has finished; its final state from the API, or JobFailed if it failed or was
        cancelled.

        Follows the live stream (``on_update`` gets each ``job.update``); if the stream cannot be used, polls the
        API every ``poll_interval`` seconds instead (``on_update`` then gets the job's API state).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        if stream:
            try:
                for update in self.watch(kind, job_id, deadline=deadline, reconnects=2):
                    if on_update is not None:
                        on_update(update)
            except (StreamRefused, ConnectionFailed):
                pass  # The API is the truth either way (and says 404 if the job is not visible): poll it.
        while True:
            job = self.job(kind, job_id)
            if job.get("status") in TERMINAL_STATUSES:
                break
            if on_update is not None:
                on_update(job)
            if deadline is not None and time.monotonic() > deadline:
                raise WaitTimedOut(f"{kind} job {job_id} still {job.get('status')} after {timeout:g} s.")
            time.sleep(poll_interval)
        if job["status"] != "completed":
            raise JobFailed(kind, job)
        return job

    # --- quantum

    def quantum_submit(
        self,
        source: str,
        *,
        shots: int | None = None,
        parameter_sets: list[dict[str, float]] | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """Submit one quantum job (OpenQASM 2 or 3 ``source``); ``parameter_sets`` makes it a sweep. Other
        fields (name, seed, noise, primitive, observables, …) as the API's submit takes them."""
        body: dict[str, Any] = {"source": source, **fields}
        if shots is not None:
            body["shots"] = shots
        if parameter_sets is not None:
            body["parameter_sets"] = parameter_sets
        return self.post("/api/v1/quantum/jobs/", body)

    def quantum_jobs(self, **filters: Any) -> Iterator[dict[str, Any]]:
        """Quantum jobs the user may see, newest first (filters as the API's: status, owner, tag, …)."""
        return self.paginate("/api/v1/quantum/jobs/", **filters)

    def quantum_result(self, job_id: int) -> dict[str, Any]:
        """A completed job's outcome: ``counts`` or, for sweeps and estimator jobs, ``results`` per set."""
        job = self.job("quantum", job_id)
        if job.get("status") in TERMINAL_STATUSES - {"completed"}:
            raise JobFailed("quantum", job)
        if job.get("status") != "completed":
            raise Conflict(409, f"quantum job {job_id} is {job.get('status')}: it has no result yet.", code="conflict")
        fields = ("id", "name", "status", "primitive", "shots", "num_qubits", "parameters", "counts", "results")
        return {name: job.get(name) for name in fields}

    def quantum_cancel(self, job_id: int) -> dict[str, Any]:
        """Cancel a queued or running job."""
        return self.post(f"/api/v1/quantum/jobs/{int(job_id)}/cancel/")

    # --- inference jobs

    def inference_result(self, job_id: int, destination: str | os.PathLike[str]) -> Path:
        """Download a completed inference job's results file (CSV or JSON Lines)."""
        return self.download(f"/api/v1/registry/inference-jobs/{int(job_id)}/result/", destination)

    # --- model registry

    def models(self, **filters: Any) -> Iterator[dict[str, Any]]:
        """Registered models, by name, with their aliases and latest version."""
        return self.paginate("/api/v1/registry/models/", **filters)

    def predict(
        self, name: str, inputs: list[str], *, alias: str | None = None, version: int | None = None
    ) -> dict[str, Any]:
        """Run a model on texts: one output per input, and the version that answered (production by default)."""
        body: dict[str, Any] = {"inputs": inputs, "alias": alias, "version": version}
        return self.post(f"/api/v1/registry/models/{quote(name, safe='')}/predict/", body)

    # --- backups

    def backups(self, **filters: Any) -> Iterator[dict[str, Any]]:
        """Backups, newest first (administrators; compliance officers as evidence)."""
        return self.paginate("/api/v1/backups/", **filters)

    def backup_create(self) -> dict[str, Any]:
        """Queue a backup (administrators); the backup job, to ``wait("backup", job["id"])`` for."""
        return self.post("/api/v1/backups/")

    # --- compliance reports

    def reports(self, **filters: Any) -> Iterator[dict[str, Any]]:
        """Compliance reports, newest first (compliance officers and administrators)."""
        return self.paginate("/api/v1/compliance/reports/", **filters)

    def report(self, report_id: int) -> dict[str, Any]:
        """One report's state, size, SHA-256 and key fingerprint."""
        return self.job("report", report_id)

    def report_manifest(self, report_id: int) -> dict[str, Any]:
        """A completed report's signed manifest (a token may fetch it)."""
        return self.get(f"/api/v1/compliance/reports/{int(report_id)}/manifest/")

    def report_download(
        self, report_id: int, destination: str | os.PathLike[str], *, manifest: bool = True
    ) -> tuple[Path, Path | None]:
        """Download a report's file (with the session of ``OPSDECK_SESSION``: the portal refuses tokens) and,
        unless ``manifest=False``, its manifest beside it as ``<file>.manifest.json``."""
        path = self.download(f"/api/v1/compliance/reports/{int(report_id)}/download/", destination, auth="session")
        if not manifest:
            return path, None
        manifest_path = path.with_name(path.name + ".manifest.json")
        manifest_path.write_text(
            json.dumps(self.report_manifest(report_id), indent=2, ensure_ascii=False) + "\n",
            encoding="utf-8",
        )
        return path, manifest_path

    def public_key_pem(self) -> bytes:
        """The portal's published report-signing public key (PEM); checked against the fingerprint it is
        published with."""
        response = self.request("GET", "/api/v1/compliance/public-key/", auth="none")
        pem = response.content
        published = response.headers.get("X-Key-Fingerprint", "")
        key = signing.load_public_key(pem, source="The portal's public key")
        if published and published != signing.fingerprint_of(key):
            raise OpsdeckError("The portal's public key does not match the fingerprint it was published with.")
        return pem

    def report_verify(
        self,
        path: str | os.PathLike[str],
        *,
        manifest_path: str | os.PathLike[str] | None = None,
        public_key_pem: bytes | None = None,
    ) -> str:
        """Verify a report file against its manifest (default ``<file>.manifest.json``) with ``public_key_pem``,
        or else the key the portal publishes; the key's fingerprint, or VerificationFailed."""
        manifest = signing.read_manifest(manifest_path or f"{os.fspath(path)}.manifest.json")
        key = signing.load_public_key(public_key_pem or self.public_key_pem())
        return signing.report_verify(path, manifest, key)
