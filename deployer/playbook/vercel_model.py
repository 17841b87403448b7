"""The playbook of a Vercel project (`target: vercel`): no hosts, colors or router; the
project's production deployment is what serves, and a release promotes a deployment that CI
built (staged, not yet serving) after gating it on its own URL.

Shared sections (vars, gates, migrate, lock, drill, journal_dir) are the nginx playbook's.
The machine running deployer is the one host (`local`): it holds the lock and the operation
record (use your CI's concurrency control across runners) and runs the migrate step.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from deployer.playbook.fields import Duration, Path_, Strict
from deployer.playbook.models import Drill, Gates, Host, Lock, Migrate
from deployer.playbook.strategy_model import Strategy
from deployer.playbook.variables import BUILTINS, check_reference, references

_ENV_ONLY = "must be `${env:NAME}` (a secret: never written in a playbook)"


class VercelSettings(Strict):
    project: str = Field(
        min_length=1, max_length=100, description="The Vercel project (its id `prj_...` or name)."
    )
    team: str | None = Field(
        None,
        min_length=1,
        max_length=100,
        description="The team: its id (`team_...`, sent as `teamId`) or slug (sent as `slug`). "
        "Default: the token's personal account.",
    )
    token: str = Field(description="API token, `${env:VERCEL_TOKEN}` (a secret).")
    production_url: str = Field(
        pattern=r"^https?://[^\s/]+(/[^\s]*)?$",
        description="The production URL users reach (e.g. https://shop.example.com): the "
        "post-switch gate probes it.",
    )
    protection_bypass: str | None = Field(
        None,
        description="Protection Bypass for Automation secret, `${env:...}`: sent as the "
        "`x-vercel-protection-bypass` header so protected deployment URLs can be probed.",
    )
    deploy_command: str | None = Field(
        None,
        description="A command run on this machine (a template: `${version}`, `${env:...}`) "
        "that creates the staged deployment and prints its URL last, e.g. `vercel deploy "
        "--prebuilt --prod --skip-domain --token ${env:VERCEL_TOKEN}`: then `release "
        "--version V` needs no --deployment.",
    )
    api_url: str = Field(
        "https://api.vercel.com",
        pattern=r"^https?://[^\s/]+/?$",
        description="Vercel's API. Deployment URLs are reached with the same scheme.",
    )
    ready_timeout: Duration = Field(
        600.0, gt=0, description="How long to wait for the candidate to be READY."
    )
    promote_timeout: Duration = Field(
        180.0,
        gt=0,
        description="How long a promote or rollback may take until production serves it.",
    )
    api_budget: Duration = Field(
        60.0,
        gt=0,
        description="Time one API call may spend retrying 429 (honouring Retry-After) and 5xx; "
        "a wait that would end past it is not started.",
    )
    accept_auto_assign: bool = Field(
        False,
        description="Release onto a project that auto-assigns its production domains to new "
        "production deployments (and a candidate that was not staged with `--skip-domain`). "
        "Such a candidate goes live by itself as soon as it is READY, before any gate: "
        "deployer refuses it (exit 2) unless this is true.",
    )

    @model_validator(mode="after")
    def _urls(self) -> VercelSettings:
        from urllib.parse import urlsplit

        for name in ("api_url", "production_url"):
            value = getattr(self, name)
            try:
                parts = urlsplit(value)
                port = parts.port  # raises for a port out of range or not a number
            except ValueError as exc:
                raise ValueError(f"vercel.{name}: {value!r} is not a URL ({exc})") from None
            if not parts.hostname or (port is not None and not 0 < port < 65536):
                raise ValueError(f"vercel.{name}: {value!r} is not a URL with a host and port")
        return self

    @model_validator(mode="after")
    def _secrets(self) -> VercelSettings:
        for name in ("token", "protection_bypass"):
            value = getattr(self, name)
            if value is None:
                continue
            refs = references(value)
            whole = len(refs) == 1 and value.strip() == f"${{{refs[0]}}}"
            if not whole or not refs[0].startswith("env:"):
                raise ValueError(f"vercel.{name}: {_ENV_ONLY}")
        return self


class VercelPlaybook(Strict):
    target: Literal["vercel"] = Field(description="`vercel`: release Vercel deployments.")
    app: str = Field(
        pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$", description="The app's name (lowercase, - and _)."
    )
    environment: str = Field(
        "production", pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$", description="Environment name."
    )
    vars: dict[str, str] = Field(
        default_factory=dict,
        description="Your variables, used as `${name}`; `--var NAME=VALUE` overrides them.",
    )
    vercel: VercelSettings = Field(description="The Vercel project and how to reach it.")
    gates: Gates = Field(
        default_factory=Gates,
        description="pre_switch probes the candidate's own URL; post_switch the production URL.",
    )
    migrate: Migrate | None = Field(
        None,
        description="Alembic migrations, lint-gated, run from this machine before the promote.",
    )
    strategy: Strategy = Field(
        default_factory=Strategy,
        description="`canary`: a Vercel rolling release, its stages the steps' weights, each "
        "analysed (probes through the production domain, attributed to the candidate by the "
        "health route's version; Prometheus if configured) and approved only on a pass.",
    )
    lock: Lock = Field(default_factory=Lock, description="The deploy lock (on this machine).")
    drill: Drill = Field(default_factory=Drill, description="`deployer drill`.")
    state_dir: Path_ = Field(
        ".deployer/state",
        description="Directory on this machine (relative to the playbook) for the lock and the "
        "operation record.",
    )
    journal_dir: str = Field(
        ".deployer", description="Local directory (relative to the playbook) for the journal."
    )

    PATH_KEYS_WITHOUT_SECRETS: ClassVar[frozenset[str]] = frozenset({"state_dir", "lock.path"})
    LOCAL: ClassVar[Host] = Host(name="local", transport="local")

    @model_validator(mode="after")
    def _cross_checks(self) -> VercelPlaybook:
        if self.migrate is not None and self.migrate.host not in (None, "local"):
            raise ValueError("migrate.host: a Vercel playbook migrates from this machine (local)")
        defined = set(BUILTINS) | set(self.vars)
        for key, template in self.templates():
            for ref in references(template):
                problem = check_reference(ref, defined)
                if problem:
                    raise ValueError(f"{key}: {problem}")
                if ref.startswith("env:") and key in self.PATH_KEYS_WITHOUT_SECRETS:
                    raise ValueError(f"{key}: a secret (${{{ref}}}) cannot be part of a path")
        return self

    def templates(self) -> list[tuple[str, str]]:
        out = [(f"vars.{k}", v) for k, v in self.vars.items()]
        v = self.vercel
        out += [("vercel.token", v.token), ("lock.path", self.lock.path)]
        if self.lock.url:
            out.append(("lock.url", self.lock.url))
        if v.deploy_command:
            out.append(("vercel.deploy_command", v.deploy_command))
        out.append(("state_dir", self.state_dir))
        if v.protection_bypass:
            out.append(("vercel.protection_bypass", v.protection_bypass))
        if self.migrate:
            out += [
                ("migrate.command", self.migrate.command),
                ("migrate.database_url", self.migrate.database_url),
            ]
        for name in ("pre_switch", "post_switch"):
            fields: dict[str, Any] = getattr(getattr(self.gates, name), "expect_json", None) or {}
            out += [
                (f"gates.{name}.expect_json.{k}", val)
                for k, val in fields.items()
                if isinstance(val, str)
            ]
        return out

    def summary(self) -> str:
        return f"vercel project {self.vercel.project}"

    # the one host: this machine (the lock, the operation record, the migrate step)
    @property
    def hosts(self) -> list[Host]:
        return [self.LOCAL]

    @property
    def app_hosts(self) -> list[Host]:
        return [self.LOCAL]

    @property
    def router_host(self) -> Host:
        return self.LOCAL

    @property
    def migrate_host(self) -> Host:
        return self.LOCAL

    def host(self, name: str) -> Host:
        return self.LOCAL
