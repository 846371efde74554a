"""Long-running processes on the rehearsal's hosts: each in its own process group, its output in a log file."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from tests.helpers import PROJECT_DIR

from .network import Host

LOG_TAIL_CHARACTERS = 3000


class HostProcess:
    """``argv`` started on ``host``; stopped with ``stop_signal``, then SIGKILL if it lingers."""

    def __init__(
        self,
        host: Host,
        name: str,
        argv: list[str],
        *,
        log: Path,
        environment: dict[str, str] | None = None,
        stop_signal: int = signal.SIGTERM,
    ):
        self.host, self.name, self.log, self.stop_signal = host, name, log, stop_signal
        self.frozen = False
        with log.open("ab") as output:
            self.process = subprocess.Popen(
                host.command(*argv),
                cwd=PROJECT_DIR,
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def tail(self) -> str:
        return f"--- {self.name} on {self.host.name} ({self.log}):\n{self.output()[-LOG_TAIL_CHARACTERS:]}"

    def wait_until(self, ready: Callable[[], bool], what: str, timeout: float = 90) -> None:
        """Poll ``ready`` until it holds; fail with the log's tail if the process exits or time runs out."""
        deadline, last_error = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited ({self.process.returncode}) before {what}\n{self.tail()}")
            try:
                if ready():
                    return
            except Exception as error:  # not ready yet, whichever client says so; kept for the message
                last_error = error
            time.sleep(0.2)
        raise AssertionError(f"{self.name}: not {what} within {timeout} s (last: {last_error!r})\n{self.tail()}")

    def wait_for_output(self, text: str, timeout: float = 90) -> None:
        self.wait_until(lambda: text in self.output(), f"printing {text!r}", timeout)

    def freeze(self) -> None:
        """Stop it using the machine's cores (SIGSTOP), as a host of its own would not take them from the others."""
        os.killpg(self.process.pid, signal.SIGSTOP)
        self.frozen = True

    def stop(self, timeout: float = 10) -> None:
        if self.process.poll() is not None:
            return
        try:
            # A frozen process has nothing to finish cleanly: its host is gone.
            os.killpg(self.process.pid, signal.SIGKILL if self.frozen else self.stop_signal)
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        except ProcessLookupError:
            self.process.wait()
