"""Which process is which: a pid alone is reused, and any user may name a process anything.
The deploy lock records its holder's pid, user and start (this boot's id and the start time in
clock ticks); only the process that matches all three is the holder."""

from __future__ import annotations

import os
import socket

from deployer.commands import lock


def process_start(pid: int | str = "self") -> str:
    """A process's identity beyond its pid: this boot's id and its start time (clock ticks
    since boot, field 22 of ``/proc/PID/stat``); empty when it cannot be read."""
    try:
        boot = open("/proc/sys/kernel/random/boot_id").read().strip()  # noqa: SIM115
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[-1].split()
        return f"{boot}:{int(fields[19])}"
    except (OSError, IndexError, ValueError):
        return ""


def holder_alive(info: lock.LockInfo) -> bool | None:
    """Whether the holder's process runs: True/False on this machine, None elsewhere (or
    for a record that does not say which process it is: its TTL decides). The holder is the
    process with that pid, owned by that user, started at that moment: a reused pid or
    another user's process named "deployer" is not it."""
    if info.host != socket.gethostname():
        return None
    if not info.started or info.uid < 0:
        return None
    try:
        with open(f"/proc/{info.pid}/stat", "rb") as fh:
            state = fh.read().rsplit(b")", 1)[-1].split()[0]
        owner = os.stat(f"/proc/{info.pid}").st_uid
    except (OSError, IndexError):
        return False
    if state == b"Z" or owner != info.uid:
        return False
    return process_start(info.pid) == info.started
