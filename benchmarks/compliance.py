"""Compliance benchmark: an audit_trail CSV report over 1M events against psql's \\copy of the same rows.

Reuses the audit benchmark's scratch database and its chained bulk load
(AUDIT_BENCH_EVENTS, default 1,000,000), placed in the past so a report period
can cover it. Then, in a child process (for its peak memory): the report is
requested and generated as the worker would (rows streamed from the database,
chain verification of the range, CSV written, file signed); against `psql
\\copy (SELECT ...) TO ... CSV` of the same events. Prints both times, the
ratio (target <= 3) and the child's peak RSS.

    .venv/bin/python benchmarks/compliance.py
    AUDIT_BENCH_EVENTS=20000 .venv/bin/python benchmarks/compliance.py   # quick try
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import audit as audit_bench
from benchmarks.portal import verdict

TARGET_RATIO = 3.0
# The bulk load adds up to 65 ms per event (about 9 hours for a million): start far enough back to stay in the past.
HISTORY = timedelta(days=30)


def seed(events: int) -> tuple[str, str]:
    """The chain in the past; returns the period (ISO start, end) that covers it."""
    from django.contrib.auth.models import Group
    from django.utils import timezone

    from apps.accounts.models import User
    from apps.accounts.roles import roles_setup
    from apps.audit.services import event_record
    from apps.core.choices import Role

    # The database stamps appended events itself (now); the bulk events are dated from a month ago.
    event_record(action="benchmark.started")
    start = timezone.now() - HISTORY
    audit_bench.bench_load(events, since=start)
    roles_setup()
    officer = User.objects.create_user("bench-officer", password=None)
    officer.groups.add(Group.objects.get(name=Role.COMPLIANCE))
    return (start - timedelta(minutes=1)).isoformat(), (start + timedelta(days=1)).isoformat()


def report_child(period_start: str, period_end: str) -> None:
    """In its own process: generate the report, print seconds, peak RSS and the file's rows as JSON."""
    audit_bench.django_setup()
    from datetime import datetime

    from apps.accounts.models import User
    from apps.compliance.services import report_generate, report_request

    rss_before = audit_bench.proc_status_kb("VmRSS")
    started = time.perf_counter()
    report = report_request(
        kind="audit_trail",
        fmt="csv",
        period_start=datetime.fromisoformat(period_start),
        period_end=datetime.fromisoformat(period_end),
        filters={},
        actor=User.objects.get(username="bench-officer"),
    )
    report_generate(report_id=report.pk, task_id="benchmark", worker="benchmark")
    seconds = time.perf_counter() - started
    report.refresh_from_db()
    print(
        json.dumps(
            {
                "seconds": seconds,
                "status": report.status,
                "error": report.error,
                "rows": sum(report.row_counts.values()),
                "size": report.size_bytes,
                "hwm_kb": audit_bench.proc_status_kb("VmHWM"),
                "rss_before_kb": rss_before,
            }
        )
    )


def copy_baseline(output: Path) -> float:
    from apps.audit.export import EXPORT_COLUMNS

    query = f"SELECT {', '.join(EXPORT_COLUMNS)} FROM audit_auditevent ORDER BY id"  # noqa: S608 - our field names
    started = time.perf_counter()
    subprocess.run(
        ["psql", "-X", "-q", "-h", audit_bench.PG_HOST, "-p", str(audit_bench.PG_PORT), "-U", audit_bench.PG_USER,
         "-d", audit_bench.DATABASE, "-v", "ON_ERROR_STOP=1", "-c", f"\\copy ({query}) TO '{output}' WITH CSV HEADER"],
        check=True,
    )  # fmt: skip
    return time.perf_counter() - started


def main() -> int:
    events = audit_bench.AUDIT_BENCH_EVENTS
    work_dir = Path(tempfile.mkdtemp(prefix="opsdeck-bench-compliance-"))
    audit_bench.database_create()
    try:
        audit_bench.environment_configure(work_dir / "data")
        audit_bench.django_setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        print(f"Compliance reports, scratch database {audit_bench.DATABASE}, {events:,} audit events")
        period_start, period_end = seed(events)
        baseline = copy_baseline(work_dir / "copy.csv")
        child = subprocess.run(
            [sys.executable, __file__, "--report-child", period_start, period_end],
            check=True,
            capture_output=True,
            text=True,
        )
        figures = json.loads(child.stdout.strip().splitlines()[-1])
        if figures["status"] != "completed":
            raise RuntimeError(f"the report failed: {figures['error']}")
        ratio = figures["seconds"] / baseline
        peak_mb = figures["hwm_kb"] / 1024
        print(f"  psql \\copy of the events to CSV        {baseline:6.1f} s")
        print(
            f"  audit_trail CSV report (signed)        {figures['seconds']:6.1f} s  "
            f"{figures['rows']:,} rows  {figures['size'] / 1e6:,.1f} MB  ratio {ratio:.2f}"
        )
        print(f"    peak RSS {peak_mb:.0f} MB (child's VmHWM), {figures['rss_before_kb'] / 1024:.0f} MB before")
        print("Summary")
        print(f"  report / COPY   {ratio:5.2f}   target <= {TARGET_RATIO}   {verdict(ratio <= TARGET_RATIO)}")
        print(f"  peak memory     {peak_mb:5.0f} MB   target <= 200 MB   {verdict(peak_mb <= 200)}")
    finally:
        audit_bench.django_close()
        audit_bench.database_drop()
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--report-child"]:
        report_child(*sys.argv[2:4])
    else:
        sys.exit(main())
