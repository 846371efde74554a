"""``opsdeck``: the portal from a shell. Exit codes: 0 done, 1 the portal refused or failed (or could not be
reached, or the job failed), 2 bad usage or local input, 3 a report that does not verify. An error is one line on
stderr, never a traceback; ``--json`` prints the API's documents (and errors) as JSON on stdout.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import click
from tqdm import tqdm

from . import signing
from .client import JOB_PATHS, Client
from .errors import ApiError, ConfigurationError, JobFailed, OpsdeckError, VerificationFailed

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NOT_VERIFIED = 3
KINDS = click.Choice(sorted(JOB_PATHS))


class Settings:
    """What the top-level options chose, shared by every subcommand."""

    def __init__(self, url: str | None, json_output: bool, timeout: float, progress: bool) -> None:
        self.url = url
        self.json_output = json_output
        self.timeout = timeout
        self.progress = progress
        self._client: Client | None = None

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = Client(self.url, timeout=self.timeout, on_retry=_retry_notice)
        return self._client


def _retry_notice(reason: str, wait: float, attempt: int) -> None:
    click.echo(f"opsdeck: {reason}, trying again in {wait:g} s (attempt {attempt})", err=True)


pass_settings = click.make_pass_decorator(Settings)


def _emit(settings: Settings, document: Any, text: str | list[str]) -> None:
    """The document as JSON with --json, else the human lines."""
    if settings.json_output:
        click.echo(json.dumps(document, indent=2, ensure_ascii=False))
    else:
        for line in [text] if isinstance(text, str) else text:
            click.echo(line)


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeError, ValueError) as exc:
        raise ConfigurationError(f"{what} {path} is not readable JSON ({exc}).") from None


class ProgressBar:
    """A job's progress on stderr: its unit's done/total when the portal gives them (rows, bytes, percent), and
    its status as it changes; a line is drawn only when something changed."""

    WITH_COUNTS = "{desc}: {percentage:3.0f}%|{bar:24}| {n_fmt}/{total_fmt} {postfix} [{elapsed}]"
    WITHOUT_COUNTS = "{desc}: {percentage:3.0f}%|{bar:24}| {postfix} [{elapsed}]"

    def __init__(self, kind: str, job_id: int, enabled: bool) -> None:
        self.bar = tqdm(
            total=1,
            desc=f"{kind} job {job_id}",
            file=sys.stderr,
            disable=not enabled,
            leave=True,
            bar_format=self.WITHOUT_COUNTS,
        )
        self.shown: tuple[Any, ...] = ()

    def update(self, message: dict[str, Any]) -> None:
        progress = message.get("progress")
        done, total = None, None
        if isinstance(progress, dict):
            done, total = progress.get("done"), progress.get("total")
        elif isinstance(progress, int):  # a report's percent, as the API gives it
            done, total = progress, 100
        status = str(message.get("status", ""))
        if isinstance(total, int) and total > 0 and total != self.bar.total:
            self.bar.total = total
            self.bar.bar_format = self.WITH_COUNTS
        if status == "completed":
            done = self.bar.total
        if isinstance(done, int):
            self.bar.n = min(done, self.bar.total or done)
        position = message.get("queue_position")
        postfix = f"{status}, queue position {position}" if position else status
        if (self.bar.n, self.bar.total, postfix) != self.shown:
            self.shown = (self.bar.n, self.bar.total, postfix)
            self.bar.set_postfix_str(postfix, refresh=False)
            self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


def _wait(settings: Settings, kind: str, job_id: int, timeout: float | None) -> dict[str, Any]:
    bar = ProgressBar(kind, job_id, settings.progress)
    try:
        job = settings.client.wait(kind, job_id, timeout=timeout, on_update=bar.update)
        bar.update(job)
        return job
    finally:
        bar.close()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--url", envvar="OPSDECK_URL", help="The portal's address (default: $OPSDECK_URL).")
@click.option("--json", "json_output", is_flag=True, help="Print the API's JSON documents instead of text.")
@click.option("--timeout", default=30.0, show_default=True, help="Seconds to wait for each HTTP answer.")
@click.option("--no-progress", is_flag=True, help="No progress bar on stderr.")
@click.version_option("0.1.0", prog_name="opsdeck")
@click.pass_context
def cli(context: click.Context, url: str | None, json_output: bool, timeout: float, no_progress: bool) -> None:
    """Opsdeck from scripts. The API token comes from $OPSDECK_TOKEN (never an option: shells keep history)."""
    context.obj = Settings(url, json_output, timeout, progress=not no_progress)


# --- jobs


@cli.group()
def jobs() -> None:
    """Quantum jobs and sweeps; any job's live status."""


@jobs.command("submit")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--shots", type=int, help="Shots per run (the portal's default: 1024).")
@click.option(
    "--sweep",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="JSON file of parameter sets: a list of {name: number} objects, one run each.",
)
@click.option("--name", default="", help="A name to find the job by.")
@click.option("--seed", type=int, help="Simulator seed: same seed, same counts.")
@click.option("--wait", is_flag=True, help="Wait for the result, with a progress bar on stderr.")
@click.option("--wait-timeout", type=float, help="Give up waiting after this many seconds (exit 1).")
@pass_settings
def jobs_submit(
    settings: Settings,
    file: Path,
    shots: int | None,
    sweep: Path | None,
    name: str,
    seed: int | None,
    wait: bool,
    wait_timeout: float | None,
) -> None:
    """Submit FILE (OpenQASM 2 or 3) as a job, or as a sweep with --sweep."""
    try:
        source = file.read_text(encoding="utf-8")
    except (OSError, UnicodeError) as exc:
        raise ConfigurationError(f"Cannot read {file}: {exc}.") from None
    parameter_sets = None
    if sweep is not None:
        document = _read_json(sweep, "The sweep file")
        parameter_sets = document.get("parameter_sets") if isinstance(document, dict) else document
        if not isinstance(parameter_sets, list):
            raise ConfigurationError(f"The sweep file {sweep} must hold a list of parameter sets.")
    fields: dict[str, Any] = {"name": name} if name else {}
    if seed is not None:
        fields["seed"] = seed
    job = settings.client.quantum_submit(source, shots=shots, parameter_sets=parameter_sets, **fields)
    if not wait:
        position = job.get("queue_position")
        _emit(settings, job, f"submitted quantum job {job['id']} ({job['status']}, queue position {position})")
        return
    click.echo(f"submitted quantum job {job['id']}", err=True)
    _wait(settings, "quantum", job["id"], wait_timeout)
    result = settings.client.quantum_result(job["id"])
    _emit(settings, result, _result_lines(result))


def _result_lines(result: dict[str, Any]) -> list[str]:
    lines = [f"quantum job {result['id']} {result['status']}"]
    if result.get("counts") is not None:
        lines.append("counts: " + json.dumps(result["counts"], sort_keys=True))
    for index, entry in enumerate(result.get("results") or []):
        outcome = {key: value for key, value in entry.items() if key != "parameters"}
        lines.append(f"set {index} {json.dumps(entry.get('parameters'))}: {json.dumps(outcome, sort_keys=True)}")
    return lines


@jobs.command("list")
@click.option("--status", help="Only jobs with this status.")
@click.option("--limit", default=20, show_default=True, help="At most this many, newest first.")
@pass_settings
def jobs_list(settings: Settings, status: str | None, limit: int) -> None:
    """Quantum jobs you may see, newest first."""
    filters = {"status": status} if status else {}
    found = _first(settings.client.quantum_jobs(**filters), limit)
    lines = [f"{job['id']}\t{job['status']}\t{job['owner']}\t{job['name']}" for job in found]
    _emit(settings, found, lines)


def _first(items: Iterator[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for item in items:
        if len(found) >= limit:
            break
        found.append(item)
    return found


@jobs.command("watch")
@click.argument("job_id", type=int, required=False)
@click.option("--kind", type=KINDS, default="quantum", show_default=True, help="The kind of job ID is.")
@pass_settings
def jobs_watch(settings: Settings, job_id: int | None, kind: str) -> None:
    """Stream live status from /ws/jobs/: one job until it has finished, or without JOB_ID every job you may see
    (until interrupted). Exit 1 if the job failed or was cancelled."""
    last: dict[str, Any] = {}
    for update in settings.client.watch(kind if job_id is not None else None, job_id):
        last = update
        if settings.json_output:
            click.echo(json.dumps(update, ensure_ascii=False))
            continue
        progress = update.get("progress") or {}
        done = f" {progress.get('done')}/{progress.get('total')}" if progress.get("total") else ""
        error = f" {update['error']}" if update.get("error") else ""
        click.echo(f"{update.get('kind')} #{update.get('id')} {update.get('status')}{done}{error}")
    if job_id is not None and last.get("status") in ("failed", "cancelled"):
        raise JobFailed(kind, last)


@jobs.command("result")
@click.argument("job_id", type=int)
@click.option("--kind", type=click.Choice(["quantum", "inference"]), default="quantum", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write it to this file.")
@pass_settings
def jobs_result(settings: Settings, job_id: int, kind: str, output: Path | None) -> None:
    """A completed job's result: a quantum job's counts or per-set results (JSON), an inference job's file."""
    if kind == "inference":
        if output is None:
            raise click.UsageError("An inference job's results are a file: give -o FILE.")
        settings.client.inference_result(job_id, output)
        _emit(settings, {"id": job_id, "file": str(output)}, f"wrote {output}")
        return
    result = settings.client.quantum_result(job_id)
    if output is None:
        _emit(settings, result, _result_lines(result))
        return
    output.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    _emit(settings, {"id": job_id, "file": str(output)}, f"wrote {output}")


# --- compliance reports


@cli.group()
def reports() -> None:
    """Signed compliance reports: list, download, verify offline."""


@reports.command("list")
@click.option("--limit", default=20, show_default=True, help="At most this many, newest first.")
@pass_settings
def reports_list(settings: Settings, limit: int) -> None:
    """Reports, newest first (compliance officers and administrators)."""
    found = _first(settings.client.reports(), limit)
    lines = [
        f"{report['id']}\t{report['status']}\t{report['kind']}\t{report['format']}\t"
        f"{report['period_start']}..{report['period_end']}"
        for report in found
    ]
    _emit(settings, found, lines)


@reports.command("download")
@click.argument("report_id", type=int)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
@pass_settings
def reports_download(settings: Settings, report_id: int, output: Path) -> None:
    """Download a report's file to OUTPUT and its signed manifest to OUTPUT.manifest.json.

    The portal hands report files only to a browser session that re-authenticated with an authenticator code:
    set $OPSDECK_SESSION to that session's sessionid cookie (the manifest comes with the token)."""
    path, manifest = settings.client.report_download(report_id, output)
    _emit(settings, {"id": report_id, "file": str(path), "manifest": str(manifest)}, f"wrote {path} and {manifest}")


@reports.command("verify")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Default: FILE.manifest.json."
)
@click.option(
    "--key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The public key (PEM) to verify with, offline. Default: the key the portal publishes.",
)
@pass_settings
def reports_verify(settings: Settings, file: Path, manifest: Path | None, key: Path | None) -> None:
    """Check FILE's SHA-256 and Ed25519 signature against its manifest (exit 3 if it does not verify)."""
    document = signing.read_manifest(manifest or file.with_name(file.name + ".manifest.json"))
    if key is not None:
        public_key = signing.load_public_key(key.read_bytes(), source=f"--key {key}")
    else:
        public_key = signing.load_public_key(settings.client.public_key_pem(), source="The portal's public key")
    fingerprint = signing.report_verify(file, document, public_key)
    summary = {"file": str(file), "verified": True, "sha256": document.get("sha256"), "key_fingerprint": fingerprint}
    _emit(settings, summary, f"OK: {file.name} matches its signed manifest (key {fingerprint}).")


@reports.command("public-key")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write the PEM here.")
@pass_settings
def reports_public_key(settings: Settings, output: Path | None) -> None:
    """The portal's report-signing public key (PEM), to verify reports offline later."""
    pem = settings.client.public_key_pem()
    if output is None:
        click.echo(pem.decode("ascii"), nl=False)
        return
    output.write_bytes(pem)
    fingerprint = signing.fingerprint_of(signing.load_public_key(pem))
    _emit(settings, {"file": str(output), "key_fingerprint": fingerprint}, f"wrote {output} (key {fingerprint})")


# --- model registry


@cli.group()
def models() -> None:
    """The model registry: list models and predict."""


@models.command("list")
@pass_settings
def models_list(settings: Settings) -> None:
    """Registered models with their task, latest version and aliases."""
    found = list(settings.client.models())
    lines = []
    for model in found:
        aliases = ", ".join(f"{alias}=v{number}" for alias, number in sorted((model.get("aliases") or {}).items()))
        lines.append(f"{model['name']}\t{model.get('task', '')}\tlatest v{model.get('latest_version')}\t{aliases}")
    _emit(settings, found, lines)


@models.command("predict")
@click.argument("model")
@click.argument("texts", nargs=-1, required=True)
@click.option("--version", "number", type=int, help="Use this version number instead of an alias.")
@pass_settings
def models_predict(settings: Settings, model: str, texts: tuple[str, ...], number: int | None) -> None:
    """Run MODEL (NAME or NAME:ALIAS; production by default) on each TEXT."""
    name, _, alias = model.partition(":")
    if not name:
        raise click.UsageError("MODEL is NAME or NAME:ALIAS.")
    answer = settings.client.predict(name, list(texts), alias=alias or None, version=number)
    lines = [f"{answer['model']} v{answer['version']}" + (f" ({answer['alias']})" if answer.get("alias") else "")]
    outputs = zip(texts, answer["outputs"], strict=False)
    lines += [f"{text}\t{json.dumps(output, ensure_ascii=False)}" for text, output in outputs]
    _emit(settings, answer, lines)


# --- backups


@cli.group()
def backups() -> None:
    """Database backups (administrators)."""


@backups.command("create")
@click.option("--wait", is_flag=True, help="Wait until the backup is taken, with a progress bar on stderr.")
@click.option("--wait-timeout", type=float, help="Give up waiting after this many seconds (exit 1).")
@pass_settings
def backups_create(settings: Settings, wait: bool, wait_timeout: float | None) -> None:
    """Queue a backup; with --wait, exit 1 unless it completes."""
    job = settings.client.backup_create()
    if not wait:
        _emit(settings, job, f"queued backup job {job['id']} ({job['status']})")
        return
    click.echo(f"queued backup job {job['id']}", err=True)
    job = _wait(settings, "backup", job["id"], wait_timeout)
    backup = job.get("backup") or {}
    _emit(settings, job, f"backup {backup.get('id')} {backup.get('status')}: {backup.get('size_bytes')} bytes")


@backups.command("list")
@click.option("--limit", default=20, show_default=True, help="At most this many, newest first.")
@pass_settings
def backups_list(settings: Settings, limit: int) -> None:
    """Backups, newest first."""
    found = _first(settings.client.backups(), limit)
    lines = [f"{backup['id']}\t{backup['status']}\t{backup.get('size_bytes')}" for backup in found]
    _emit(settings, found, lines)


# --- maintenance mode and workers


@cli.group()
def maintenance() -> None:
    """Maintenance mode (read-only mode)."""


@maintenance.command("status")
@pass_settings
def maintenance_status(settings: Settings) -> None:
    """Whether maintenance mode is on, until when, and the windows planned within a day."""
    status = settings.client.maintenance()
    if status["active"]:
        end = f"until {status['until']}" if status.get("until") else "until it is turned off"
        lines = [f"maintenance mode is on ({status.get('source')}) {end}: {status.get('message', '')}".rstrip()]
    else:
        lines = ["maintenance mode is off"]
    lines += [
        f"planned: {window['starts_at']} to {window['ends_at']}: {window.get('message', '')}".rstrip()
        for window in status.get("upcoming") or []
    ]
    _emit(settings, status, lines)


@cli.group()
def workers() -> None:
    """Workers and queues (staff)."""


@workers.command("list")
@click.option("--minutes", type=click.IntRange(1, 24 * 60), help="Jobs per minute over this window (default 15).")
@pass_settings
def workers_list(settings: Settings, minutes: int | None) -> None:
    """Each queue (waiting, held during maintenance, jobs per minute), then each worker with its running jobs."""
    overview = settings.client.workers(minutes=minutes)
    lines = []
    for queue in overview["queues"]:
        depth = "unknown" if queue["depth"] is None else queue["depth"]
        consumers = ", ".join(queue["consumers"]) or "none"
        lines.append(
            f"queue {queue['name']}\twaiting {depth}\theld {queue.get('held', 0)}\t"
            f"{queue['per_minute']}/min\tworkers: {consumers}"
        )
    held = overview.get("held_during_maintenance") or {}
    if held.get("total"):
        lines.append(f"{held['total']} jobs held during maintenance; they start when it ends")
    for worker in overview["workers"]:
        queues = ",".join(worker["queues"]) or "-"
        lines.append(
            f"worker {worker['hostname']}\t{worker['state']}\tqueues {queues}\t"
            f"running {len(worker['running_jobs'])}\tlast heartbeat {worker['last_heartbeat']}"
        )
        lines += [f"  {job['kind']} {job['id']}\t{job['status']}\t{job['name']}" for job in worker["running_jobs"]]
    _emit(settings, overview, lines)


def _fail(code: int, message: str, document: dict[str, Any], json_output: bool) -> NoReturn:
    if json_output:
        click.echo(json.dumps({"error": message, **document}, ensure_ascii=False))
    click.echo(f"opsdeck: error: {message}", err=True)
    sys.exit(code)


def main() -> None:
    """The ``opsdeck`` command: errors become one line and an exit code, never a traceback."""
    json_output = "--json" in sys.argv[1:]
    try:
        code = cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        _fail(130, "interrupted", {}, json_output)
    except click.exceptions.NoArgsIsHelpError as exc:
        # A bare group (`opsdeck`, `opsdeck jobs`) shows its help.
        click.echo(exc.format_message(), err=True)
        sys.exit(EXIT_USAGE)
    except click.UsageError as exc:
        # One line, as every other error: the usage is one --help away.
        command = exc.ctx.command_path if exc.ctx is not None else "opsdeck"
        _fail(EXIT_USAGE, f"{exc.format_message()} (see '{command} --help')", {}, json_output)
    except click.ClickException as exc:
        _fail(exc.exit_code, exc.format_message(), {}, json_output)
    except KeyboardInterrupt:
        _fail(130, "interrupted", {}, json_output)
    except VerificationFailed as exc:
        _fail(EXIT_NOT_VERIFIED, str(exc), {"verified": False, "problems": exc.problems}, json_output)
    except ConfigurationError as exc:
        _fail(EXIT_USAGE, str(exc), {}, json_output)
    except ApiError as exc:
        _fail(EXIT_ERROR, str(exc), {"status": exc.status, "code": exc.code, "body": exc.body}, json_output)
    except OpsdeckError as exc:
        _fail(EXIT_ERROR, str(exc), {}, json_output)
    except Exception as exc:
        # A user sees one line; OPSDECK_DEBUG=1 shows where it came from.
        if os.environ.get("OPSDECK_DEBUG"):
            raise
        _fail(EXIT_ERROR, f"unexpected {type(exc).__name__}: {exc} (OPSDECK_DEBUG=1 shows details)", {}, json_output)
    sys.exit(code if isinstance(code, int) else 0)
