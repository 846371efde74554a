"""List benchmark: every API list at a million rows, each ordering and each filter, against a bare page.

Starts the portal as deployed (`runportal`, scratch PostgreSQL database, Redis database 14), bulk-loads
LIST_ROWS (1,000,000) rows into each listed table with generate_series (quantum jobs, inference jobs, reports,
backups, backup jobs, audit events), VACUUM ANALYZEs them as autovacuum would, then asks each list over HTTP
with a keep-alive connection: its default order, each offered ordering in both directions and each filter
(a common and a rare value), one at a time, as an owner of all the rows (an operator and compliance officer)
and as an administrator. Next to each request the same page (same rows, order and size) is fetched by a bare
``.values()`` JsonResponse view in the same portal (benchmarks/lists_urls.py); the pages are checked equal.
Targets: p95 <= 25 ms and p95 ratio to the bare page <= 2.

    .venv/bin/python benchmarks/lists.py          # LIST_ROWS=100000 for a quicker run
    LIST_ONLY="audit events" .venv/bin/python benchmarks/lists.py   # only the lists so titled (comma-separated)
"""

from __future__ import annotations

import http.client
import json
import os
import statistics
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.portal import percentile, portal_running, verdict

DATABASE = "opsdeck_bench_lists"
REDIS_URL = "redis://127.0.0.1:6379/14"
ROWS = int(os.environ.get("LIST_ROWS", "1000000"))
ONLY = [title.strip() for title in os.environ.get("LIST_ONLY", "").split(",") if title.strip()]
REQUESTS = 50
PAGE_SIZE = 50
TARGET_P95_MS = 25.0
TARGET_RATIO = 2.0
OWNER = "bench-operator"
RARE = 100_000  # one row in this many carries the rare value of a filter

# Row n (1..ROWS) was created n/4 seconds after START: four rows share each created_at, so ties are paged.
START = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=ROWS // 4)
MOMENT = f"(timestamptz '{START.isoformat()}' + interval '1 second' * (n / 4))"
# The time filters' values: the last thousand rows' start and the middle of each table.
TIMES = {
    "recent": (START + timedelta(seconds=(ROWS - 1000) // 4)).isoformat(),
    "middle": (START + timedelta(seconds=ROWS // 8)).isoformat(),
}
QUEUED_NEWEST = 20
JOB_STATUS = (
    f"CASE WHEN n > {ROWS - QUEUED_NEWEST} THEN 'queued' WHEN n % 50 = 0 THEN 'failed' "
    "WHEN n % 50 = 1 THEN 'cancelled' ELSE 'completed' END"
)
JOB_FINISHED = f"CASE WHEN n > {ROWS - QUEUED_NEWEST} THEN NULL ELSE {MOMENT} + interval '1 second' * (n % 7) END"


def rare(value: str, common: str) -> str:
    return f"CASE WHEN n % {RARE} = 7 THEN {value} ELSE {common} END"


@dataclass(frozen=True)
class ListSpec:
    """One API list, what it offers, and how the bare view reads the same page."""

    title: str
    path: str
    model: str
    columns: dict[str, str]
    fields: tuple[str, ...]
    default_order: tuple[str, ...]
    orderings: tuple[str, ...] = ()
    # (API query, ORM lookups of the same filter); values naming times are filled in after loading.
    filters: tuple[tuple[dict, dict], ...] = ()
    readers: tuple[str, ...] = ("owner", "admin")
    # The owner sees only their own rows: the bare page filters by owner too.
    owner_scoped: bool = False
    # Filters bounding a time, by the field they bound: the API then orders newest first by it (time_ranges).
    time_ranges: tuple[tuple[str, str], ...] = ()


def specs(ids: dict[str, int]) -> list[ListSpec]:
    owner, v1, v2, v3 = ids["owner"], ids["v1"], ids["v2"], ids["v3"]
    job_times = {"created_at": MOMENT, "updated_at": MOMENT, "finished_at": JOB_FINISHED}
    return [
        ListSpec(
            "quantum jobs",
            "/api/v1/quantum/jobs/",
            "quantum.QuantumJob",
            {
                "owner_id": str(owner),
                "name": "'job ' || n",
                "tags": rare("'[\"rare\"]'::jsonb", "jsonb_build_array('bench', 'batch-' || (n % 10))"),
                "source": "'OPENQASM 2.0;'",
                "qasm_version": "2",
                "num_qubits": "5",
                "num_clbits": "5",
                "depth": "6",
                "shots": "1024",
                "method": rare(
                    "'extended_stabilizer'",
                    "(ARRAY['automatic','statevector','density_matrix','stabilizer'])[n % 4 + 1]",
                ),
                "status": JOB_STATUS,
                **job_times,
            },
            ("id", "name", "owner_id", "tags", "status", "method", "shots", "priority", "created_at", "finished_at"),
            ("-id",),
            ("id", "created_at", "finished_at"),
            (
                ({"status": "completed"}, {"status": "completed"}),
                ({"status": "running"}, {"status": "running"}),
                ({"method": "statevector"}, {"method": "statevector"}),
                ({"method": "extended_stabilizer"}, {"method": "extended_stabilizer"}),
                ({"tag": "batch-3"}, {"tags__contains": ["batch-3"]}),
                ({"tag": "rare"}, {"tags__contains": ["rare"]}),
                ({"owner": OWNER}, {"owner__username": OWNER}),
                ({"created_after": TIMES["recent"]}, {"created_at__gte": TIMES["recent"]}),
                ({"created_before": TIMES["middle"]}, {"created_at__lt": TIMES["middle"]}),
            ),
            owner_scoped=True,
            time_ranges=(("created_after", "created_at"), ("created_before", "created_at")),
        ),
        ListSpec(
            "inference jobs",
            "/api/v1/registry/inference-jobs/",
            "registry.InferenceJob",
            {
                "owner_id": str(owner),
                "version_id": rare(str(v3), f"(ARRAY[{v1},{v2}])[n % 2 + 1]"),
                "kind": "CASE WHEN n % 5 = 0 THEN 'evaluation' ELSE 'batch' END",
                "name": "'run ' || n",
                "input_file": "'registry/inputs/bench.csv'",
                "input_format": "'csv'",
                "status": JOB_STATUS,
                **job_times,
            },
            ("id", "name", "owner_id", "version_id", "kind", "status", "created_at", "finished_at"),
            ("-id",),
            ("id", "created_at", "finished_at"),
            (
                ({"status": "completed"}, {"status": "completed"}),
                ({"status": "running"}, {"status": "running"}),
                ({"kind": "evaluation"}, {"kind": "evaluation"}),
                # The bare page names the versions the API's filter reads first.
                ({"model": "sentiment"}, {"version_id__in": [v1, v2]}),
                ({"model": "topics"}, {"version_id__in": [v3]}),
                ({"owner": OWNER}, {"owner__username": OWNER}),
            ),
            owner_scoped=True,
        ),
        ListSpec(
            "reports",
            "/api/v1/compliance/reports/",
            "compliance.Report",
            {
                "owner_id": str(owner),
                "kind": rare(
                    "'subject_export'",
                    "(ARRAY['access_review','mfa_coverage','authentication','audit_trail','usage'])[n % 5 + 1]",
                ),
                "format": "(ARRAY['csv','json','pdf'])[n % 3 + 1]",
                "period_start": f"{MOMENT} - interval '30 days'",
                "period_end": MOMENT,
                "scheduled": "n % 10 = 0",
                "size_bytes": "CASE WHEN n % 50 > 1 THEN 1000 + (n::bigint * 7919) % 100000 END",
                "status": JOB_STATUS,
                **job_times,
            },
            ("id", "kind", "format", "status", "scheduled", "period_start", "size_bytes", "created_at"),
            ("-created_at", "-id"),
            ("id", "created_at", "period_start", "size_bytes"),
            (
                ({"kind": "usage"}, {"kind": "usage"}),
                ({"kind": "subject_export"}, {"kind": "subject_export"}),
                ({"format": "pdf"}, {"format": "pdf"}),
                ({"status": "completed"}, {"status": "completed"}),
                ({"status": "running"}, {"status": "running"}),
                ({"scheduled": "true"}, {"scheduled": True}),
            ),
        ),
        ListSpec(
            "backups",
            "/api/v1/backups/",
            "backups.Backup",
            {
                "status": "CASE WHEN n % 50 = 0 THEN 'failed' WHEN n % 3 = 0 THEN 'verified' ELSE 'completed' END",
                "started_at": MOMENT,
                "finished_at": f"{MOMENT} + interval '1 minute'",
                "size_bytes": "CASE WHEN n % 50 > 0 THEN 1000000 + (n::bigint * 7919) % 1000000 END",
                "compression": "'zstd'",
                "key_id": "'bench-key'",
                "storage_name": "'backups'",
                "database_engine": "'postgresql'",
                "trigger": rare("'safety'", "CASE WHEN n % 10 = 0 THEN 'user' ELSE 'schedule' END"),
                "triggered_by_id": f"CASE WHEN n % 10 = 0 THEN {owner} END",
            },
            ("id", "status", "started_at", "finished_at", "size_bytes", "trigger", "triggered_by_id"),
            ("-started_at", "-id"),
            ("id", "started_at", "size_bytes"),
            (
                ({"status": "verified"}, {"status": "verified"}),
                ({"status": "running"}, {"status": "running"}),
                ({"trigger": "user"}, {"trigger": "user"}),
                ({"trigger": "safety"}, {"trigger": "safety"}),
            ),
        ),
        ListSpec(
            "backup jobs",
            "/api/v1/backups/jobs/",
            "backups.BackupJob",
            {
                "owner_id": f"CASE WHEN n % 10 = 0 THEN {owner} END",
                "operation": rare("'restore'", "CASE WHEN n % 4 = 0 THEN 'verify' ELSE 'create' END"),
                "status": JOB_STATUS,
                **job_times,
            },
            ("id", "operation", "status", "owner_id", "backup_id", "created_at", "finished_at"),
            ("-id",),
            ("id", "created_at"),
            (
                ({"status": "completed"}, {"status": "completed"}),
                ({"status": "running"}, {"status": "running"}),
                ({"operation": "verify"}, {"operation": "verify"}),
                ({"operation": "restore"}, {"operation": "restore"}),
            ),
            readers=("admin",),
        ),
        ListSpec(
            "audit events",
            "/api/v1/audit/events/",
            "audit.AuditEvent",
            {
                "timestamp": MOMENT,
                "actor_id": str(owner),
                "actor_username": rare("'rarely-seen'", f"'{OWNER}'"),
                "action": rare(
                    "'auth.mfa.disabled'",
                    "(ARRAY['auth.login','api.write','quantum.job.submitted','registry.inference.created'])[n % 4 + 1]",
                ),
                "object_type": "'quantum.quantumjob'",
                "object_id": "n::text",
                "outcome": "CASE WHEN n % 1000 = 0 THEN 'denied' WHEN n % 20 = 0 THEN 'failure' ELSE 'success' END",
                "prev_hash": "md5('a' || (n - 1)) || md5('b' || (n - 1))",
                "hash": "md5('a' || n) || md5('b' || n)",
            },
            ("id", "timestamp", "actor_username", "action", "object_type", "object_id", "outcome", "hash"),
            ("-id",),
            (),
            (
                ({"action": "api.write"}, {"action": "api.write"}),
                ({"action": "auth.mfa.disabled"}, {"action": "auth.mfa.disabled"}),
                ({"action_prefix": "auth."}, {"action__startswith": "auth."}),
                ({"actor": OWNER}, {"actor_username": OWNER}),
                ({"actor": "rarely-seen"}, {"actor_username": "rarely-seen"}),
                ({"object_type": "quantum.quantumjob"}, {"object_type": "quantum.quantumjob"}),
                ({"object_id": str(ROWS // 3)}, {"object_id": str(ROWS // 3)}),
                ({"outcome": "denied"}, {"outcome": "denied"}),
                ({"since": TIMES["recent"]}, {"timestamp__gte": TIMES["recent"]}),
                ({"until": TIMES["middle"]}, {"timestamp__lt": TIMES["middle"]}),
            ),
            time_ranges=(("since", "timestamp"), ("until", "timestamp")),
        ),
    ]


def bulk_load(model, columns: dict[str, str]) -> None:
    """ROWS rows in one INSERT … SELECT over generate_series (n = 1…ROWS): ``columns`` as SQL over n, every other
    required column its Django default (timestamps now())."""
    from django.db import connection

    names, values, params = [], [], []
    for model_field in model._meta.concrete_fields:
        if model_field.primary_key:
            continue
        names.append(connection.ops.quote_name(model_field.column))
        if model_field.column in columns:
            values.append(columns[model_field.column].replace("%", "%%"))  # modulo, not a placeholder
        elif model_field.null:
            values.append("NULL")
        elif model_field.get_default() is None:
            values.append("now()")
        else:
            values.append("%s")
            params.append(model_field.get_db_prep_save(model_field.get_default(), connection))
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        # The SQL is this file's own: table and column names from the models, expressions from the specs.
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(names)}) SELECT {', '.join(values)} FROM generate_series(1, {ROWS}) AS n",  # noqa: S608
            params,
        )


def readers_and_models(operator_token: str) -> tuple[dict[str, int], dict[str, str]]:
    """The owner (the portal's operator, made a compliance officer too), an administrator, and three model
    versions; returns ids and the API tokens by reader."""
    from django.contrib.auth.models import Group

    from apps.accounts.models import User
    from apps.accounts.tokens import token_create
    from apps.core.choices import Role
    from apps.registry.models import ModelVersion, RegisteredModel
    from tests.mfa import totp_device_create

    owner = User.objects.get(username=OWNER)
    owner.groups.add(Group.objects.get(name=Role.COMPLIANCE))
    admin = User.objects.create_user("bench-admin", password=None)
    admin.groups.add(Group.objects.get(name=Role.ADMIN))
    for reader in (owner, admin):  # both roles' tokens work only with a second factor set up
        totp_device_create(reader)
    admin_token = token_create(owner=admin, name="benchmark", scopes=["read"], expires_in_days=1).secret
    versions = []
    for name, count in (("sentiment", 2), ("topics", 1)):
        model = RegisteredModel.objects.create(name=name, task="text-classification", owner=owner)
        for number in range(1, count + 1):
            versions.append(
                ModelVersion.objects.create(
                    model=model,
                    version=number,
                    artifact="a.zip",
                    sha256="0" * 64,
                    size_bytes=1,
                    status="ready",
                    created_by=owner,
                ).pk
            )
    ids = {"owner": owner.pk, "v1": versions[0], "v2": versions[1], "v3": versions[2]}
    return ids, {"owner": operator_token, "admin": admin_token}


@dataclass
class Case:
    title: str
    reader: str
    label: str
    query: dict
    bare: dict
    api_ms: list[float] = field(default_factory=list)
    bare_ms: list[float] = field(default_factory=list)


def cases_of(spec: ListSpec, owner_id: int) -> list[Case]:
    cases = []
    for reader in spec.readers:
        scope = {"owner_id": owner_id} if spec.owner_scoped and reader == "owner" else {}
        variants = [("default order", {}, {}, spec.default_order)]
        for name in spec.orderings:
            for sign in ("", "-"):
                variants.append(
                    (f"ordering={sign}{name}", {"ordering": f"{sign}{name}"}, {}, (f"{sign}{name}", f"{sign}id"))
                )
        for query, lookups in spec.filters:
            label = "&".join(f"{key}={value}" for key, value in query.items())
            bounded = [field for name, field in spec.time_ranges if name in query]
            order = (f"-{bounded[0]}", "-id") if bounded else spec.default_order
            variants.append((label[:40], query, lookups, order))
        for label, query, lookups, order in variants:
            bare = {
                "model": spec.model,
                "filter": json.dumps({**scope, **lookups}),
                "order": ",".join(dict.fromkeys(order)),
                "fields": ",".join(spec.fields),
                "size": str(PAGE_SIZE),
            }
            cases.append(Case(spec.title, reader, label, {**query, "page_size": str(PAGE_SIZE)}, bare))
    return cases


class Client:
    """One keep-alive connection; ``get`` answers (milliseconds, parsed body)."""

    def __init__(self, port: int, token: str = ""):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def get(self, path: str, query: dict) -> tuple[float, dict]:
        started = time.perf_counter()
        self.connection.request("GET", f"{path}?{urllib.parse.urlencode(query)}", headers=self.headers)
        response = self.connection.getresponse()
        body = response.read()
        elapsed = (time.perf_counter() - started) * 1000
        if response.status != 200:
            raise RuntimeError(f"{path} {query} answered {response.status}: {body[:300]!r}")
        return elapsed, json.loads(body)


def measure(case: Case, path: str, api: Client, bare: Client) -> None:
    _, page = api.get(path, case.query)
    _, same = bare.get("/bench/bare-page/", case.bare)
    if [row["id"] for row in page["results"]] != [row["id"] for row in same["results"]]:
        raise RuntimeError(f"{case.title} {case.label}: the API's page differs from the bare page")
    for _ in range(REQUESTS):
        case.api_ms.append(api.get(path, case.query)[0])
        case.bare_ms.append(bare.get("/bench/bare-page/", case.bare)[0])


def print_header() -> None:
    print(f"\nAPI lists at {ROWS:,} rows per table, page_size={PAGE_SIZE}, {REQUESTS} requests per line (ms)")
    print(
        f"{'list':<15}{'reader':<7}{'ordering / filter':<42}{'p50':>7}{'p95':>7}{'bare p50':>9}{'bare p95':>9}"
        f"{'ratio':>7}  target"
    )


def print_line(case: Case) -> tuple[float, float]:
    """Prints the case's line; answers its p95 and p95 ratio to the bare page."""
    api_ms, bare_ms = sorted(case.api_ms), sorted(case.bare_ms)
    p95, bare_p95 = percentile(api_ms, 0.95), percentile(bare_ms, 0.95)
    ratio = p95 / bare_p95
    met = p95 <= TARGET_P95_MS and ratio <= TARGET_RATIO
    print(
        f"{case.title:<15}{case.reader:<7}{case.label:<42}{statistics.median(api_ms):7.1f}{p95:7.1f}"
        f"{statistics.median(bare_ms):9.1f}{bare_p95:9.1f}{ratio:7.2f}  {verdict(met)}",
        flush=True,
    )
    return p95, ratio


def print_summary(figures: list[tuple[float, float]]) -> None:
    worst_p95 = max(p95 for p95, _ in figures)
    worst_ratio = max(ratio for _, ratio in figures)
    print(f"\nworst p95 {worst_p95:.1f} ms (target <= {TARGET_P95_MS:.0f}): {verdict(worst_p95 <= TARGET_P95_MS)}")
    print(
        f"worst p95 ratio to the bare page {worst_ratio:.2f} (target <= {TARGET_RATIO:.0f}): "
        f"{verdict(worst_ratio <= TARGET_RATIO)}"
    )


def main() -> None:
    environment = {"DJANGO_SETTINGS_MODULE": "benchmarks.lists_settings"}
    with portal_running(database=DATABASE, redis_url=REDIS_URL, queue="bench-idle", environment=environment) as portal:
        from django.apps import apps
        from django.db import connection

        ids, tokens = readers_and_models(portal.token)
        all_specs = [spec for spec in specs(ids) if not ONLY or spec.title in ONLY]
        for spec in all_specs:
            started = time.perf_counter()
            bulk_load(apps.get_model(spec.model), spec.columns)
            print(f"loaded {ROWS:,} {spec.title} in {time.perf_counter() - started:.1f} s", flush=True)
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
        print(f"VACUUM ANALYZE in {time.perf_counter() - started:.1f} s", flush=True)
        print_header()
        figures = []
        for spec in all_specs:
            clients = {reader: Client(portal.port, tokens[reader]) for reader in spec.readers}
            bare = Client(portal.port)
            for case in cases_of(spec, ids["owner"]):
                measure(case, spec.path, clients[case.reader], bare)
                figures.append(print_line(case))
        print_summary(figures)


if __name__ == "__main__":
    main()
