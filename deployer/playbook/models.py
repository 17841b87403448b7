"""The playbook model: what `deployer schema` prints and `deployer docs` explains.

Every field has a description (the reference in docs/ and ``deployer docs`` come from
here) and unknown keys are rejected. Durations are written ``500ms``, ``30s``, ``2m``, ``1h``.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from deployer.playbook.fields import (
    MAX_DURATION,
    NGINX_NAME,
    AppAddress,
    Duration,
    Path_,
    SshAddress,
    StatusCode,
    Strict,
    parse_duration,
)
from deployer.playbook.fleet_model import Fleet
from deployer.playbook.gates_model import Gates, PostSwitchGate, PreSwitchGate
from deployer.playbook.migrate_model import Acknowledge, Migrate, Prove
from deployer.playbook.source_model import Inventory
from deployer.playbook.strategy_model import Strategy
from deployer.playbook.variables import BUILTINS, check_reference, references

__all__ = [
    "MAX_DURATION",
    "Acknowledge",
    "Duration",
    "Gates",
    "Inventory",
    "Migrate",
    "Path_",
    "PostSwitchGate",
    "PreSwitchGate",
    "Prove",
    "StatusCode",
    "Strict",
    "parse_duration",
]


class Host(Strict):
    name: str = Field(description="Name used in output, in `router.host` and in `${host}`.")
    address: SshAddress = Field("127.0.0.1", description="Address deployer connects to over SSH.")
    port: int = Field(22, ge=1, le=65535, description="SSH port.")
    user: str = Field("root", description="SSH user.")
    key: str | None = Field(
        None, description="Private key file (relative to the playbook). Default: none."
    )
    known_hosts: str | None = Field(
        None,
        description="known_hosts file (relative to the playbook) checked strictly. "
        "Default: ~/.ssh/known_hosts.",
    )
    transport: Literal["ssh", "local"] = Field(
        "ssh", description="`ssh` (fabric) or `local` (run commands on this machine)."
    )
    runs_app: bool = Field(
        True, description="Whether the app runs here (false for a host that only routes)."
    )
    app_address: AppAddress | None = Field(
        None,
        description="Address at which gates and the router reach the app on this host. "
        "Default: `address`.",
    )

    @property
    def reach(self) -> str:
        return self.app_address or self.address


class Color(Strict):
    port: int = Field(ge=1, le=65535, description="Port this color's app listens on.")


class Colors(Strict):
    blue: Color = Field(description="The blue color.")
    green: Color = Field(description="The green color.")

    def port(self, color: str) -> int:
        return int(getattr(self, color).port)


class Upload(Strict):
    src: str = Field(
        description="Local file or directory (relative to the playbook). It may name the "
        "version (`builds/${version}`): then a rollback to a version whose directory is gone "
        "from a host ships it from there; no other `${...}` is allowed."
    )

    @model_validator(mode="after")
    def _src_template(self) -> Upload:
        if "${" in self.src.replace("${version}", ""):
            raise ValueError("upload.src: only ${version} may be used here")
        return self

    dest: Path_ = Field(description="Remote destination directory (a template).")


class ShipStep(Strict):
    name: str | None = Field(None, description="Label shown in output. Default: the action.")
    upload: Upload | None = Field(None, description="Copy a file or directory to the host.")
    run: str | None = Field(None, description="Shell command to run on the host (a template).")

    @model_validator(mode="after")
    def _one_action(self) -> ShipStep:
        if (self.upload is None) == (self.run is None):
            raise ValueError("a ship step has exactly one of `upload` or `run`")
        return self

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        return "upload" if self.upload else "run"


class Service(Strict):
    start: str = Field(description="Start the app for `${color}` on `${port}` (returns at once).")
    stop: str = Field(description="Stop the app of `${color}`; succeeds if it is not running.")
    status: str = Field(description="Exits 0 when the app of `${color}` is running.")


class NginxRouter(Strict):
    kind: Literal["nginx"] = Field("nginx", description="The router kind.")
    host: str | None = Field(
        None, description="Host (by name) where nginx runs. Default: the first host."
    )
    hosts: list[str] | None = Field(
        None,
        min_length=1,
        description="Several routers (a pair of load balancers, or one nginx per host): the "
        "hosts where nginx runs, each with the settings below (`${host}` is the router's). "
        "Every router's new upstream is tested before any is reloaded; the switch-back and "
        "the dead-man watchdog run on each. The first holds the lock and the operation record.",
    )
    upstream_file: Path_ = Field(description="File included by nginx's config; deployer owns it.")
    upstream_name: str | None = Field(
        None,
        pattern=NGINX_NAME.pattern,
        description="Upstream block name (letters, digits, . - _). Default: the app.",
    )
    test: str = Field("nginx -t", description="Command that tests nginx's configuration.")
    reload: str = Field("nginx -s reload", description="Command that reloads nginx gracefully.")
    pid_file: Path_ = Field("/run/nginx.pid", description="nginx master's pid file.")
    url: str = Field(
        pattern=r"^https?://[^\s/?#]+(?:/[^\s]*)?$",
        description="Public URL through the router (http:// or https://), for post-switch gates.",
    )
    drain_timeout: Duration = Field(
        30.0,
        description="How long to wait for nginx's old workers to exit after a reload before "
        "the old color may be stopped (set nginx's worker_shutdown_timeout below it).",
    )
    keepalive: int = Field(16, ge=0, description="`keepalive` connections in the upstream.")
    max_fails: int = Field(
        1,
        ge=0,
        le=100,
        description="With several app hosts: a server whose connections fail this many times "
        "within `fail_timeout` is taken out of rotation for `fail_timeout` (nginx's passive "
        "health, shared by all workers through a `zone`), so users stop waiting on a dead "
        "host after its first failure. 0: never. Canary steps always use 0 (their failures "
        "are for analysis to see).",
    )
    fail_timeout: Duration = Field(
        10.0,
        gt=0,
        le=3600,
        description="The window for `max_fails`, and how long a failed server stays out "
        "before nginx tries it again.",
    )
    access_log: Path_ | None = Field(
        None,
        description="nginx's access log on the router host, written in the `deployer` "
        "log_format (`deployer docs strategy`); needed by `strategy: canary`.",
    )
    dead_man_margin: Duration = Field(
        30.0,
        description="Before the switch a watchdog is started on the router host that puts "
        "the previous upstream back unless the release calls it off once its gate passed: "
        "at once when deployer's SSH session to the router closes (deployer killed, its "
        "machine gone), after `dead_man_grace` without a renewal, and at the latest after "
        "the post-switch window + one probe timeout + this margin. 0 disables it.",
    )
    dead_man_grace: Duration = Field(
        5.0,
        ge=0.5,
        le=600,
        description="The running deployer renews the router's dead-man watchdog 5 times "
        "per grace (at most every second); when no renewal arrived for this long (a stalled "
        "network or runner), the watchdog puts the previous upstream back, and deployer "
        "reports the release rolled back (exit 4) at its next step.",
    )


class RollbackPolicy(Strict):
    keep_warm: Duration = Field(
        60.0,
        description="How long the old color keeps running after a successful switch: a timer "
        "on each host stops it then, so `deployer rollback` within the window only switches.",
    )


class Lock(Strict):
    path: Path_ = Field(
        "${state_dir}/${environment}.lock",
        description="Lock directory on the router host (created atomically with mkdir). Its "
        "parent must not be writable by other users (so not /tmp): anyone who can create the "
        "path first blocks every release.",
    )
    ttl: Duration = Field(
        900.0,
        gt=0,
        description="A lock whose holder sent no heartbeat for this long is stale and may be "
        "taken over (never while its process runs on the same machine). At least the "
        "playbook's worst-case gate time.",
    )
    url: str | None = Field(
        None,
        description="A PostgreSQL database (`postgresql://...`, or `${env:STATE_URL}`) that "
        "holds the lock (a session advisory lock: freed the moment its holder's session ends) "
        "and the unfinished operation's record (a row), so any CI runner sees and recovers "
        "it. Also `--state-url` / DEPLOYER_STATE_URL. Default: beside `path` on the router "
        "host (for Vercel: this machine).",
    )


class Drill(Strict):
    restore_bound: Duration = Field(
        10.0,
        gt=0,
        description="`deployer drill` passes only if traffic is back on the old color within "
        "this long after the rollback verdict (`--bound` overrides it).",
    )
    broken_vars: dict[str, str] = Field(
        default_factory=dict,
        description="Var overrides that make a build whose post-switch gate fails, for "
        '`deployer drill --broken` (e.g. `{unhealthy_after: "0"}`); they apply to the '
        "drill's release only, never to the color it restores.",
    )
    watch_rate: float = Field(
        10.0,
        gt=0,
        le=100,
        description="Requests per second a drill sends through the router from its start to "
        "its end, to report what users saw (bounded by the lock's ttl).",
    )


class Playbook(Strict):
    target: Literal["nginx"] = Field(
        "nginx",
        description="Where traffic is switched: `nginx` (app hosts over SSH behind nginx, "
        "this model) or `vercel` (see `deployer docs vercel`).",
    )
    app: str = Field(
        pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$", description="The app's name (lowercase, - and _)."
    )
    environment: str = Field(
        "production", pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$", description="Environment name."
    )
    hosts: list[Host] = Field(
        min_length=1,
        description="Hosts that run the app (or `inventory:`, which fills this list).",
    )
    inventory: Inventory | None = Field(
        None,
        description="Take `hosts` from an Ansible inventory's group: `ansible_host`, "
        "`ansible_port`, `ansible_user`, `ansible_ssh_private_key_file` become address, port, "
        "user and key.",
    )
    colors: Colors = Field(description="The two colors and their ports.")
    vars: dict[str, str] = Field(
        default_factory=dict,
        description="Your variables, used as `${name}`; `--var NAME=VALUE` overrides them.",
    )
    ship: list[ShipStep] = Field(
        default_factory=list, description="Steps that put a version in place for a color."
    )
    service: Service = Field(description="Commands that start, stop and check a color's app.")
    router: NginxRouter = Field(description="The router that sends traffic to the live color.")
    gates: Gates = Field(default_factory=Gates, description="Health gates.")
    strategy: Strategy = Field(
        default_factory=Strategy, description="Blue-green (default) or an analysed canary."
    )
    fleet: Fleet = Field(
        default_factory=Fleet,
        description="Many hosts: parallel prepare, batches, failures allowed.",
    )
    rollback: RollbackPolicy = Field(default_factory=RollbackPolicy, description="Rollback.")
    lock: Lock = Field(default_factory=Lock, description="The deploy lock.")
    drill: Drill = Field(default_factory=Drill, description="`deployer drill`.")
    migrate: Migrate | None = Field(
        None, description="Alembic migrations, lint-gated, run before the new color starts."
    )
    state_dir: Path_ = Field(
        "/var/lib/deployer/${app}",
        description="Directory on each host where deployer records each color's version.",
    )
    keep_releases: int = Field(
        5,
        ge=2,
        le=1000,
        description="Shipped versions kept on each host under an upload directory ending in "
        "`/${version}` (older ones are removed after a release; never the live or warm one).",
    )
    journal_dir: str = Field(
        ".deployer", description="Local directory (relative to the playbook) for the journal."
    )

    @model_validator(mode="after")
    def _cross_checks(self) -> Playbook:
        prom = self.strategy.analysis.prometheus
        counted = prom is not None and prom.judge is not None
        if self.strategy.kind == "canary" and not self.router.access_log and not counted:
            raise ValueError(
                "strategy: canary judges each step on the router's access log: set "
                "router.access_log (in the `deployer` log_format), or give "
                "strategy.analysis.prometheus.judge"
            )
        names = [h.name for h in self.hosts]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"hosts: duplicate host name {dupes[0]!r}")
        if self.migrate and self.migrate.host is not None and self.migrate.host not in names:
            raise ValueError(f"migrate.host: no host named {self.migrate.host!r} in hosts")
        if self.router.host is not None and self.router.host not in names:
            raise ValueError(f"router.host: no host named {self.router.host!r} in hosts")
        if self.router.hosts is not None:
            if self.router.host is not None:
                raise ValueError("router: set `host` (one router) or `hosts` (several), not both")
            for name in self.router.hosts:
                if name not in names:
                    raise ValueError(f"router.hosts: no host named {name!r} in hosts")
            twice = sorted({n for n in self.router.hosts if self.router.hosts.count(n) > 1})
            if twice:
                raise ValueError(f"router.hosts: {twice[0]!r} is listed twice")
        if not self.app_hosts:
            raise ValueError("hosts: no host runs the app (all have runs_app: false)")
        if self.fleet.batch_size is not None and self.strategy.kind == "canary":
            raise ValueError(
                "fleet.batch_size: a canary already moves traffic in steps; use one or the other"
            )
        if self.colors.blue.port == self.colors.green.port:
            raise ValueError("colors: blue and green need different ports")
        defined = set(BUILTINS) | set(self.vars)
        clash = sorted(set(self.vars) & set(BUILTINS))
        if clash:
            raise ValueError(f"vars.{clash[0]}: '{clash[0]}' is a built-in variable")
        for key, template in self.templates():
            for ref in references(template):
                problem = check_reference(ref, defined)
                if problem:
                    raise ValueError(f"{key}: {problem}")
                is_path = key in self.PATH_KEYS_WITHOUT_SECRETS or key.endswith(".upload.dest")
                if ref.startswith("env:") and is_path:
                    raise ValueError(
                        f"{key}: a secret (${{{ref}}}) cannot be part of a path: paths show in "
                        "file names, output and the hosts' process lists"
                    )
        self._check_var_order()
        unknown = sorted(set(self.drill.broken_vars) - set(self.vars))
        if unknown:
            raise ValueError(
                f"drill.broken_vars.{unknown[0]}: no such var in vars "
                f"(vars: {', '.join(sorted(self.vars)) or 'none'})"
            )
        worst = self.gates.worst_case_seconds()
        if self.lock.ttl < worst:
            raise ValueError(
                f"lock.ttl: {self.lock.ttl:g}s is shorter than the gates' worst case "
                f"({worst:g}s: pre-switch budget and post-switch window with their timeouts)"
            )
        return self

    #: keys whose value becomes a path on a host or here: no ``${env:...}`` in them
    PATH_KEYS_WITHOUT_SECRETS: ClassVar[frozenset[str]] = frozenset(
        {"state_dir", "lock.path", "router.upstream_file", "router.pid_file"}
    )

    def _check_var_order(self) -> None:
        """A var may use the built-ins known before vars and the vars above it (vars are
        rendered in order; ``state_dir`` is rendered after them)."""
        known = set(BUILTINS) - {"state_dir"}
        for name, template in self.vars.items():
            for ref in references(template):
                if ref.startswith("env:") or ref in known:
                    continue
                later = ref in self.vars or ref == "state_dir"
                why = "is defined after it" if later else "is not defined"
                raise ValueError(
                    f"vars.{name}: '${{{ref}}}' {why}; a var may use the built-ins "
                    "(not state_dir) and the vars above it"
                )
            known.add(name)

    def templates(self) -> list[tuple[str, str]]:
        """(key path, template) for every field that takes ``${...}`` references."""
        out = [(f"vars.{k}", v) for k, v in self.vars.items()]
        out += [(f"drill.broken_vars.{k}", v) for k, v in self.drill.broken_vars.items()]
        if self.lock.url:
            out.append(("lock.url", self.lock.url))
        for i, step in enumerate(self.ship):
            if step.run is not None:
                out.append((f"ship.{i}.run", step.run))
            if step.upload is not None:
                out.append((f"ship.{i}.upload.dest", step.upload.dest))
        for name in ("start", "stop", "status"):
            out.append((f"service.{name}", getattr(self.service, name)))
        r = self.router
        out += [("router.upstream_file", r.upstream_file), ("router.test", r.test)]
        out += [("router.reload", r.reload), ("router.pid_file", r.pid_file)]
        out += [("lock.path", self.lock.path), ("state_dir", self.state_dir)]
        if self.migrate:
            out += [
                ("migrate.command", self.migrate.command),
                ("migrate.database_url", self.migrate.database_url),
            ]
        for name in ("pre_switch", "post_switch"):
            fields = getattr(getattr(self.gates, name), "expect_json", None) or {}
            out += [
                (f"gates.{name}.expect_json.{k}", v)
                for k, v in fields.items()
                if isinstance(v, str)
            ]
        return out

    def summary(self) -> str:
        """What `deployer validate` says it found."""
        return f"{len(self.hosts)} host(s)"

    @property
    def router_host(self) -> Host:
        """The (first) router's host: it holds the lock and the operation record."""
        return self.router_hosts[0]

    @property
    def router_hosts(self) -> list[Host]:
        names = self.router.hosts or [self.router.host or self.hosts[0].name]
        return [self.host(n) for n in names]

    @property
    def migrate_host(self) -> Host:
        name = (self.migrate.host if self.migrate else None) or self.app_hosts[0].name
        return self.host(name)

    @property
    def app_hosts(self) -> list[Host]:
        return [h for h in self.hosts if h.runs_app]

    def host(self, name: str) -> Host:
        return next(h for h in self.hosts if h.name == name)
