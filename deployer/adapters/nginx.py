"""nginx switching on its host, through a Runner (SSH or local)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from deployer.adapters.heartbeat import Heartbeat
from deployer.commands import dead_man, files, nginx
from deployer.errors import CommandFailed, DeployerError, UntrustedError, printable
from deployer.ports import CommandResult, Runner
from deployer.values import Shell


@dataclass
class NginxAdapter:
    runner: Runner
    upstream_file: str
    test: Shell
    reload: Shell
    pid_file: str
    drain_timeout: float
    draining: set[int] = field(default_factory=set)
    last_drain_s: float = 0.0
    #: hosts' lanes stop their old colors in parallel: one of them waits for the drain
    _drain_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    #: beats for the dead-man watchdog's held session, once one is armed
    heartbeat: Heartbeat | None = field(default=None, repr=False)

    def read(self) -> str:
        """The upstream file's text, once its directory is proven safe (only root or
        deployer's user can write it, all the way up); what it says is checked by the
        caller (:func:`deployer.trust.upstream`)."""
        owned = files.check_owned([self.upstream_file])
        read = nginx.read_upstream(self.upstream_file)
        cmd = Shell.raw(f"( {owned.text} ) || exit {files.UNTRUSTED_PATH}; {read.text}")
        res = self.runner.run(cmd, check=False, timeout=60)
        if res.exit_status == files.UNTRUSTED_PATH:
            raise untrusted_path(self.runner.name, res.stderr, "router.upstream_file")
        if not res.ok:
            raise CommandFailed(
                self.runner.name, "read the upstream file", res.exit_status, res.stderr
            )
        return res.stdout

    def switch(self, conf: str) -> float:
        """Install ``conf``, test, reload gracefully; returns when new workers serve it.

        A config that fails the test command is replaced by the previous one (on the host,
        in the same round trip), so a failed switch leaves the router as it was.
        """
        started = time.monotonic()
        staged = nginx.staged_path(self.upstream_file)
        self.runner.put_bytes(conf.encode(), staged)
        cmd = nginx.switch(staged, self.upstream_file, self.test, self.reload, self.pid_file)
        self._reloaded(self.runner.run(cmd, check=False, timeout=30))
        return time.monotonic() - started

    def stage(self, conf: str) -> None:
        """Put ``conf`` in place and test it, nothing reloaded (several routers: all are
        tested before any is reloaded). Raises with ``not_applied`` when the test fails."""
        staged = nginx.staged_path(self.upstream_file)
        self.runner.put_bytes(conf.encode(), staged)
        cmd = nginx.stage(staged, self.upstream_file, self.test, self.reload, self.pid_file)
        self._tested(self.runner.run(cmd, check=False, timeout=30), "nothing reloaded")

    def reload_staged(self) -> None:
        cmd = nginx.reload_staged(self.upstream_file, self.test, self.reload, self.pid_file)
        self._reloaded(self.runner.run(cmd, check=False, timeout=30))

    def unstage(self) -> None:
        self.runner.run(nginx.unstage(self.upstream_file, self.pid_file), timeout=40)

    def _tested(self, res: CommandResult, restored: str) -> None:
        if res.exit_status in (nginx.TEST_FAILED, nginx.NOT_RUNNING):
            what = (
                "the config test failed with the new upstream in place"
                if res.exit_status == nginx.TEST_FAILED
                else "nginx is not running"
            )
            err = CommandFailed(
                self.runner.name,
                self.test.shown,
                res.exit_status,
                f"{what} (previous upstream restored, {restored}): {_why(res.stderr)}",
            )
            err.not_applied = True
            raise err
        if not res.ok:
            raise CommandFailed(
                self.runner.name, self.test.shown, res.exit_status, res.stderr or res.stdout
            )

    def _reloaded(self, res: CommandResult) -> None:
        if res.exit_status in (nginx.TEST_FAILED, nginx.NOT_RUNNING):
            self._tested(res, "nothing reloaded")
        if res.exit_status == nginx.NO_NEW_WORKERS:
            raise DeployerError(
                f"{self.runner.name}: nginx started no new workers within 10s "
                "(previous upstream file restored)"
            )
        if not res.ok:
            raise CommandFailed(
                self.runner.name,
                self.reload.shown,
                res.exit_status,
                f"reload failed (previous upstream file restored): {res.stderr}",
            )
        old = res.stdout.partition("old:")[2].split()
        self.draining |= {int(p) for p in old if p.isdigit()}

    def arm_dead_man(self, conf: str, seconds: float, grace: float) -> str | None:
        """Arm the router's watchdog (:mod:`deployer.commands.dead_man`), replacing one
        still running; what the previous one printed if it had fired (``TIME STATUS WHY``),
        else None. Returns once the watchdog runs and gets its beats."""
        staged = dead_man.paths(self.upstream_file)[0]
        self.runner.put_bytes(conf.encode(), staged)
        fired = dead_man.parse_fired(
            self.runner.run(dead_man.prepare(self.upstream_file), timeout=40).stdout
        )
        switch = nginx.switch(staged, self.upstream_file, self.test, self.reload, self.pid_file)
        held = self.runner.hold(dead_man.watchdog(self.upstream_file, switch, seconds, grace))
        said = held.first_line(timeout=15)
        if said != "armed":
            held.close()
            raise DeployerError(
                f"{self.runner.name}: the dead-man watchdog did not start "
                f"({printable(said) if said else 'it said nothing within 15s'})"
            )
        if self.heartbeat is None:
            self.heartbeat = Heartbeat(interval=min(1.0, grace / 5))
        self.heartbeat.add(held)
        return fired

    def disarm_dead_man(self) -> str | None:
        """Call the watchdog off; what it printed if it had fired (``TIME STATUS WHY``)."""
        return dead_man.parse_fired(
            self.runner.run(dead_man.disarm(self.upstream_file), timeout=40).stdout
        )

    def wait_drained(self) -> float:
        """Wait (bounded by ``drain_timeout``) until old workers have exited."""
        with self._drain_lock:
            return self._wait_drained()

    def _wait_drained(self) -> float:
        started = time.monotonic()
        deadline = started + self.drain_timeout
        while self.draining:
            alive = self.runner.run(nginx.workers_alive(sorted(self.draining))).stdout.split()
            self.draining = {int(p) for p in alive if p.isdigit()}
            if not self.draining or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.last_drain_s = time.monotonic() - started
        if self.draining:
            raise DeployerError(
                f"nginx workers {sorted(self.draining)} still draining after "
                f"{self.drain_timeout:g}s; not stopping the old color"
            )
        return self.last_drain_s


def untrusted_path(host: str, stderr: str, what: str) -> UntrustedError:
    """The error for :func:`deployer.commands.files.check_owned`'s refusal on ``host``."""
    line = next(
        (ln for ln in reversed(stderr.splitlines()) if ln.startswith("untrusted path ")), ""
    )
    why = printable(line.removeprefix("untrusted path "), 200) or "a path on the way"
    return UntrustedError(
        f"{host}: {what}: {why}: another user could swap what deployer writes or runs there; "
        "make it (and every directory above it) owned by root or deployer's user and "
        "writable by nobody else"
    )


def _why(stderr: str) -> str:
    """nginx's reason from its test output: the first ``[emerg]`` (or other error) line,
    which names the directive, file and line; else the last line."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for ln in lines:
        if any(f"[{level}]" in ln for level in ("emerg", "alert", "crit", "error")):
            return ln
    return lines[-1] if lines else "no output"
