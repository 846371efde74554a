from prometheus_client import Gauge

AUDIT_CHAIN_VALID = Gauge(
    "audit_chain_valid",
    "1 when the last audit chain verification passed, 0 when it found tampering.",
    multiprocess_mode="mostrecent",
)
