"""The alerting rules and the Grafana dashboard shipped in deploy/: promtool checks and unit-tests the rules, every
alert is documented and tested both ways, and every metric they name is one a real portal and a real worker export."""

import json
import re
import shutil
import subprocess
import time
import urllib.request
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest
import yaml
from django.utils import timezone

from apps.accounts.tokens import token_create
from apps.backups.choices import BackupStatus
from apps.backups.metrics import backup_metrics_record
from apps.backups.models import Backup
from apps.jobs.models import WorkerPresence
from apps.jobs.workers import workers_count_publish
from apps.registry.drift import length_bin
from apps.registry.models import DriftCount, ModelVersion, RegisteredModel
from project.celery import app as celery_app
from tests.backups.test_backup_retention import backup_at
from tests.core.test_metrics import _sample
from tests.helpers import PROJECT_DIR, free_port
from tests.quantum_circuits import ghz_qasm2

RULES = PROJECT_DIR / "deploy" / "prometheus" / "alerts.yml"
RULE_TESTS = PROJECT_DIR / "deploy" / "prometheus" / "tests.yml"
SCRAPE_CONFIG = PROJECT_DIR / "deploy" / "prometheus" / "prometheus.yml"
DASHBOARD = PROJECT_DIR / "deploy" / "grafana" / "opsdeck.json"
COMPOSE = PROJECT_DIR / "docker-compose.yml"
README = PROJECT_DIR / "README.md"
RUNBOOK_ANCHOR = "README.md#alerting-and-dashboards"

# Series Prometheus records itself for every scrape; the portal cannot export them.
PROMETHEUS_OWN = {"up"}

# PromQL words that look like metric names but are not.
KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool"}
KEYWORDS |= {"inf", "nan", "atan2"}
STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
MATCHERS = re.compile(r"\{[^{}]*\}")
LABEL_LISTS = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
RANGES = re.compile(r"\[[^\[\]]*\]")
NUMBER = re.compile(r"(?<![\w:$])(?:0x[0-9a-fA-F]+|\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+)(?![\w:])")
# What a family's samples add to its name (prometheus_client's text format).
SAMPLE_SUFFIXES = ("_total", "_bucket", "_count", "_sum", "_created", "_gsum", "_gcount", "_info")
# A whole identifier (nothing of one before or after it) that no ``(`` follows.
IDENTIFIER = re.compile(r"(?<![\w:$.])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:]|\s*\()")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: identifiers that are not functions (followed by ``(``), label
    names or values (inside ``{…}``, ``by (…)``, ``on (…)``…), durations (inside ``[…]``), numbers or keywords."""
    text = STRING.sub('""', expr)  # a label value may hold braces or brackets
    text = MATCHERS.sub(" ", text)
    text = LABEL_LISTS.sub(" ", text)
    text = RANGES.sub(" ", text)
    text = NUMBER.sub(" ", text)
    return {name for name in IDENTIFIER.findall(text) if name.lower() not in KEYWORDS}


def exported_names(exposition: str) -> dict[str, str]:
    """Every sample name of a Prometheus text exposition (``x_total``, ``x_bucket``…) with its family's type."""
    types: dict[str, str] = {}
    names: dict[str, str] = {}
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            _, _, family, kind = line.split(" ", 3)
            types[family] = kind
        elif line and not line.startswith("#"):
            names[re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group()] = ""
    for name in names:
        families = [name] + [name.removesuffix(suffix) for suffix in SAMPLE_SUFFIXES if name.endswith(suffix)]
        names[name] = next((types[family] for family in families if family in types), "untyped")
    return names


def missing_names(wanted: set[str], exported: dict[str, str]) -> list[str]:
    """The names of ``wanted`` the endpoints do not serve; a histogram's ``_bucket`` must belong to a histogram."""
    missing = []
    for name in sorted(wanted - PROMETHEUS_OWN):
        if name not in exported:
            missing.append(name)
        elif name.endswith("_bucket") and exported[name] != "histogram":
            missing.append(f"{name} (a {exported[name]}, not a histogram)")
    return missing


def _alerts() -> list[dict]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def _dashboard_queries() -> list[tuple[str, str]]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [(panel["title"], target["expr"]) for panel in panels for target in panel.get("targets", [])]


def _promtool(*arguments: str) -> subprocess.CompletedProcess:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is missing: `make test` installs Debian's prometheus package, which provides it")
    return subprocess.run(
        [promtool, *arguments], cwd=PROJECT_DIR, capture_output=True, text=True, timeout=120, check=False
    )


# --- The rules, as files


def test_promtool_accepts_the_alerting_rules():
    result = _promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(_alerts())} rules found" in result.stdout


def test_the_alerting_rules_pass_their_promtool_unit_tests():
    result = _promtool("test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_the_issue_asks_for_every_one_of_these_alerts():
    assert {rule["alert"] for rule in _alerts()} >= {
        "OpsdeckPortalDown",
        "OpsdeckReadinessFailing",
        "OpsdeckQueueGrowing",
        "OpsdeckJobsFailing",
        "OpsdeckNoVerifiedBackup",
        "OpsdeckAuditChainInvalid",
        "OpsdeckModelDrift",
        "OpsdeckQueueWithoutWorker",
        "OpsdeckNoWorkers",
        "OpsdeckHighErrorRate",
        "OpsdeckHighLatency",
    }


def test_every_alert_waits_has_a_severity_says_what_happened_and_points_at_its_readme_section():
    readme = README.read_text()
    assert "\n## Alerting and dashboards\n" in readme
    section = readme.split("\n## Alerting and dashboards\n", 1)[1].split("\n## ", 1)[0]
    for rule in _alerts():
        name = rule["alert"]
        assert re.fullmatch(r"\d+[smh]", rule.get("for", "")), f"{name}: no for:"
        assert rule["labels"]["severity"] in ("critical", "warning"), name
        annotations = rule["annotations"]
        assert annotations["summary"].strip(), name
        assert annotations["description"].strip(), name
        assert annotations["runbook"] == f"{RUNBOOK_ANCHOR} ({name})", name
        assert f"`{name}`" in section, f"{name} is not explained in the README section"


def test_every_alert_has_unit_tests_that_fire_it_and_tests_that_must_not():
    fired, silent = set(), set()
    for case in yaml.safe_load(RULE_TESTS.read_text())["tests"]:
        for check in case["alert_rule_test"]:
            (fired if check["exp_alerts"] else silent).add(check["alertname"])
    names = {rule["alert"] for rule in _alerts()}
    assert names - fired == set(), "never shown firing"
    assert names - silent == set(), "never shown staying silent"


def test_metric_names_are_read_from_promql_without_functions_labels_or_durations():
    expr = (
        "histogram_quantile(0.95, sum by (le, view) (rate(django_http_requests_latency_seconds_by_view_method_bucket"
        '{job="opsdeck-web", view!~"health-ready|a{b}"}[$__rate_interval]))) > 0.5 and on (queue) '
        "max by (queue)(max_over_time(opsdeck_workers[1d])) > 0 or absent(up{job='x'} == 1) "
        "unless time() - max(backup_last_success_timestamp_seconds) > 26 * 3600 + 1e3 "
        "or sum(rate(quantum_jobs_total[5m] offset 1h)) by (status) or vector(0)"
    )
    assert metric_names(expr) == {
        "django_http_requests_latency_seconds_by_view_method_bucket",
        "opsdeck_workers",
        "up",
        "backup_last_success_timestamp_seconds",
        "quantum_jobs_total",
    }


def test_a_name_is_exported_only_as_served_and_a_bucket_only_of_a_histogram():
    exposition = "\n".join(
        [
            "# TYPE jobs counter",
            'jobs_total{kind="quantum"} 1.0',
            "# TYPE latency histogram",
            'latency_bucket{le="+Inf"} 1.0',
            "latency_count 1.0",
            "# TYPE depth_bucket gauge",
            "depth_bucket 2.0",
        ]
    )
    exported = exported_names(exposition)
    assert missing_names({"jobs_total", "latency_bucket", "latency_count", "up"}, exported) == []
    assert missing_names({"jobs", "latency", "latency_sum", "depth_bucket"}, exported) == [
        "depth_bucket (a gauge, not a histogram)",
        "jobs",
        "latency",
        "latency_sum",
    ]


def test_the_compose_prometheus_loads_the_shipped_rules_and_scrapes_the_jobs_the_rules_expect():
    result = _promtool("check", "config", str(SCRAPE_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 1 rule files found" in result.stdout
    jobs = {job["job_name"]: job for job in yaml.safe_load(SCRAPE_CONFIG.read_text())["scrape_configs"]}
    rule_jobs = set(re.findall(r'job="([^"]+)"', RULES.read_text()))
    assert set(jobs) == rule_jobs == {"opsdeck-web", "opsdeck-workers"}

    services = yaml.safe_load(COMPOSE.read_text())["services"]
    prometheus = services["prometheus"]
    assert prometheus["profiles"] == ["monitoring"]
    assert "./deploy/prometheus:/etc/prometheus/opsdeck:ro" in prometheus["volumes"]
    assert "--config.file=/etc/prometheus/opsdeck/prometheus.yml" in prometheus["command"]
    # The portal answers Prometheus's Host header, and every worker target serves its metrics to the network.
    assert "web" in services["web"]["environment"]["ALLOWED_HOSTS"].split(",")
    (web_target,) = jobs["opsdeck-web"]["static_configs"][0]["targets"]
    assert web_target == "web:8000"
    for target in jobs["opsdeck-workers"]["static_configs"][0]["targets"]:
        name, _, port = target.partition(":")
        assert "profiles" not in services[name], f"{name} does not always run"
        assert services[name]["environment"]["WORKER_METRICS_ADDRESS"] == "0.0.0.0"  # noqa: S104 - to the compose network
        assert port in services[name]["expose"]


def test_the_dashboard_is_importable_and_each_panel_queries_something():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "opsdeck"
    panels = [panel for panel in dashboard["panels"] if panel["type"] != "row"]
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])
    for panel in panels:
        assert panel["targets"], panel["title"]
        assert all(metric_names(target["expr"]) for target in panel["targets"]), panel["title"]
        # Nothing sticks out of Grafana's 24-column grid.
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]


# --- The gauges the alerts need


@pytest.mark.django_db
def test_each_readiness_probe_publishes_every_checks_result(client, settings):
    client.get("/health/ready")
    text = client.get("/metrics").content.decode()
    assert _sample(text, "opsdeck_readiness_check_ok", check="database", required="true") == 1
    assert _sample(text, "opsdeck_readiness_check_ok", check="backups", required="false") == 0  # none made yet

    settings.HEALTH_MIN_FREE_DISK_MB = 10**12  # more than any disk has
    client.get("/health/ready")
    text = client.get("/metrics").content.decode()
    assert _sample(text, "opsdeck_readiness_check_ok", check="disk", required="false") == 0


@pytest.mark.django_db
def test_the_verified_backup_gauge_follows_when_the_backup_was_taken_not_when_it_was_verified(client):
    recent = backup_at(timezone.now() - timedelta(days=2), BackupStatus.VERIFIED)
    backup_metrics_record(recent)
    # Verifying a month-old backup now makes no recent data safe.
    old = backup_at(timezone.now() - timedelta(days=30), BackupStatus.VERIFIED)
    backup_metrics_record(old)

    text = client.get("/metrics").content.decode()
    assert _sample(text, "backup_newest_verified_taken_timestamp_seconds") == recent.started_at.timestamp()
    assert _sample(text, "backup_last_verified_timestamp_seconds") == old.verified_at.timestamp()

    Backup.objects.all().delete()
    client.get("/health/ready")
    text = client.get("/metrics").content.decode()
    assert _sample(text, "backup_newest_verified_taken_timestamp_seconds") == 0


@pytest.mark.django_db
def test_workers_publish_the_live_workers_of_every_queue_and_zero_for_queues_nobody_takes(client, settings):
    now = timezone.now()
    for hostname, queues, seen in (
        ("a@host", ["default", "quantum"], now),
        ("b@host", ["quantum"], now),
        # Not heard from within WORKER_ANNOUNCE_TIMEOUT: killed, or its host is lost.
        ("c@host", ["registry"], now - timedelta(seconds=settings.WORKER_ANNOUNCE_TIMEOUT + 1)),
    ):
        WorkerPresence.objects.create(hostname=hostname, queues=queues, memory_bytes=1, started_at=now, seen_at=seen)

    workers_count_publish()

    text = client.get("/metrics").content.decode()
    assert _sample(text, "opsdeck_workers", queue="quantum") == 2
    assert _sample(text, "opsdeck_workers", queue="default") == 1
    assert _sample(text, "opsdeck_workers", queue="registry") == 0
    assert _sample(text, "opsdeck_workers", queue="maintenance") == 0


# --- The names, against live endpoints


def _scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        return response.read().decode()


def _drift_watched_version(owner) -> None:
    """A version with an evaluation's reference and a window of predictions, as the drift check reads them."""
    model = RegisteredModel.objects.create(name="alerting", task="text-classification", owner=owner)
    short = length_bin("a short ticket")
    reference = {"label": {"negative": 50, "positive": 50}, "input_length": {short: 100}}
    version = ModelVersion.objects.create(
        model=model,
        version=1,
        artifact="registry/artifacts/alerting.zip",
        sha256="0" * 64,
        size_bytes=1,
        status="ready",
        labels=["negative", "positive"],
        created_by=owner,
        metrics={"evaluation": {"reference": reference}},
    )
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    for feature, value in (("label", "negative"), ("label", "positive"), ("input_length", short)):
        DriftCount.objects.create(
            version=version, hour=hour, feature=feature, value=value, predictions=60 if feature == "label" else 120
        )


@contextmanager
def _prometheus(tmp_path, *, web: str, worker: str):
    """Debian's Prometheus on a free loopback port, loading the shipped rules and scraping ``web`` and ``worker``
    every second as the jobs the rules expect."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is missing: `make test` installs Debian's prometheus package, which provides it")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [
            {"job_name": "opsdeck-web", "static_configs": [{"targets": [web.removeprefix("http://")]}]},
            {
                "job_name": "opsdeck-workers",
                "static_configs": [{"targets": [worker.removeprefix("http://").removesuffix("/metrics")]}],
            },
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    url = f"http://127.0.0.1:{free_port()}"
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address={url.removeprefix('http://')}",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(url + "/-/ready", timeout=2):
                    break
            except OSError:
                assert process.poll() is None, process.stderr.read()
                assert time.monotonic() < deadline, "Prometheus did not get ready within 30 s"
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.communicate(timeout=30)


def _api(prometheus: str, path: str, **parameters: str) -> dict:
    with urllib.request.urlopen(f"{prometheus}/api/v1/{path}?{urlencode(parameters)}", timeout=10) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    return body["data"]


def _query(prometheus: str, expr: str) -> list:
    return _api(prometheus, "query", query=expr)["result"]


def _query_until(prometheus: str, expr: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not _query(prometheus, expr):
        assert time.monotonic() < deadline, f"{expr} stayed empty for {timeout} s"
        time.sleep(0.5)


def _rules_evaluated(prometheus: str, timeout: float = 30) -> list[dict]:
    """The alerting rules once each has been evaluated at least once."""
    deadline = time.monotonic() + timeout
    while True:
        groups = _api(prometheus, "rules", type="alert")["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        if rules and all(rule.get("lastEvaluation", "").startswith(("1", "2")) for rule in rules):
            return rules
        assert time.monotonic() < deadline, "Prometheus did not evaluate every rule"
        time.sleep(0.5)


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_every_metric_the_rules_and_the_dashboard_name_is_served_by_the_web_or_the_worker(
    web_and_worker_hosts, operator_user, tmp_path
):
    portal, worker_metrics = web_and_worker_hosts
    # Traffic: pages and API calls (some refused), a readiness probe, a quantum job run by the worker, then the
    # scheduled audit verification and drift check on the worker.
    token = token_create(owner=operator_user, name="alerting", scopes=["read", "write"], expires_in_days=1).secret
    assert portal.get_json("/health/ready")[0] == 200
    assert portal.get_json("/api/v1/quantum/jobs/", token=token)[0] == 200
    assert portal.get_json("/api/v1/quantum/jobs/", token="wrong")[0] == 401
    status, job = portal.post_json("/api/v1/quantum/jobs/", {"source": ghz_qasm2(3), "shots": 100}, token=token)
    assert status == 201, job
    _drift_watched_version(operator_user)
    deadline = time.monotonic() + 60
    while job["status"] not in ("completed", "failed") and time.monotonic() < deadline:
        time.sleep(0.2)
        _, job = portal.get_json(f"/api/v1/quantum/jobs/{job['id']}/", token=token)
    assert job["status"] == "completed", job
    for task in ("maintenance.audit_verify", "maintenance.registry_drift_check"):
        celery_app.send_task(task, queue="maintenance")

    wanted = {name for rule in _alerts() for name in metric_names(rule["expr"])}
    wanted |= {name for _, expr in _dashboard_queries() for name in metric_names(expr)}
    # Worker children write their metrics as they finish a task: scrape until every name shows, or time is up.
    deadline = time.monotonic() + 60
    while True:
        web, worker = _scrape(portal.url + "/metrics"), _scrape(worker_metrics)
        exported = {**exported_names(worker), **exported_names(web)}
        missing = missing_names(wanted, exported)
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert missing == [], f"named in deploy/ but served by neither endpoint: {missing}"
    # The names this feature added come from where the README says: readiness from the web, workers from workers.
    assert "opsdeck_readiness_check_ok" in exported_names(web)
    assert {"opsdeck_workers", "opsdeck_queue_depth", "audit_chain_valid", "registry_drift_psi"} <= set(
        exported_names(worker)
    )
    assert 'opsdeck_readiness_check_ok{check="database",required="true"} 1.0' in web
    assert 'opsdeck_workers{queue="quantum"} 1.0' in worker
    assert 'opsdeck_workers{queue="registry"} 0.0' in worker
    assert "audit_chain_valid 1.0" in worker

    # A real Prometheus scrapes both and evaluates the rules and every dashboard query against what it scraped.
    with _prometheus(tmp_path, web=portal.url, worker=worker_metrics) as prometheus:
        _query_until(prometheus, 'count(up{job=~"opsdeck-web|opsdeck-workers"} == 1) == 2')
        # Two scrapes at least, so that rate() has something to work on.
        _query_until(prometheus, "count_over_time(opsdeck_workers[1m]) >= 3")
        empty = []
        for title, expr in _dashboard_queries():
            if not _query(prometheus, expr.replace("$__rate_interval", "1m")):
                empty.append(f"{title}: {expr}")
        assert empty == [], "dashboard queries that show nothing on a live portal"
        rules = _rules_evaluated(prometheus)
    assert {rule["name"] for rule in rules} == {rule["alert"] for rule in _alerts()}
    assert [rule for rule in rules if rule["health"] != "ok"] == []
    active = {rule["name"] for rule in rules if rule["state"] != "inactive"}
    # A fresh installation has made no backup yet; everything else is up, ready, verified and staffed.
    assert active == {"OpsdeckBackupTooOld", "OpsdeckNoVerifiedBackup", "OpsdeckReadinessDegraded"}
