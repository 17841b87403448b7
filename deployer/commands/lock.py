"""The deploy lock: a directory created with ``mkdir`` (atomic on every POSIX filesystem).

``acquire`` fails when the directory exists; the ``info`` file inside names the holder
(owner, host, pid, time, TTL, release id) so a refused release can say who holds it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from deployer.commands.shell import Shell, join


@dataclass(frozen=True)
class LockInfo:
    release_id: str
    owner: str
    host: str
    pid: int
    acquired_at: float
    ttl: float

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> LockInfo | None:
        try:
            data = json.loads(text)
            return cls(**{k: data[k] for k in cls.__dataclass_fields__})
        except (ValueError, KeyError, TypeError):
            return None

    def expired(self, now: float) -> bool:
        return now > self.acquired_at + self.ttl

    def describe(self) -> str:
        return f"{self.owner}@{self.host} (pid {self.pid}, release {self.release_id})"


def acquire(path: str, info: LockInfo) -> Shell:
    """Create the lock directory and write who holds it; exits non-zero if already held."""
    return (
        join(["mkdir", "-p", "--", _parent(path)])
        .then(join(["mkdir", "--", path]))
        .then(Shell.raw(f"printf %s {join([info.to_json()]).text} > {join([path + '/info']).text}"))
    )


def read(path: str) -> Shell:
    return Shell.raw(f"cat {join([path + '/info']).text} 2>/dev/null || true")


def release(path: str, release_id: str) -> Shell:
    """Remove the lock only if this release holds it."""
    info = join([path + "/info"]).text
    rid = join([f'"release_id": "{release_id}"']).text
    return Shell.raw(
        f"if grep -qF {rid} {info} 2>/dev/null; then rm -rf -- {join([path]).text}; fi"
    )


def break_stale(path: str, stale_release_id: str) -> Shell:
    """Remove a stale lock, but only the one that was read (not a newer holder's)."""
    return release(path, stale_release_id)


def _parent(path: str) -> str:
    parent = path.rstrip("/").rsplit("/", 1)[0]
    return parent or "/"
