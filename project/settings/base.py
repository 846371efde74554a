"""Settings shared by every environment, all read from the environment.

``local`` (the embedded default), ``production`` and ``test`` build on this
module; nothing else reads environment variables.
"""

from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from .broker import broker_transport_options, broker_url, task_queues
from .browser_access import cors_settings, csp_settings
from .env import Environment
from .forwarding import forward_urls
from .oidc import oidc_settings
from .passkeys import passkey_settings
from .quantum_queues import quantum_queues
from .storage import file_storage, storages_apart

env = Environment()

BASE_DIR = Path(__file__).resolve().parents[2]
DATA_DIR = Path(env.str("OPSDECK_DATA_DIR", str(BASE_DIR / "var"))).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env.bool("DEBUG", False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS")
# Number of reverse proxies in front of the portal whose X-Forwarded-For entries are trusted.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", 0, minimum=0, maximum=10)

INSTALLED_APPS = [
    # Unfold's templates and static files before the admin's own, which they replace. Its basic config, which
    # leaves admin.site alone: the default one would replace the OTP-requiring site below with its own.
    "unfold.apps.BasicAppConfig",
    # Django's admin with an OTP-requiring default site (see apps/accounts/admin_apps.py).
    "apps.accounts.admin_apps.OpsdeckAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "csp",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "django_prometheus",
    "django_otp",
    # The package apps with human names in the admin (see apps/accounts/vendor_apps.py).
    "apps.accounts.vendor_apps.AuthenticatorAppsConfig",
    "apps.accounts.vendor_apps.RecoveryCodesConfig",
    "apps.accounts.vendor_apps.PasskeysConfig",
    "apps.accounts.vendor_apps.SignInLockoutConfig",
    "apps.core",
    "apps.accounts",
    "apps.audit",
    "apps.readonly",
    "apps.jobs",
    "apps.quantum",
    "apps.registry",
    "apps.backups",
    "apps.compliance",
    "apps.notifications",
    "apps.diagnostics",
]

MIDDLEWARE = [
    "apps.core.middleware.LivenessMiddleware",
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "apps.core.request_context.RequestContextMiddleware",
    # Before anything that may answer on its own (throttling, CSRF, maintenance), so that a listed origin's script
    # can read those answers too (a 429's Retry-After above all).
    "corsheaders.middleware.CorsMiddleware",
    # Outside every middleware that may answer, so that each answer carries the policy; the nonce is made here.
    "apps.core.csp.ContentSecurityPolicyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Before django-otp and MFA enrollment, so that an idle session is already signed out when they look.
    "apps.accounts.session_activity.SessionActivityMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "apps.accounts.middleware.MfaEnrollmentMiddleware",
    # Maintenance mode's 503 for writes: outside the audit middleware, so that refused writes add nothing to the trail.
    "apps.readonly.middleware.ReadOnlyModeMiddleware",
    "apps.audit.middleware.AuditMiddleware",
    # Inside the audit middleware, which counts the 429s it gives; before DRF's authentication.
    "apps.core.throttling.AnonymousThrottleMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
    # Last, as django-axes requires: it turns a lockout flagged during the view into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "project.urls"
WSGI_APPLICATION = "project.wsgi.application"
ASGI_APPLICATION = "project.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "apps.core.context_processors.shell",
            ],
        },
    },
]


def database_settings(config: dict) -> dict:
    """Complete a parsed DATABASE_URL with pooling, health checks and metrics."""
    if config["ENGINE"] == "django.db.backends.sqlite3":
        Path(config["NAME"]).parent.mkdir(parents=True, exist_ok=True)
        config["ENGINE"] = "django_prometheus.db.backends.sqlite3"
        # WAL and immediate transactions let the embedded web server and worker
        # threads write concurrently without "database is locked" errors.
        config["OPTIONS"] = {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
        return config
    config["ENGINE"] = "django_prometheus.db.backends.postgresql"
    config["CONN_MAX_AGE"] = 0  # the pool keeps connections; Django must not as well
    config["CONN_HEALTH_CHECKS"] = True
    config["OPTIONS"] = {
        "pool": {
            "min_size": env.int("DATABASE_POOL_MIN_SIZE", 1, minimum=0),
            "max_size": env.int("DATABASE_POOL_MAX_SIZE", 10, minimum=1),
            "timeout": env.int("DATABASE_POOL_TIMEOUT", 10, minimum=1),
        },
    }
    return config


# The audit archive service's own connection, as the one role that may remove archived audit events (README,
# "Database roles and the append-only audit trail"). Unset, archiving uses the default connection, which then
# succeeds only as the owner of the audit tables (or a superuser): the embedded and test setups.
AUDIT_ARCHIVE_DATABASE = "audit_archive" if env.str("AUDIT_ARCHIVE_DATABASE_URL", "") else "default"


def with_audit_archive(databases: dict) -> dict:
    """``databases`` plus the ``audit_archive`` alias when AUDIT_ARCHIVE_DATABASE_URL is set."""
    if AUDIT_ARCHIVE_DATABASE == "default":
        return databases
    config, default = env.database("AUDIT_ARCHIVE_DATABASE_URL"), databases["default"]
    if not config["ENGINE"].endswith("postgresql") or not default["ENGINE"].endswith("postgresql"):
        raise ImproperlyConfigured(
            "AUDIT_ARCHIVE_DATABASE_URL needs PostgreSQL for both it and DATABASE_URL: SQLite has no roles to separate."
        )
    place = ("HOST", "PORT", "NAME")
    if [config.get(key) for key in place] != [default.get(key) for key in place]:
        raise ImproperlyConfigured(
            "AUDIT_ARCHIVE_DATABASE_URL must name the same host, port and database as DATABASE_URL, as another role."
        )
    # Used a few times a year by one command: plain connections, no pool kept open in every process.
    config.update(ENGINE="django_prometheus.db.backends.postgresql", CONN_MAX_AGE=0, OPTIONS={})
    return {**databases, AUDIT_ARCHIVE_DATABASE: config}


DATABASES = with_audit_archive(
    {"default": database_settings(env.database("DATABASE_URL", f"sqlite:///{DATA_DIR / 'opsdeck.sqlite3'}"))}
)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

# Argon2 for new and changed passwords; older hashes still verify and are upgraded at login.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard:index"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", str(BASE_DIR / "var" / "static")))
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "media/"
# Media (compliance reports, registry artifacts, inference inputs and results) and backups each go through their
# own storage: a local folder by default, an S3-compatible bucket when MEDIA_S3_BUCKET / BACKUP_S3_BUCKET is set
# (django-storages), which every host reaches.
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", str(DATA_DIR / "media")))
MEDIA_STORAGE = file_storage(env, "MEDIA", folder=None)
BACKUP_DIR = Path(env.str("BACKUP_DIR", str(DATA_DIR / "backups"))).resolve()
BACKUP_STORAGE = file_storage(env, "BACKUP", folder=str(BACKUP_DIR))
storages_apart(("MEDIA", MEDIA_STORAGE), ("BACKUP", BACKUP_STORAGE))
STORAGES = {
    "default": MEDIA_STORAGE,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
    "backups": BACKUP_STORAGE,
}

# --- Redis: channel layer, cache and (unless CELERY_BROKER_URL says otherwise) broker; unset means embedded.
REDIS_URL = env.redis_url("REDIS_URL")
EMBEDDED = REDIS_URL is None

if EMBEDDED:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "apps.core.channel_layers.EmbeddedChannelLayer"}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
    CHANNEL_LAYERS = {
        "default": {
            # Pub/sub: an event reaches each portal process once, and the process hands it to all
            # its subscribed sockets; with the list-based layer every socket costs a Redis round
            # trip per event (200 watchers of a batch of jobs saturate it). Live updates need no
            # persistence: a socket that reconnects starts from a fresh snapshot.
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": "opsdeck:asgi"},
        }
    }

# --- Celery (read by project/celery.py through the CELERY_ namespace).
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", 3300, minimum=1)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", 3600, minimum=1)
if CELERY_TASK_TIME_LIMIT <= CELERY_TASK_SOFT_TIME_LIMIT:
    raise ImproperlyConfigured("CELERY_TASK_TIME_LIMIT must be greater than CELERY_TASK_SOFT_TIME_LIMIT.")

# The broker: REDIS_URL unless CELERY_BROKER_URL names another Redis or a RabbitMQ (amqp://) (settings/broker.py).
CELERY_BROKER_URL = broker_url(env, redis_url=REDIS_URL)
CELERY_RESULT_BACKEND = "cache+memory://" if EMBEDDED else REDIS_URL
# Levels of message priority the quantum queue keeps apart (apps.core.queueing.message_priority).
TASK_PRIORITY_LEVELS = 10
CELERY_BROKER_TRANSPORT_OPTIONS = broker_transport_options(
    CELERY_BROKER_URL, task_time_limit=CELERY_TASK_TIME_LIMIT, priority_levels=TASK_PRIORITY_LEVELS
)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_EXPIRES = 24 * 3600
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
CELERY_TASK_DEFAULT_QUEUE = "default"
# Quantum jobs go to one of these queues by their estimated memory and time (settings/quantum_queues.py).
QUANTUM_QUEUES = quantum_queues(env)
CELERY_TASK_QUEUES = task_queues(
    priority_levels=TASK_PRIORITY_LEVELS, quantum_queues=tuple(queue["name"] for queue in QUANTUM_QUEUES)
)
CELERY_TASK_ROUTES = {
    "maintenance.*": {"queue": "maintenance"},
    "quantum.*": {"queue": QUANTUM_QUEUES[0]["name"]},
    "registry.*": {"queue": "registry"},
    "backups.*": {"queue": "maintenance"},
    "compliance.*": {"queue": "default"},
    # Sending an email or a webhook is short network work: beside reports, never behind a long backup.
    "notifications.*": {"queue": "default"},
}
# Jobs, backups and reports must not vanish when a worker dies mid-task: the
# message is acknowledged only after the task finished, and a task whose worker
# process was killed is put back on the queue instead of being dropped. Tasks
# are written to be safe to run again (they re-read their row and skip done work).
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# With late acks, prefetching would let one busy worker sit on queued work.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TRACK_STARTED = True
CELERY_WORKER_SEND_TASK_EVENTS = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
DJANGO_CELERY_BEAT_TZ_AWARE = True

# --- Web: `runportal --workers` defaults to this many server processes (not in embedded mode).
WEB_CONCURRENCY = env.int("WEB_CONCURRENCY", 1, minimum=1, maximum=64)

# --- Metrics: prometheus_client keeps per-process files here so that metrics
# from every process of a host (web, worker children) are served together.
PROMETHEUS_MULTIPROC_DIR = Path(env.str("PROMETHEUS_MULTIPROC_DIR", str(DATA_DIR / "prometheus")))
PROMETHEUS_MULTIPROC_DIR.mkdir(parents=True, exist_ok=True)
env.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(PROMETHEUS_MULTIPROC_DIR))
PROMETHEUS_EXPORT_MIGRATIONS = False
# Each `celery worker` serves its host's metrics (and queue depths) on this port, on this host's loopback unless
# WORKER_METRICS_ADDRESS says otherwise (0.0.0.0 for a Prometheus on another host); 0 turns it off. The web
# process serves the same directory on /metrics (apps/core/worker_metrics.py, README "Metrics").
WORKER_METRICS_PORT = env.int("WORKER_METRICS_PORT", 9808, minimum=0, maximum=65535)
WORKER_METRICS_ADDRESS = env.str("WORKER_METRICS_ADDRESS", "127.0.0.1")

# --- Audit trail
AUDIT_RETENTION_DAYS = env.int("AUDIT_RETENTION_DAYS", 2555, minimum=0)
AUDIT_CHECKPOINT_STALE_HOURS = env.int("AUDIT_CHECKPOINT_STALE_HOURS", 3, minimum=1)
# Parallel chains appends spread over (README "Audit trail: order"): one is a single serialised chain; more let
# that many transactions append at once. Lowering it later is safe: existing chains still verify.
AUDIT_CHAINS = env.int("AUDIT_CHAINS", 64, minimum=1, maximum=1024)
# Refused requests are written once per client and window, plus a summary with their count (apps/audit/refusals.py).
AUDIT_REFUSAL_WINDOW_SECONDS = env.int("AUDIT_REFUSAL_WINDOW_SECONDS", 300, minimum=10, maximum=3600)
# Forwarding to collectors (SIEMs), README "Audit forwarding": sinks from the admin plus these URLs (comma separated,
# they may carry credentials, hence AUDIT_FORWARD_URLS_FILE), synchronised into the admin at every forwarding run.
AUDIT_FORWARD_ALLOW_HTTP = env.bool("AUDIT_FORWARD_ALLOW_HTTP", False)
AUDIT_FORWARD_URLS = forward_urls(env, "AUDIT_FORWARD_URLS", allow_http=AUDIT_FORWARD_ALLOW_HTTP)
AUDIT_FORWARD_BATCH_SIZE = env.int("AUDIT_FORWARD_BATCH_SIZE", 500, minimum=1, maximum=10_000)
AUDIT_FORWARD_TIMEOUT_SECONDS = env.int("AUDIT_FORWARD_TIMEOUT_SECONDS", 10, minimum=1, maximum=300)
# Readiness reports "degraded" when a sink's oldest unsent event is older than this, or its last attempt failed.
AUDIT_FORWARD_MAX_LAG_SECONDS = env.int("AUDIT_FORWARD_MAX_LAG_SECONDS", 300, minimum=1)

# --- Quantum jobs
QUANTUM_MAX_MEMORY_MB = env.int("QUANTUM_MAX_MEMORY_MB", 4096, minimum=1)
QUANTUM_MAX_SHOTS = env.int("QUANTUM_MAX_SHOTS", 100_000, minimum=1)
QUANTUM_MAX_SOURCE_BYTES = env.int("QUANTUM_MAX_SOURCE_BYTES", 1_048_576, minimum=1)
QUANTUM_MAX_QUEUED_PER_USER = env.int("QUANTUM_MAX_QUEUED_PER_USER", 1000, minimum=1)
QUANTUM_DAILY_SHOTS_QUOTA = env.int("QUANTUM_DAILY_SHOTS_QUOTA", 100_000_000, minimum=1)
QUANTUM_JOB_TIMEOUT = env.int("QUANTUM_JOB_TIMEOUT", 600, minimum=1)
QUANTUM_MAX_ATTEMPTS = env.int("QUANTUM_MAX_ATTEMPTS", 3, minimum=1, maximum=20)
# Parameter sets one sweep job may carry; they all run in one simulator call.
QUANTUM_MAX_SWEEP = env.int("QUANTUM_MAX_SWEEP", 1000, minimum=1, maximum=100_000)
# Small jobs that share their settings run together in one simulator call, up to this many.
QUANTUM_BATCH_SIZE = env.int("QUANTUM_BATCH_SIZE", 50, minimum=1, maximum=500)
# What this worker offers to the router (README, "How jobs run"): its memory for simulations (0: the host's memory)
# and whether it has a GPU ("auto": asks qiskit-aer; "yes"/"no" say so).
WORKER_MEMORY_MB = env.int("WORKER_MEMORY_MB", 0, minimum=0)
WORKER_GPU = env.choice("WORKER_GPU", "auto", ("auto", "yes", "no"))
# How often a worker announces itself; one not heard from for WORKER_ANNOUNCE_TIMEOUT seconds is taken as gone.
WORKER_ANNOUNCE_INTERVAL = env.int("WORKER_ANNOUNCE_INTERVAL", 10, minimum=1)
WORKER_ANNOUNCE_TIMEOUT = env.int("WORKER_ANNOUNCE_TIMEOUT", 35, minimum=3)
if WORKER_ANNOUNCE_TIMEOUT < 3 * WORKER_ANNOUNCE_INTERVAL:
    raise ImproperlyConfigured("WORKER_ANNOUNCE_TIMEOUT must be at least three WORKER_ANNOUNCE_INTERVALs.")

# --- Jobs (every kind): a running job's worker heartbeats it every JOBS_HEARTBEAT_INTERVAL seconds; every worker
# sweeps every JOBS_SWEEP_INTERVAL seconds and requeues the jobs not heartbeated for JOBS_HEARTBEAT_TIMEOUT.
JOBS_HEARTBEAT_INTERVAL = env.int("JOBS_HEARTBEAT_INTERVAL", 5, minimum=1)
JOBS_HEARTBEAT_TIMEOUT = env.int("JOBS_HEARTBEAT_TIMEOUT", 30, minimum=3)
JOBS_SWEEP_INTERVAL = env.int("JOBS_SWEEP_INTERVAL", 10, minimum=1)
if JOBS_HEARTBEAT_TIMEOUT < 3 * JOBS_HEARTBEAT_INTERVAL:
    raise ImproperlyConfigured("JOBS_HEARTBEAT_TIMEOUT must be at least three JOBS_HEARTBEAT_INTERVALs.")

# --- Model registry
# Nothing is ever downloaded: transformers and huggingface_hub read only local files.
env.environ["HF_HUB_OFFLINE"] = "1"
env.environ["TRANSFORMERS_OFFLINE"] = "1"
env.environ.setdefault("HF_HOME", str(DATA_DIR / "huggingface"))
REGISTRY_DIR = Path(env.str("REGISTRY_DIR", str(DATA_DIR / "registry"))).resolve()
REGISTRY_MAX_ARTIFACT_MB = env.int("REGISTRY_MAX_ARTIFACT_MB", 1024, minimum=1)
REGISTRY_MAX_UNCOMPRESSED_MB = env.int("REGISTRY_MAX_UNCOMPRESSED_MB", 4096, minimum=1)
REGISTRY_MAX_FILES = env.int("REGISTRY_MAX_FILES", 200, minimum=1)
# Pickle weights (pytorch_model.bin, *.pt) run code when loaded: refused unless this is set.
REGISTRY_ALLOW_PICKLE = env.bool("REGISTRY_ALLOW_PICKLE", False)
REGISTRY_SYNC_MAX_INPUTS = env.int("REGISTRY_SYNC_MAX_INPUTS", 64, minimum=1, maximum=10_000)
REGISTRY_MAX_INPUT_CHARS = env.int("REGISTRY_MAX_INPUT_CHARS", 10_000, minimum=1)
REGISTRY_CACHE_SIZE = env.int("REGISTRY_CACHE_SIZE", 4, minimum=1, maximum=100)
REGISTRY_JOB_MAX_ROWS = env.int("REGISTRY_JOB_MAX_ROWS", 1_000_000, minimum=1)
REGISTRY_JOB_MAX_FILE_MB = env.int("REGISTRY_JOB_MAX_FILE_MB", 200, minimum=1)
# Rows read and predicted per step (progress, cancelling and the timeout are checked between steps). Text
# classification sorts a step's rows by length: a larger window pads less and runs fewer, fuller forward passes.
REGISTRY_JOB_BATCH_SIZE = env.int("REGISTRY_JOB_BATCH_SIZE", 1024, minimum=1, maximum=10_000)
# Text classification jobs sort each batch by token length and split it into forward passes of at most this many
# tokens (texts times the longest text's tokens): padding little, and bounding a pass's memory on long texts.
REGISTRY_JOB_BATCH_TOKENS = env.int("REGISTRY_JOB_BATCH_TOKENS", 8192, minimum=1, maximum=1_000_000)
# Below CELERY_TASK_SOFT_TIME_LIMIT, so that a job's own timeout (with its message) applies first.
REGISTRY_JOB_TIMEOUT = env.int("REGISTRY_JOB_TIMEOUT", 3000, minimum=1)
REGISTRY_MAX_ATTEMPTS = env.int("REGISTRY_MAX_ATTEMPTS", 3, minimum=1, maximum=20)
# Drift watch (README "Drift watch"): the predictions of the last REGISTRY_DRIFT_WINDOW_HOURS hours against the
# version's evaluation, by population stability index; at least REGISTRY_DRIFT_MIN_PREDICTIONS before judging.
REGISTRY_DRIFT_ENABLED = env.bool("REGISTRY_DRIFT_ENABLED", True)
REGISTRY_DRIFT_WINDOW_HOURS = env.int("REGISTRY_DRIFT_WINDOW_HOURS", 24, minimum=1, maximum=24 * 90)
REGISTRY_DRIFT_MIN_PREDICTIONS = env.int("REGISTRY_DRIFT_MIN_PREDICTIONS", 100, minimum=1)
REGISTRY_DRIFT_PSI_WARN = env.float("REGISTRY_DRIFT_PSI_WARN", 0.1, minimum=0.0)
REGISTRY_DRIFT_PSI_ALERT = env.float("REGISTRY_DRIFT_PSI_ALERT", 0.25, minimum=0.0)
if REGISTRY_DRIFT_PSI_ALERT < REGISTRY_DRIFT_PSI_WARN:
    raise ImproperlyConfigured("REGISTRY_DRIFT_PSI_ALERT must be at least REGISTRY_DRIFT_PSI_WARN.")

# --- Backups
# BACKUP_ENCRYPTION_KEY (32 bytes as 64 hex characters or base64) is set in local.py / production.py.
BACKUP_COMPRESSION = env.choice("BACKUP_COMPRESSION", "zstd", ("zstd", "gzip", "none"))
BACKUP_KEEP_DAILY = env.int("BACKUP_KEEP_DAILY", 7, minimum=0)
BACKUP_KEEP_WEEKLY = env.int("BACKUP_KEEP_WEEKLY", 4, minimum=0)
BACKUP_KEEP_MONTHLY = env.int("BACKUP_KEEP_MONTHLY", 12, minimum=0)
# Records of maintenance runs (every scheduled task's runs) older than this are deleted every night.
MAINTENANCE_RUN_RETENTION_DAYS = env.int("MAINTENANCE_RUN_RETENTION_DAYS", 30, minimum=1)
BACKUP_MAX_AGE_HOURS = env.int("BACKUP_MAX_AGE_HOURS", 26, minimum=1)
# backup.stale is announced when no backup taken within this many days has passed a verification (weekly, by default).
BACKUP_VERIFIED_MAX_AGE_DAYS = env.int("BACKUP_VERIFIED_MAX_AGE_DAYS", 8, minimum=1)

# --- Compliance reports
# REPORT_SIGNING_KEY (an Ed25519 private key, PEM) is set in local.py / production.py.
REPORT_MAX_PERIOD_DAYS = env.int("REPORT_MAX_PERIOD_DAYS", 3660, minimum=1)
REPORT_RETENTION_DAYS = env.int("REPORT_RETENTION_DAYS", 2555, minimum=1)

# --- Health
HEALTH_MIN_FREE_DISK_MB = env.int("HEALTH_MIN_FREE_DISK_MB", 500, minimum=0)
HEALTH_CHECK_TIMEOUT_SECONDS = env.int("HEALTH_CHECK_TIMEOUT_SECONDS", 3, minimum=1)

# --- API
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.accounts.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PAGINATION_CLASS": "apps.core.api.pagination.StandardPagination",
    "PAGE_SIZE": env.int("API_PAGE_SIZE", 50, minimum=1, maximum=1000),
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "apps.core.api.ordering.StableOrderingFilter",
    ],
    # Requests without accepted credentials are throttled per address by
    # apps.core.throttling.AnonymousThrottleMiddleware at the "anon" rate, before authentication.
    "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.UserRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env.rate("API_THROTTLE_ANON", "1000/min"),
        "user": env.rate("API_THROTTLE_USER", "5000/min"),
    },
    "NUM_PROXIES": TRUSTED_PROXY_COUNT,
    "DEFAULT_SCHEMA_CLASS": "apps.core.api.schema.ErrorDocumentingAutoSchema",
    "EXCEPTION_HANDLER": "apps.core.api.errors.exception_handler",
}
API_TOKEN_DEFAULT_DAYS = env.int("API_TOKEN_DEFAULT_DAYS", 90, minimum=1)
API_TOKEN_MAX_DAYS = env.int("API_TOKEN_MAX_DAYS", 365, minimum=1)
API_MAX_PAGE_SIZE = env.int("API_MAX_PAGE_SIZE", 500, minimum=1, maximum=10000)

SPECTACULAR_SETTINGS = {
    "TITLE": "Opsdeck API",
    "DESCRIPTION": "Quantum jobs, model registry, backups, audit and compliance evidence.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    # OpenAPI links from each create to the operations on what it created (apps/core/api/links.py).
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "apps.core.api.links.add_create_links"],
    # Several models have a "status" field; each gets its own enum name in the schema.
    "ENUM_NAME_OVERRIDES": {
        "JobStatusEnum": "apps.jobs.choices.JobStatus",
        "SimulationMethodEnum": "apps.quantum.choices.SimulationMethod",
        "ModelVersionStatusEnum": "apps.registry.choices.VersionStatus",
        "BackupStatusEnum": "apps.backups.choices.BackupStatus",
    },
}

# --- Logging
LOG_LEVEL = env.choice("LOG_LEVEL", "INFO", ("debug", "info", "warning", "error", "critical")).upper()
LOG_FORMAT = env.choice("LOG_FORMAT", "text", ("text", "json"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)-7s %(name)s [%(request_id)s]: %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(process)d %(threadName)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "filters": {"request_id": {"()": "apps.core.request_context.RequestIdLogFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["request_id"]}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
}

# --- MFA, re-authentication and lockout
# Users holding one of these roles (and every superuser) must enroll a TOTP device before doing anything else.
MFA_REQUIRED_ROLES = env.list("MFA_REQUIRED_ROLES", ["admin", "compliance"])
_KNOWN_ROLES = ("admin", "operator", "viewer", "compliance")  # apps.core.choices.Role; settings import no apps
if unknown_roles := sorted(set(MFA_REQUIRED_ROLES) - set(_KNOWN_ROLES)):
    raise ImproperlyConfigured(
        f"MFA_REQUIRED_ROLES may only name the roles {', '.join(_KNOWN_ROLES)}; unknown: {', '.join(unknown_roles)}."
    )
# Sensitive actions need the password and a fresh OTP within this many minutes ("sudo mode").
SUDO_WINDOW_MINUTES = env.int("SUDO_WINDOW_MINUTES", 15, minimum=1, maximum=24 * 60)
OTP_TOTP_ISSUER = env.str("MFA_TOTP_ISSUER", "Opsdeck")
# Passkeys (django-otp-webauthn): WEBAUTHN_RP_ID, WEBAUTHN_RP_NAME, WEBAUTHN_ALLOWED_ORIGINS and
# PASSKEY_PASSWORDLESS_ROLES (project/settings/passkeys.py).
_passkeys = passkey_settings(env, allowed_hosts=ALLOWED_HOSTS)
OTP_WEBAUTHN_RP_ID = _passkeys["OTP_WEBAUTHN_RP_ID"]
OTP_WEBAUTHN_RP_NAME = _passkeys["OTP_WEBAUTHN_RP_NAME"]
OTP_WEBAUTHN_ALLOWED_ORIGINS = _passkeys["OTP_WEBAUTHN_ALLOWED_ORIGINS"]
OTP_WEBAUTHN_HELPER_CLASS = _passkeys["OTP_WEBAUTHN_HELPER_CLASS"]
OTP_WEBAUTHN_ALLOW_PASSWORDLESS_LOGIN = _passkeys["OTP_WEBAUTHN_ALLOW_PASSWORDLESS_LOGIN"]
PASSKEY_PASSWORDLESS_ROLES = _passkeys["PASSKEY_PASSWORDLESS_ROLES"]
# The axes backend goes first so a locked-out username/address pair never reaches the password check.
AUTHENTICATION_BACKENDS = [
    "apps.accounts.backends.LockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", 5, minimum=1, maximum=1000)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", 15, minimum=1, maximum=7 * 24 * 60))
# Together: one attacker cannot lock a victim out from everywhere, nor spray one address at many users.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# Attempts during a lockout do not extend it, so the "locked until" a user is shown stays true.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_CLIENT_IP_CALLABLE = "apps.core.request_context.client_ip"  # honours TRUSTED_PROXY_COUNT
AXES_LOCKOUT_CALLABLE = "apps.accounts.lockout.lockout_response"
# Successful logins are already in the audit trail; axes keeps only the failure counters.
AXES_DISABLE_ACCESS_LOG = True
AXES_VERBOSE = False
# axes logs every successful login at INFO; the audit trail already has it.
LOGGING["loggers"] = {**LOGGING.get("loggers", {}), "axes": {"level": "WARNING"}}

# --- Single sign-on with OpenID Connect (project/settings/oidc.py; README "SSO and passkeys"): off while OIDC_ISSUER
# is empty. The provider is never contacted here.
globals().update(oidc_settings(env))
AUTHENTICATION_BACKENDS.append("apps.accounts.oidc.backend.OidcBackend")

# --- Browser access (project/settings/browser_access.py; README "Browser API access: CORS and
# Content-Security-Policy"): CORS_ALLOWED_ORIGINS and CORS_ALLOW_CREDENTIALS for other origins' scripts calling the
# API, and the Content-Security-Policy of every page (CSP_REPORT_ONLY=true sends it as report-only, for trying a
# change out; production settings refuse it).
globals().update(cors_settings(env))
globals().update(csp_settings(env))

# --- Sessions
# A sign-in lasts at most SESSION_ABSOLUTE_HOURS (the expiry is fixed at sign-in and never
# extended by activity) and ends earlier after SESSION_IDLE_MINUTES without a request
# (apps/accounts/session_activity.py). Secure cookies are set in production settings.
SESSION_ABSOLUTE_HOURS = env.int("SESSION_ABSOLUTE_HOURS", 12, minimum=1, maximum=30 * 24)
SESSION_COOKIE_AGE = SESSION_ABSOLUTE_HOURS * 3600
SESSION_IDLE_MINUTES = env.int("SESSION_IDLE_MINUTES", 30, minimum=1, maximum=30 * 24 * 60)
if SESSION_IDLE_MINUTES > SESSION_ABSOLUTE_HOURS * 60:
    raise ImproperlyConfigured(
        f"SESSION_IDLE_MINUTES ({SESSION_IDLE_MINUTES}) must not exceed SESSION_ABSOLUTE_HOURS "
        f"({SESSION_ABSOLUTE_HOURS} h = {SESSION_ABSOLUTE_HOURS * 60} minutes)."
    )
SESSION_SAVE_EVERY_REQUEST = False
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"

# --- Password reset by email (apps/accounts/password_reset.py): the link works once, for this many minutes
# (Django's token also dies when the password or the last sign-in changes); requests are limited per client
# address (beyond: 429) and per email address (beyond: the usual answer, and nothing sent).
PASSWORD_RESET_TIMEOUT_MINUTES = env.int("PASSWORD_RESET_TIMEOUT_MINUTES", 30, minimum=1, maximum=24 * 60)
PASSWORD_RESET_TIMEOUT = PASSWORD_RESET_TIMEOUT_MINUTES * 60
PASSWORD_RESET_RATE_PER_IP = env.rate("PASSWORD_RESET_RATE_PER_IP", "5/hour")
PASSWORD_RESET_RATE_PER_ADDRESS = env.rate("PASSWORD_RESET_RATE_PER_ADDRESS", "3/hour")
for _name, _rate in (
    ("PASSWORD_RESET_RATE_PER_IP", PASSWORD_RESET_RATE_PER_IP),
    ("PASSWORD_RESET_RATE_PER_ADDRESS", PASSWORD_RESET_RATE_PER_ADDRESS),
):
    if int(_rate.partition("/")[0]) < 1:
        raise ImproperlyConfigured(f"{_name} must allow at least 1 request, like '5/hour'; got {_rate!r}.")

# --- Email (notifications, password reset), sent by Celery tasks (apps/core/mail.py).
# EMAIL_URL (smtp://user:password@host:587/?tls=True, smtp+ssl://…:465) or the usual EMAIL_HOST, EMAIL_PORT,
# EMAIL_HOST_USER, EMAIL_HOST_PASSWORD, EMAIL_USE_TLS / EMAIL_USE_SSL. With neither, the embedded default writes each
# message to a file under <data dir>/outbox instead of sending it (production sends to localhost:25, Django's default).
EMAIL_URL = env.str("EMAIL_URL", "")
if EMAIL_URL:
    try:
        _email = environ.Env.email_url_config(EMAIL_URL)
    except (KeyError, ValueError) as exc:
        raise ImproperlyConfigured(
            f"EMAIL_URL must look like smtp://user:password@host:587/?tls=True, got scheme {EMAIL_URL.split(':')[0]!r}."
        ) from exc
    EMAIL_BACKEND = _email["EMAIL_BACKEND"]
    EMAIL_HOST, EMAIL_PORT = _email.get("EMAIL_HOST", "localhost"), _email.get("EMAIL_PORT") or 25
    EMAIL_HOST_USER, EMAIL_HOST_PASSWORD = _email.get("EMAIL_HOST_USER", ""), _email.get("EMAIL_HOST_PASSWORD", "")
    EMAIL_USE_TLS, EMAIL_USE_SSL = bool(_email.get("EMAIL_USE_TLS")), bool(_email.get("EMAIL_USE_SSL"))
else:
    EMAIL_HOST = env.str("EMAIL_HOST", "")
    EMAIL_PORT = env.int("EMAIL_PORT", 25, minimum=1, maximum=65535)
    EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", "")
    EMAIL_HOST_PASSWORD = env.raw("EMAIL_HOST_PASSWORD", "")
    EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", False)
    EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", False)
    if EMAIL_HOST:
        EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    else:
        EMAIL_HOST = "localhost"
        EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
        EMAIL_FILE_PATH = DATA_DIR / "outbox"
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("Set EMAIL_USE_TLS (STARTTLS, port 587) or EMAIL_USE_SSL (port 465), not both.")
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT_SECONDS", 20, minimum=1, maximum=300)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", "Opsdeck <opsdeck@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
EMAIL_SUBJECT_PREFIX = "[Opsdeck] "
# The portal's address as people reach it, for links in emails and webhook payloads (https://opsdeck.example.com).
PORTAL_URL = env.str("PORTAL_URL", "http://localhost:8000").rstrip("/")
# A notification email is tried this many times, waiting NOTIFICATION_EMAIL_RETRY_SECONDS, then twice as long each
# time (60 s, 2 min, 4 min … with the defaults: about half an hour in all) while the mail server is down or refuses.
NOTIFICATION_EMAIL_ATTEMPTS = env.int("NOTIFICATION_EMAIL_ATTEMPTS", 6, minimum=1, maximum=20)
NOTIFICATION_EMAIL_RETRY_SECONDS = env.int("NOTIFICATION_EMAIL_RETRY_SECONDS", 60, minimum=1, maximum=3600)

# --- Webhooks (apps/notifications/webhooks.py): signed JSON POSTs to the endpoints administrators define.
# An endpoint is switched off, and its owner emailed, after this many failed attempts in a row.
WEBHOOK_MAX_FAILURES = env.int("WEBHOOK_MAX_FAILURES", 20, minimum=1, maximum=10_000)
# Seconds to connect and to wait for each read of an answer.
WEBHOOK_TIMEOUT_SECONDS = env.int("WEBHOOK_TIMEOUT_SECONDS", 10, minimum=1, maximum=120)
# Endpoints on private, loopback, link-local and other non-public addresses are refused (a webhook must not become a
# way into the portal's own network) unless this is set, for a receiver inside that network.
WEBHOOK_ALLOW_PRIVATE = env.bool("WEBHOOK_ALLOW_PRIVATE", False)
# Payloads and signatures travel over https only unless this is set (a receiver on a trusted network, a test).
WEBHOOK_ALLOW_HTTP = env.bool("WEBHOOK_ALLOW_HTTP", False)

# --- The shell: django-unfold's look for the admin and the portal pages (templates/base.html).
# The sidebar is built per request by apps.core.navigation, so that each role sees the areas it may use.
UNFOLD = {
    "SITE_TITLE": "Opsdeck",
    "SITE_HEADER": "Opsdeck",
    "SITE_SUBHEADER": "Operations portal",
    "SITE_SYMBOL": "hub",
    "SITE_URL": None,  # the sidebar already leads to every portal page
    "SITE_FAVICONS": [{"rel": "icon", "type": "image/svg+xml", "href": "apps.core.navigation.favicon_url"}],
    # Every page, portal and admin: dates in the viewer's time zone, numbers and plurals as the server writes them.
    "SCRIPTS": ["apps.core.navigation.format_script_url"],
    "SHOW_HISTORY": True,
    "SHOW_VIEW_ON_SITE": True,
    "COLORS": {
        # Blue, the portal's brand colour; white text on 600 and above passes WCAG AA.
        "primary": {
            "50": "oklch(97% .014 254.604)",
            "100": "oklch(93.2% .032 255.585)",
            "200": "oklch(88.2% .059 254.128)",
            "300": "oklch(80.9% .105 251.813)",
            "400": "oklch(70.7% .165 254.624)",
            "500": "oklch(62.3% .214 259.815)",
            "600": "oklch(54.6% .245 262.881)",
            "700": "oklch(48.8% .243 264.376)",
            "800": "oklch(42.4% .199 265.638)",
            "900": "oklch(37.9% .146 265.522)",
            "950": "oklch(28.2% .091 267.935)",
        },
    },
    "SIDEBAR": {
        "show_search": False,
        "show_all_applications": "apps.core.navigation.show_all_applications",
        "navigation": "apps.core.navigation.sidebar",
    },
    "ACCOUNT": {"navigation": "apps.core.navigation.account_links"},
}
