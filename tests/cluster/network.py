"""Hosts on one machine: a network namespace per host, each joined to one bridge by a veth pair (needs root).

Every name starts with ``odk`` so that a run can remove what an interrupted earlier run left behind.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

PREFIX = "odk"
BRIDGE = f"{PREFIX}br0"
SUBNET = "10.215.0"
# The machine running the test sits on the bridge itself, as the hosts' clients and operator would.
OUTSIDE_ADDRESS = f"{SUBNET}.1"


def ip(*args: str, missing_ok: bool = False) -> str:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False, timeout=30)
    if result.returncode != 0 and not (missing_ok and "Cannot find device" in result.stderr):
        raise RuntimeError(f"ip {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


@dataclass(frozen=True)
class Host:
    """A namespace ``odk-<name>`` with one address; ``link`` is its veth end on the bridge (cut it to isolate)."""

    name: str
    number: int

    @property
    def namespace(self) -> str:
        return f"{PREFIX}-{self.name}"

    @property
    def address(self) -> str:
        return f"{SUBNET}.{self.number}"

    @property
    def link(self) -> str:
        return f"{PREFIX}{self.number}h"

    @property
    def inner_link(self) -> str:
        return f"{PREFIX}{self.number}n"

    def command(self, *argv: str) -> list[str]:
        """``argv`` run on this host."""
        return ["ip", "netns", "exec", self.namespace, *argv]

    def cut(self) -> None:
        """Pull this host's cable: nothing reaches it or leaves it from now on."""
        ip("link", "set", self.link, "down")


def network_create(hosts: list[Host]) -> None:
    ip("link", "add", BRIDGE, "type", "bridge")
    ip("addr", "add", f"{OUTSIDE_ADDRESS}/24", "dev", BRIDGE)
    ip("link", "set", BRIDGE, "up")
    for host in hosts:
        ip("netns", "add", host.namespace)
        ip("link", "add", host.link, "type", "veth", "peer", "name", host.inner_link)
        ip("link", "set", host.inner_link, "netns", host.namespace)
        ip("link", "set", host.link, "master", BRIDGE, "up")
        inside = ("netns", "exec", host.namespace, "ip")
        ip(*inside, "addr", "add", f"{host.address}/24", "dev", host.inner_link)
        ip(*inside, "link", "set", host.inner_link, "up")
        ip(*inside, "link", "set", "lo", "up")


def network_remove() -> list[str]:
    """Delete every ``odk`` namespace (ending what still runs in it) and link; returns what was removed."""
    removed = []
    for line in ip("netns", "list").splitlines():
        namespace = line.split()[0] if line.strip() else ""
        if not namespace.startswith(f"{PREFIX}-"):
            continue
        for pid in ip("netns", "pids", namespace).split():
            subprocess.run(["kill", "-KILL", pid], check=False, capture_output=True)
        ip("netns", "del", namespace)
        removed.append(namespace)
    for line in ip("-o", "link", "show").splitlines():
        name = line.split(":")[1].strip().split("@")[0]
        if name.startswith(PREFIX):
            ip("link", "del", name, missing_ok=True)  # gone already if its peer's namespace just went
            removed.append(name)
    return removed
