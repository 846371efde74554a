from prometheus_client import Counter, Gauge

AUDIT_CHAIN_VALID = Gauge(
    "audit_chain_valid",
    "1 when the last audit chain verification passed, 0 when it found tampering.",
    multiprocess_mode="mostrecent",
)

# Forwarding to collectors, one series per sink (by name). Gauges are set from the database by whichever process
# looked last (a forwarding run or a readiness probe), hence "mostrecent".
AUDIT_FORWARD_LAG_EVENTS = Gauge(
    "audit_forward_lag_events",
    "Audit events recorded but not yet accepted by the sink.",
    ["sink"],
    multiprocess_mode="mostrecent",
)
AUDIT_FORWARD_LAG_SECONDS = Gauge(
    "audit_forward_lag_seconds",
    "Age of the oldest audit event the sink has not accepted yet (0: caught up).",
    ["sink"],
    multiprocess_mode="mostrecent",
)
AUDIT_FORWARD_FAILURES = Counter(
    "audit_forward_failures",
    "Batches of audit events the sink did not accept (refused, unreachable, timed out).",
    ["sink"],
)
AUDIT_FORWARD_EVENTS = Counter("audit_forward_events", "Audit events the sink accepted.", ["sink"])
