"""Several nginx routers (``router.hosts``: a pair of load balancers, or one per host),
switched as one: every router's new upstream is put in place and tested before any is
reloaded, so a config one of them rejects changes nothing anywhere.

With one router the switch is the single round trip of :meth:`NginxAdapter.switch`. With
several it is two: ``stage`` on all (in parallel), then ``reload_staged`` on all; a router
that refuses in the first phase has the others put back (``unstage``) and the error says
nothing was reloaded (``not_applied``: the saga has nothing to undo). A reload that fails
on one router after others reloaded is an applied failure: the saga's undo switches every
router back. The dead-man watchdog is armed on each router and called off on each.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from deployer.adapters.nginx import NginxAdapter
from deployer.errors import DeployerError
from deployer.ports import Runner

T = TypeVar("T")


@dataclass
class Routers:
    each: list[NginxAdapter]
    #: each router's access log (canary analysis reads them all), by router
    access_logs: list[str | None]

    @property
    def primary(self) -> NginxAdapter:
        """The first router: it holds the lock and the operation record."""
        return self.each[0]

    @property
    def runner(self) -> Runner:
        return self.primary.runner

    @property
    def upstream_file(self) -> str:
        return self.primary.upstream_file

    @property
    def names(self) -> list[str]:
        return [r.runner.name for r in self.each]

    def _all(self, fn: Callable[[NginxAdapter], T]) -> list[T | BaseException]:
        """``fn`` on every router at once; each result or the exception it raised."""

        def one(r: NginxAdapter) -> T | BaseException:
            try:
                return fn(r)
            except Exception as exc:  # collected and named per router below
                return exc

        if len(self.each) == 1:
            return [one(self.each[0])]
        with ThreadPoolExecutor(len(self.each), thread_name_prefix="router") as pool:
            return list(pool.map(one, self.each))

    def read(self) -> str:
        return self.primary.read()

    def read_all(self) -> dict[str, str]:
        """Every router's upstream file (an unreachable router raises)."""
        texts = self._all(lambda r: r.read())
        for res in texts:
            if isinstance(res, BaseException):
                raise res
        return {n: str(t) for n, t in zip(self.names, texts, strict=True)}

    def switch(self, conf: str) -> float:
        if len(self.each) == 1:
            return self.primary.switch(conf)

        started = time.monotonic()
        staged = self._all(lambda r: r.stage(conf))
        failed = [(r, e) for r, e in zip(self.each, staged, strict=True) if e is not None]
        if failed:
            ok = [r for r, e in zip(self.each, staged, strict=True) if e is None]
            self._put_back(ok, failed)
        reloaded = self._all(lambda r: r.reload_staged())
        bad = [(r, e) for r, e in zip(self.each, reloaded, strict=True) if e is not None]
        if bad:
            done = [r.runner.name for r, e in zip(self.each, reloaded, strict=True) if e is None]
            raise DeployerError(
                "; ".join(_named(r, e) for r, e in bad)
                + (f" ({', '.join(done)} reloaded the new upstream)" if done else "")
            )
        return time.monotonic() - started

    def _put_back(
        self, ok: list[NginxAdapter], failed: Sequence[tuple[NginxAdapter, object]]
    ) -> None:
        """A router refused (or could not be reached) in the test phase: the routers that
        had staged get their previous upstream back, and the error says so."""
        undone = self._all(lambda r: r.unstage() if any(r is o for o in ok) else None)
        stuck = [r.runner.name for r, e in zip(self.each, undone, strict=True) if e is not None]
        why = "; ".join(_named(r, e) for r, e in failed)
        proven = all(getattr(e, "not_applied", False) for _, e in failed) and not stuck
        if proven:
            err = DeployerError(f"{why}; nothing was reloaded on any router")
            err.not_applied = True
            raise err
        raise DeployerError(
            f"{why}; no router was reloaded"
            + (f", but {', '.join(stuck)} could not be put back" if stuck else "")
        )

    def arm_dead_man(self, conf: str, seconds: float, grace: float) -> str | None:
        """Arm every router's watchdog; what the first that had fired before printed."""
        out = self._all(lambda r: r.arm_dead_man(conf, seconds, grace))
        self._raise_first(out)
        return self._fired(out)

    def disarm_dead_man(self) -> str | None:
        """Call every timer off; what the first that had fired printed (``TIME STATUS``)."""
        out = self._all(lambda r: r.disarm_dead_man())
        self._raise_first(out)
        return self._fired(out)

    def _fired(self, out: Sequence[object], *, where: bool = False) -> str | None:
        fired = [(n, f) for n, f in zip(self.names, out, strict=True) if f is not None]
        if not fired:
            return None
        if len(self.each) == 1 and not where:
            return str(fired[0][1])
        return f"{fired[0][1]} on {', '.join(n for n, _ in fired)}"

    def disarm_others(self) -> str | None:
        """Call off every router's timer but the primary's (the commit calls that one off
        in its own round trip); what the first that had fired printed, with where."""
        if len(self.each) == 1:
            return None
        rest = Routers(self.each[1:], self.access_logs[1:])
        out = rest._all(lambda r: r.disarm_dead_man())
        self._raise_first(out)
        return rest._fired(out, where=True)

    def wait_drained(self) -> float:
        return max(r.wait_drained() for r in self.each)

    @staticmethod
    def _raise_first(results: Sequence[object]) -> None:
        for res in results:
            if isinstance(res, BaseException):
                raise res


def _named(router: NginxAdapter, exc: object) -> str:
    """What went wrong on ``router``, said once with its name."""
    text = str(exc) or type(exc).__name__
    name = router.runner.name
    return text if text.startswith(f"{name}:") else f"{name}: {text}"
