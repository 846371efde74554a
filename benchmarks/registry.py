"""Model registry benchmark: a batch inference job against a bare transformers pipeline, in the same run.

Starts the portal (web) and one `celery worker` process on the registry queue
(scratch PostgreSQL database REGISTRY_BENCH_DATABASE, default opsdeck_bench_registry, and Redis at
REGISTRY_BENCH_REDIS_URL, default database 13: people benchmarking on one machine each set their own),
registers a tiny BERT text classifier built on the spot (nothing is downloaded), uploads it, waits until
it is ready, then times an inference job over 10,000 short texts through the API (upload to completed,
results stored) against `transformers.pipeline` with the same model over the same texts in this process.
Target ratio >= 2: text classification jobs run the model directly (apps/registry/batching.py), not
through the pipeline. Then times synchronous predictions in this process with the drift watch off and on.

    .venv/bin/python benchmarks/registry.py
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.portal import portal_running, verdict, wait_for_completed, ws_connect
from tests.registry_models import build_tiny_classifier, pack_zip

DATABASE = os.environ.get("REGISTRY_BENCH_DATABASE", "opsdeck_bench_registry")
REDIS_URL = os.environ.get("REGISTRY_BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
ROWS = 10_000
TARGET_RATIO = 2.0
# The baseline the issue measured against (the pipeline's speed hardly changes with larger batches here).
BARE_BATCH_SIZE = 256
PREDICT_INPUTS = 8
PREDICT_CALLS = 200
WORDS = ("the", "portal", "runs", "jobs", "fast", "slow", "quantum", "model", "great", "terrible", "fine", "broken")


def texts(count: int) -> list[str]:
    rng = random.Random(7)  # noqa: S311 - reproducible text, not secrets
    return [" ".join(rng.choices(WORDS, k=rng.randint(3, 12))) for _ in range(count)]


def as_csv(rows: list[str]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["text"])
    writer.writerows([text] for text in rows)
    return buffer.getvalue().encode()


def bare_rate(model_dir: Path, rows: list[str], batch_size: int) -> float:
    from transformers import pipeline

    classifier = pipeline("text-classification", model=str(model_dir), tokenizer=str(model_dir), device="cpu")
    classifier(rows[:batch_size], batch_size=batch_size)  # warm up, as the portal's worker is warm
    started = time.perf_counter()
    outputs = classifier(rows, batch_size=batch_size)
    elapsed = time.perf_counter() - started
    if len(outputs) != len(rows):
        raise RuntimeError("the bare pipeline lost rows")
    return len(rows) / elapsed


def wait_for(check, what: str, timeout: float = 600) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = check()
        if state is not None:
            return state
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not happen within {timeout} s")


def main() -> int:
    rows = texts(ROWS)
    with tempfile.TemporaryDirectory(prefix="opsdeck-bench-model-") as directory:
        model_dir = build_tiny_classifier(Path(directory) / "model")
        archive = pack_zip(model_dir)
        with portal_running(database=DATABASE, redis_url=REDIS_URL, queue="registry", environment={}) as portal:
            from django.conf import settings

            api = portal.api
            batch_size = settings.REGISTRY_JOB_BATCH_SIZE
            print("Model registry: batch inference job (web + 1 worker process) against a bare transformers pipeline")
            api.post("/api/v1/registry/models/", {"name": "bench-sentiment", "task": "text-classification"})
            version = api.post_files(
                "/api/v1/registry/models/bench-sentiment/versions/", {}, {"artifact": ("model.zip", archive)}
            )
            version_path = f"/api/v1/registry/models/bench-sentiment/versions/{version['version']}/"
            validated = wait_for(lambda: _unless_validating(api.get(version_path)), "validation")
            if validated["status"] != "ready":
                raise RuntimeError(f"the model did not validate: {validated.get('status_reason')}")
            # A small job first: the worker loads the pipeline once, as it would have in service.
            warm = api.post_files(
                "/api/v1/registry/inference-jobs/",
                {"model": "bench-sentiment", "version": str(version["version"])},
                {"file": ("warm.csv", as_csv(rows[:batch_size]))},
            )
            job_wait(api, warm["id"])

            # The bare pipeline runs before and after the job and the job is compared with their mean: on a machine
            # shared with other work, a busy minute then weighs on both sides alike.
            bare_before = bare_rate(model_dir, rows, BARE_BATCH_SIZE)
            payload = as_csv(rows)
            started = time.perf_counter()
            finished = asyncio.run(job_run(portal, version["version"], payload))
            portal_rate = ROWS / (time.perf_counter() - started)
            if finished["rows_done"] != ROWS:
                raise RuntimeError(f"the job did {finished['rows_done']} of {ROWS} rows")

            bare_after = bare_rate(model_dir, rows, BARE_BATCH_SIZE)
            bare = (bare_before + bare_after) / 2
            ratio = portal_rate / bare
            print(f"  {ROWS:,} short texts; job batches of {batch_size}, pipeline batches of {BARE_BATCH_SIZE}")
            around = f"(before the job {bare_before:.0f}, after {bare_after:.0f})"
            print(f"    bare pipeline, one process   {bare:9.0f} rows/s   {around}")
            print(f"    portal job, upload to done   {portal_rate:9.0f} rows/s   ratio {ratio:.2f}")
            worker = finished["metrics"]["rows_per_second"]
            print(f"      of which in the worker     {worker:9.0f} rows/s   (reading, predicting, writing results)")
            plain, counted, observe = drift_cost(rows)
            print(f"  synchronous predict() of {PREDICT_INPUTS} texts here, median of {PREDICT_CALLS} calls")
            print(f"    drift watch off              {plain * 1000:9.2f} ms a call")
            print(f"    drift watch on               {counted * 1000:9.2f} ms a call   ({counted / plain - 1:+.0%})")
            print(f"    drift count alone            {observe * 1000:9.2f} ms a call   (one upsert)")
            print("Summary")
            met = verdict(ratio >= TARGET_RATIO)
            print(f"  inference job / bare pipeline   {ratio:5.2f}   target >= {TARGET_RATIO}   {met}")
    return 0


def drift_cost(rows: list[str]) -> tuple[float, float, float]:
    """Median seconds per predict() call with the drift watch off and on, and per drift count alone."""
    from django.conf import settings

    from apps.accounts.models import User
    from apps.registry.drift import drift_observe
    from apps.registry.models import RegisteredModel
    from apps.registry.services import predict

    model = RegisteredModel.objects.get(name="bench-sentiment")
    user = User.objects.get(username="bench-operator")
    texts = rows[:PREDICT_INPUTS]
    outputs = predict(model=model, inputs=texts, actor=user, number=1)["outputs"]  # loads the model here
    version = model.versions.get(version=1)
    timings: dict[str, list[float]] = {"off": [], "on": [], "count": []}
    # Calls alternate between the two settings and medians are compared: a busy moment of the machine (shared
    # with other work) hits both sides alike and does not move a median.
    for _ in range(PREDICT_CALLS):
        for mode in ("off", "on"):
            settings.REGISTRY_DRIFT_ENABLED = mode == "on"
            started = time.perf_counter()
            predict(model=model, inputs=texts, actor=user, number=1)
            timings[mode].append(time.perf_counter() - started)
        started = time.perf_counter()
        drift_observe(version=version, texts=texts, outputs=outputs)
        timings["count"].append(time.perf_counter() - started)
    return tuple(statistics.median(timings[mode]) for mode in ("off", "on", "count"))


async def job_run(portal, version: int, payload: bytes) -> dict:
    """Submit the job with the stream already open, wait for its completed update, return the job."""
    socket = await ws_connect(portal.port, portal.token)
    job = await asyncio.to_thread(
        portal.api.post_files,
        "/api/v1/registry/inference-jobs/",
        {"model": "bench-sentiment", "version": str(version)},
        {"file": ("texts.csv", payload)},
    )
    await wait_for_completed(socket, {job["id"]}, timeout=600, kind="inference")
    await socket.close()
    return portal.api.get(f"/api/v1/registry/inference-jobs/{job['id']}/")


def _unless_validating(state: dict) -> dict | None:
    return None if state["status"] == "validating" else state


def job_wait(api, job_id: int) -> dict:
    def finished():
        state = api.get(f"/api/v1/registry/inference-jobs/{job_id}/")
        if state["status"] in ("failed", "cancelled"):
            raise RuntimeError(f"inference job {job_id} {state['status']}: {state.get('error')}")
        return state if state["status"] == "completed" else None

    return wait_for(finished, f"inference job {job_id}")


if __name__ == "__main__":
    sys.exit(main())
