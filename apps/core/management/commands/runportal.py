import os
import signal

import uvicorn
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from uvicorn.supervisors import Multiprocess

from apps.core.embedded import EmbeddedCelery
from project.celery import app as celery_app


def _exit_on_sigterm(signum, frame):
    raise SystemExit(0)


def _clear_metrics_directory() -> None:
    """Delete the metric files of processes that no longer run.

    prometheus_client's multiprocess files are named after their process id; those of an earlier run would be
    counted again. Files of live processes stay: this one's (Django's set-up has already opened them, and a
    process writing to deleted files is invisible to /metrics) and those of workers sharing the directory.
    """
    directory = settings.PROMETHEUS_MULTIPROC_DIR
    directory.mkdir(parents=True, exist_ok=True)
    for path in directory.glob("*.db"):
        pid = path.stem.rsplit("_", 1)[-1]
        if pid.isdigit() and not _process_alive(int(pid)):
            path.unlink(missing_ok=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, another user's
    return True


def _serve(config: uvicorn.Config) -> None:
    """One server in this process, or ``config.workers`` server processes on one shared socket.

    The kernel spreads connections over the processes, so one busy event loop no longer delays every request
    (a liveness probe included). uvicorn's supervisor restarts a process that dies and stops them all on
    SIGINT or SIGTERM.
    """
    if config.workers > 1:
        Multiprocess(config, sockets=[config.bind_socket()]).run()
    else:
        uvicorn.Server(config).run()


class Command(BaseCommand):
    help = (
        "Serve the portal (HTTP and websockets) with uvicorn. Without REDIS_URL a Celery "
        "worker and beat run inside this process too; with it, run them as their own processes."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="Address to listen on (default 127.0.0.1).")
        parser.add_argument("--port", type=int, default=8000, help="Port to listen on (default 8000).")
        parser.add_argument(
            "--concurrency", type=int, default=2, help="Embedded mode: worker threads running tasks (default 2)."
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=settings.WEB_CONCURRENCY,
            help="Web server processes sharing the port (default WEB_CONCURRENCY, 1). Not in embedded mode.",
        )

    def handle(self, *args, host: str, port: int, concurrency: int, workers: int, **options) -> None:
        if workers < 1:
            raise CommandError(f"--workers must be at least 1, got {workers}.")
        if workers > 1 and settings.EMBEDDED:
            raise CommandError(
                f"{workers} web processes (--workers or WEB_CONCURRENCY) need REDIS_URL: in embedded mode one "
                "process holds the worker, beat and the in-memory broker, so it must be the only web process."
            )
        _clear_metrics_directory()
        embedded = EmbeddedCelery(celery_app, concurrency=concurrency) if settings.EMBEDDED else None
        config = uvicorn.Config(
            "project.asgi:application",
            host=host,
            port=port,
            workers=workers,
            lifespan="off",
            log_config=None,
            # Client addresses are taken from X-Forwarded-For by the portal itself,
            # through exactly TRUSTED_PROXY_COUNT proxies; uvicorn must not rewrite them.
            proxy_headers=False,
            server_header=False,
            # Job updates are small and go to many sockets at once: compressing every frame
            # for every socket costs more CPU than the bytes it saves.
            ws_per_message_deflate=False,
        )
        # uvicorn re-raises the signal that stopped it once it has shut down;
        # turning SIGTERM into SystemExit lets the embedded worker stop cleanly too.
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
        mode = (
            "embedded worker and beat"
            if embedded
            else f"web only, {workers} process(es); workers use {settings.CELERY_BROKER_URL.split('@')[-1]}"
        )
        self.stdout.write(f"Opsdeck portal on http://{host}:{port}/ ({mode}). Press Ctrl-C to stop.")
        if embedded:
            embedded.start()
        try:
            _serve(config)
        except KeyboardInterrupt:
            pass
        finally:
            if embedded:
                embedded.stop()
            self.stdout.write("Opsdeck portal stopped.")
