"""The deploy lock on the router host: take it, keep it alive, give it back, break it.

A holder proves it is alive with a heartbeat (the holder record's ``renewed_at``, rewritten
every ``ttl / 3`` seconds at most 30 s apart, from a thread with its own connection), so a
lock is stale only when nobody renewed it for ``ttl``. A lock is never taken over while
its holder's process is alive on this machine, whatever its age. A lock whose holder
cannot be read (empty or garbage info, a plain file at the lock path) is reported and left
alone: `deployer unlock --reason` breaks it, with the reason recorded.
"""

from __future__ import annotations

import getpass
import os
import socket
import threading
import time
from collections.abc import Callable

from deployer.adapters.process import holder_alive, process_start
from deployer.commands import lock
from deployer.errors import InputError, LockHeldError, LockLost, UntrustedError, printable
from deployer.ports import Reporter, Runner
from deployer.values import Shell


class DeployLock:
    def __init__(
        self,
        runner: Runner,
        path: str,
        ttl: float,
        reporter: Reporter,
        heartbeat_runner: Callable[[], Runner] | None = None,
    ):
        self.runner, self.path, self.ttl, self.reporter = runner, path, ttl, reporter
        self._heartbeat_runner = heartbeat_runner
        self._info: lock.LockInfo | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost: BaseException | None = None

    def state(self) -> lock.LockState:
        return lock.LockState.parse(self.runner.run(lock.read(self.path)).stdout)

    def holder(self) -> lock.LockInfo | None:
        return self.state().info

    def acquire(self, op_id: str) -> None:
        now = time.time()
        info = lock.LockInfo(
            op_id,
            getpass.getuser(),
            socket.gethostname(),
            os.getpid(),
            now,
            self.ttl,
            now,
            os.getuid(),
            process_start(),
        )
        for _ in range(2):
            res = self.runner.run(lock.acquire(self.path, info), check=False)
            if res.ok:
                self._info = info
                return
            if res.exit_status == lock.NO_PARENT:
                raise InputError(
                    f"lock.path {self.path}: cannot create its directory on the router host "
                    f"({res.stderr.strip()[-200:] or 'mkdir failed'})"
                )
            if res.exit_status == lock.UNSAFE_PARENT:
                why = res.stderr.strip().splitlines()[-1] if res.stderr.strip() else ""
                raise UntrustedError(
                    f"lock.path {self.path}: {printable(why, 200) or 'its directory is unsafe'}"
                    ": another user could block or steer every release from there; choose a "
                    "directory only root or deployer's user can write, all the way up (the "
                    "default is under /var/lib/deployer)"
                )
            state = self.state()
            if state.kind == "absent":
                continue  # released between our mkdir and our look: try once more
            self._refuse_or_take_over(state)
        raise LockHeldError(f"lock {self.path} could not be taken")

    def _refuse_or_take_over(self, state: lock.LockState) -> None:
        holder = state.info
        if holder is None:
            what = (
                "a file that is not a lock"
                if state.kind == "other"
                else ("an unreadable holder record" if state.text.strip() else "no holder record")
            )
            raise LockHeldError(
                f"lock {self.path} holds {what}; if no deployer is running for this app, "
                "break it with `deployer unlock -p PLAYBOOK --reason '...'`"
            )
        alive = holder_alive(holder)
        age = int(time.time() - holder.acquired_at)
        if alive:
            raise LockHeldError(
                f"locked by {holder.describe()} for {age}s; that process is still running"
            )
        if alive is None and not holder.expired(time.time()):
            raise LockHeldError(
                f"locked by {holder.describe()} for {age}s; lock {self.path} is stale after "
                f"{holder.ttl:g}s without a heartbeat"
            )
        why = "its process is gone" if alive is False else f"no heartbeat for {holder.ttl:g}s"
        self.reporter.note(f"taking over the lock of {holder.describe()}: {why}")
        self.runner.run(lock.break_stale(self.path, holder.release_id))

    # ----- heartbeat -----
    def start_heartbeat(self) -> None:
        if self._info is None or self._heartbeat_runner is None:
            return
        interval = max(0.5, min(self.ttl / 3, 30.0))
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._beat, args=(interval,), name="deployer-lock-heartbeat", daemon=True
        )
        self._thread.start()

    def _beat(self, interval: float) -> None:
        assert self._info is not None and self._heartbeat_runner is not None
        runner: Runner | None = None
        try:
            while not self._stop.wait(interval):
                try:
                    runner = runner or self._heartbeat_runner()
                    renewed = lock.LockInfo(**{**self._info.__dict__, "renewed_at": time.time()})
                    res = runner.run(lock.renew(self.path, renewed), check=False, timeout=20)
                except Exception:  # a missed beat; the next one tries again
                    if runner is not None:
                        runner.close()
                    runner = None
                    continue
                if res.exit_status == lock.NOT_OURS:
                    self.lost = LockLost(f"lock {self.path} was taken by another process")
                    return
        finally:
            if runner is not None:
                runner.close()

    def stop_heartbeat(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def release(self, op_id: str, also: Shell | None = None) -> None:
        """Give the lock back (and run ``also`` first, in the same round trip)."""
        self.stop_heartbeat()
        cmd = lock.release(self.path, op_id)
        if also is not None:
            cmd = Shell.around(f"{also.text}; {cmd.text}", f"{also.shown}; {cmd.shown}", also)
        self.runner.run(cmd, check=False)
        self._info = None

    def break_(self) -> lock.LockState:
        """Remove whatever is at the lock path; refuses while its holder runs here."""
        state = self.state()
        holder = state.info
        if holder is not None and holder_alive(holder):
            raise LockHeldError(
                f"locked by {holder.describe()}, which is still running on this machine"
            )
        if state.kind != "absent":
            self.runner.run(lock.break_any(self.path))
        return state
