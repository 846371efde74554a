from prometheus_client import Counter, Gauge, Histogram

REGISTRY_PREDICTIONS = Counter("registry_predictions", "Inputs predicted synchronously, by model.", ["model"])
REGISTRY_PREDICTION_LATENCY = Histogram(
    "registry_prediction_latency_seconds",
    "Time of one synchronous prediction call (all its inputs).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
REGISTRY_LOADED_PIPELINES = Gauge(
    "registry_loaded_pipelines", "Model pipelines held in memory by this process.", multiprocess_mode="livesum"
)
REGISTRY_JOBS = Counter("registry_jobs", "Inference and evaluation jobs that reached a final state.", ["status"])
# By alias and version: what each side of a rollout does. Labels stay few: a model's aliases times the (at most
# two) versions behind each; predictions by version number have alias="".
REGISTRY_ALIAS_PREDICTIONS = Counter(
    "registry_alias_predictions",
    "Synchronous prediction calls by model, alias, answering version and outcome "
    "(ok, error, invalid_input, invalid_output).",
    ["model", "alias", "version", "outcome"],
)
REGISTRY_ALIAS_LATENCY = Histogram(
    "registry_alias_prediction_latency_seconds",
    "Time of one synchronous prediction call, by model, alias and answering version.",
    ["model", "alias", "version"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
REGISTRY_DRIFT_PSI = Gauge(
    "registry_drift_psi",
    "Population stability index of a version's predictions in the drift window against its evaluation, by feature "
    "(label, input_length), as last checked.",
    ["model", "version", "feature"],
    multiprocess_mode="mostrecent",
)
