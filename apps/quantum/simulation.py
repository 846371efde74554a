"""The worker's handle on its simulator child process: send a request, wait, stop it when told."""

from __future__ import annotations

import contextlib
import ctypes
import pickle
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[2]
# How often a waiting worker looks for a cancel request.
POLL_SECONDS = 0.1
_PR_SET_PDEATHSIG = 1


class SimulationStopped(Exception):
    """The simulation was stopped before it finished (``reason`` says why: cancelled or timeout)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class SimulatorCrashed(RuntimeError):
    """The simulator process died (out of memory, killed from outside)."""


def _die_with_parent() -> None:
    # Linux: the simulator is killed when the worker process that started it dies, even by SIGKILL.
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class SimulatorProcess:
    """One long-lived simulator child; started on first use and again after it was stopped."""

    def __init__(self):
        self._process: subprocess.Popen | None = None

    def start(self) -> None:
        if self._process is None or self._process.poll() is not None:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "apps.quantum.simulator_process"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                cwd=PROJECT_DIR,
                preexec_fn=_die_with_parent,
            )

    def stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None

    def run(self, request: dict, *, deadline: float, cancelled: Callable[[], bool]) -> dict:
        """Send ``request`` and wait for its response, stopping the simulation on cancel or deadline."""
        self.start()
        process = self._process
        try:
            pickle.dump(request, process.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            process.stdin.flush()
        except BrokenPipeError:
            self.stop()
            raise SimulatorCrashed("the simulator process exited before it took the job") from None
        while not select.select([process.stdout], [], [], POLL_SECONDS)[0]:
            if time.monotonic() > deadline:
                self.stop()
                raise SimulationStopped("timeout")
            if cancelled():
                self.stop()
                raise SimulationStopped("cancelled")
        try:
            return pickle.load(process.stdout)  # noqa: S301 (our own child process, not user data)
        except EOFError:
            code = process.wait()
            self._process = None
            raise SimulatorCrashed(f"the simulator process exited with code {code} during the run") from None


_local = threading.local()


def simulator_process() -> SimulatorProcess:
    """This thread's simulator (worker threads in the embedded mode each get their own)."""
    if not hasattr(_local, "simulator"):
        _local.simulator = SimulatorProcess()
    return _local.simulator
