# Opsdeck portal image: one image for the web process, Celery workers and Celery beat.

FROM python:3.11-slim AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN python -m venv /opt/venv
COPY requirements/ /tmp/requirements/
# REQUIREMENTS=gpu.txt builds the image of GPU worker hosts (README, "GPU workers"): the CUDA build of qiskit_aer
# replaces the CPU one, whose files the second step removes before putting the CUDA build's back alone.
ARG REQUIREMENTS=production.txt
RUN /opt/venv/bin/pip install -r "/tmp/requirements/${REQUIREMENTS}" \
    && if [ "${REQUIREMENTS}" = "gpu.txt" ]; then \
        /opt/venv/bin/pip uninstall -y qiskit-aer qiskit-aer-gpu \
        && /opt/venv/bin/pip install --no-deps "$(grep -E '^qiskit-aer-gpu==' /tmp/requirements/gpu.txt)"; \
    fi


FROM python:3.11-slim

# pg_dump and pg_restore for backups, verification and restore: the client of the major version the compose
# file's PostgreSQL runs (15; Debian bookworm's), since pg_dump refuses servers newer than itself.
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-client-15 \
    && rm -rf /var/lib/apt/lists/*

ENV PATH="/opt/venv/bin:$PATH" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DJANGO_SETTINGS_MODULE=project.settings.production \
    OPSDECK_DATA_DIR=/data

# /data is the user's home so that libraries caching under ~ write to the volume.
RUN groupadd --system --gid 10001 opsdeck \
    && useradd --system --uid 10001 --gid opsdeck --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin opsdeck \
    && mkdir /data \
    && chown opsdeck:opsdeck /data

COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
COPY . .

# Production settings refuse to load without these, so throwaway values are given
# to this step only; collectstatic never connects to the database. The data
# directory points elsewhere so that the directories the settings create are not
# left in /data owned by root. Static files land in /app/var/static (STATIC_ROOT),
# outside the volume, so they ship with the image.
RUN SECRET_KEY="build-only-$(python -c 'import secrets; print(secrets.token_urlsafe(50))')" \
    AUDIT_SIGNING_KEY="build-only-$(python -c 'import secrets; print(secrets.token_urlsafe(32))')" \
    BACKUP_ENCRYPTION_KEY="$(python -c 'import secrets; print(secrets.token_hex(32))')" \
    REPORT_SIGNING_KEY="build-only-placeholder-not-a-key-build-only-placeholder" \
    ALLOWED_HOSTS=build \
    DATABASE_URL=postgres://build@127.0.0.1/build \
    OPSDECK_DATA_DIR=/tmp/build-data \
    python manage.py collectstatic --noinput \
    && rm -rf /tmp/build-data

USER opsdeck
VOLUME ["/data"]
EXPOSE 8000

# /health/live is answered before host checks and HTTPS redirects, so a probe by IP works.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health/live', timeout=4)"]

CMD ["python", "manage.py", "runportal", "--host", "0.0.0.0", "--port", "8000"]
