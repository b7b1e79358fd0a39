"""Who holds a claimed delivery row, and whether that process is still alive.

A claim records its holder: the host (hostname, boot and pid namespace, so "the same
host" means pids are comparable), the pid, and the process's start time. A later run on
the same host can then tell at once that the holder is gone: no such pid, a zombie, or a
pid reused by a younger process (its start time differs). On other hosts nothing can be
asked directly; there the claim's heartbeat tells (see :mod:`newsletter.store.leases`).

Start times come from ``/proc/<pid>/stat`` (field 22, clock ticks since boot). Where
there is no ``/proc`` only the pid's existence is checked (``os.kill(pid, 0)``).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from functools import cache
from pathlib import Path

__all__ = ["Holder", "current_holder", "holder_state", "process_start", "this_host"]

PROC = Path("/proc")


@dataclass(frozen=True)
class Holder:
    """The process that claimed rows: where it runs, its pid and its start time."""

    host: str
    pid: int
    #: clock ticks since boot when the process started (None where it cannot be read)
    started: int | None

    def describe(self) -> str:
        """``pid 123 on host`` for messages."""
        return f"pid {self.pid} on {self.host.split('/', 1)[0]}"


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return ""


@cache
def this_host() -> str:
    """This host as claims name it: hostname, boot id and pid namespace.

    Two containers with the same hostname have different pid namespaces; a host that
    rebooted has a new boot id. Only where all three match is a pid comparable.
    """
    boot = _read(PROC / "sys/kernel/random/boot_id")[:8]
    try:
        pidns = os.readlink(PROC / "self/ns/pid")
    except OSError:
        pidns = ""
    parts = [socket.gethostname()[:200], boot, pidns.removeprefix("pid:").strip("[]")]
    return "/".join(p for p in parts if p) if boot or pidns else parts[0]


def _stat_fields(pid: int) -> list[str] | None:
    text = _read(PROC / str(pid) / "stat")
    if not text:
        return None
    # the command name (field 2) is in parentheses and may hold spaces and parentheses:
    # the fields after the last ")" start with field 3, the state
    return text.rsplit(")", 1)[-1].split()


def process_start(pid: int) -> int | None:
    """The start time of process ``pid`` in clock ticks since boot (None: unknown)."""
    fields = _stat_fields(pid)
    if fields is None or len(fields) < 20:
        return None
    try:
        return int(fields[19])  # field 22 of stat(5)
    except ValueError:
        return None


def current_holder() -> Holder:
    """This process as the holder of the rows it claims."""
    pid = os.getpid()
    return Holder(this_host(), pid, process_start(pid))


def holder_state(holder: Holder, host: str | None = None) -> bool | None:
    """True when ``holder`` runs, False when it is gone, None when this host cannot tell
    (it runs elsewhere: its heartbeat decides)."""
    if holder.host != (host or this_host()) or holder.pid <= 0:
        return None
    if PROC.is_dir():
        fields = _stat_fields(holder.pid)
        if fields is None:
            return False  # no such process
        if fields[0] in ("Z", "X"):
            return False  # killed, not yet reaped by its parent
        started = process_start(holder.pid)
        return holder.started is None or started is None or started == holder.started
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process, but it exists
    return True
