"""QUANTUM_QUEUES: the worker queues quantum jobs are routed to by their estimated memory and time (README, "How
jobs run").

A comma-separated list, tried in order; each entry is a queue name with optional ``:key=value`` limits:
``memory_mb`` (largest estimated simulator state it takes), ``seconds`` (longest estimated simulation) and
``processor`` (``cpu``, the default, or ``gpu``). A job goes to the first queue of its processor whose limits it
fits. The default keeps today's ``quantum`` for small jobs, sends the rest to ``quantum-large`` and GPU jobs to
``quantum-gpu``.
"""

from __future__ import annotations

import re

from django.core.exceptions import ImproperlyConfigured

from .env import Environment

DEFAULT_QUANTUM_QUEUES = "quantum:memory_mb=256:seconds=30,quantum-large,quantum-gpu:processor=gpu"
PROCESSORS = ("cpu", "gpu")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_RESERVED = ("default", "registry", "maintenance")


def quantum_queues(env: Environment, name: str = "QUANTUM_QUEUES") -> list[dict]:
    """The queues as dicts: ``name``, ``processor``, ``max_memory_mb`` and ``max_seconds`` (None: unbounded)."""
    text = env.str(name, DEFAULT_QUANTUM_QUEUES)
    queues = []
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        queue_name, *options = entry.split(":")
        if not _NAME.match(queue_name) or queue_name in _RESERVED:
            raise ImproperlyConfigured(
                f"{name}: {queue_name!r} is not a queue name of its own (letters, digits, '.', '_', '-'; "
                f"not {', '.join(_RESERVED)})."
            )
        queue = {"name": queue_name, "processor": "cpu", "max_memory_mb": None, "max_seconds": None}
        for option in options:
            key, _, value = option.partition("=")
            if key == "processor" and value in PROCESSORS:
                queue["processor"] = value
            elif key in ("memory_mb", "seconds") and value.isdigit() and int(value) > 0:
                queue["max_memory_mb" if key == "memory_mb" else "max_seconds"] = int(value)
            else:
                raise ImproperlyConfigured(
                    f"{name}: {option!r} of queue {queue_name!r} is not a limit; use memory_mb=<positive integer>, "
                    f"seconds=<positive integer> or processor=cpu|gpu."
                )
        queues.append(queue)
    names = [queue["name"] for queue in queues]
    if not queues or len(set(names)) != len(names):
        raise ImproperlyConfigured(f"{name} must name at least one queue, each once; got {text!r}.")
    if not any(queue["processor"] == "cpu" for queue in queues):
        raise ImproperlyConfigured(f"{name} needs at least one cpu queue; got {text!r}.")
    return queues
