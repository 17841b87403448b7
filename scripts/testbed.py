#!/usr/bin/env python3
"""The local test bed: a real sshd, nginx and PostgreSQL on loopback, without systemd.

    python3 scripts/testbed.py up   [--dir D] [--only ssh,nginx,pg]
    python3 scripts/testbed.py down [--dir D]
    python3 scripts/testbed.py env  [--dir D]      # prints the ports and paths as KEY=VALUE

Everything lives in one directory (default /tmp/deployer-testbed): generated SSH host and
client keys, a known_hosts file, sshd/nginx/PostgreSQL configs, pid files and logs. `up` is
idempotent (a running service is left alone); `down` stops each service by its pid file.
Needs root (sshd and the postgres user); install the packages with scripts/install.sh.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_DIR = "/tmp/deployer-testbed"
REPO = Path(__file__).resolve().parent.parent
PLACEHOLDER = "upstream demo {\n    server 127.0.0.1:9 down;\n}\n"


def write_playbook(path: Path, doc: dict[str, Any]) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def sshd_config(port: int, listen: str, host_key: Path, pidfile: Path, authorized: Path) -> str:
    """A private sshd: keys only (root by key), its own host key, pid file and keys file."""
    return "\n".join(
        [
            f"Port {port}",
            f"ListenAddress {listen}",
            f"HostKey {host_key}",
            f"PidFile {pidfile}",
            f"AuthorizedKeysFile {authorized}",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PubkeyAuthentication yes",
            "PermitRootLogin prohibit-password",
            "UsePAM no",
            "StrictModes no",
            "MaxStartups 50:30:100",
            "MaxSessions 50",
            "Subsystem sftp internal-sftp",
            "LogLevel ERROR",
            # root's rc files on this machine run `pyenv init`, whose rehash waits up to 60 s
            # for a lock a killed shell can leave behind: never that long on a bed
            "SetEnv PYENV_REHASH_TIMEOUT=3",
            "",
        ]
    )


def clear_stale_shell_locks(older_than: float = 120.0) -> None:
    """Remove a pyenv rehash lock a killed shell left behind (a test that kills a host's
    processes can catch a login shell mid-rehash): every later SSH session on this machine
    would wait for it. Only an old one: a live rehash holds it for well under a second."""
    lock = Path.home() / ".pyenv" / "shims" / ".pyenv-shim"
    try:
        if time.time() - lock.stat().st_mtime > older_than:
            lock.unlink()
    except OSError:
        pass


def _user_exists(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


@dataclass(frozen=True)
class Ports:
    ssh: int = 2222
    http: int = 8080
    pg: int = 54329
    blue: int = 8001
    green: int = 8002
    prom: int = 9390


def env_ports() -> Ports:
    def get(name: str, default: int) -> int:
        return int(os.environ.get(f"DEPLOYER_TESTBED_{name.upper()}_PORT", default))

    d = Ports()
    return Ports(
        get("ssh", d.ssh),
        get("http", d.http),
        get("pg", d.pg),
        get("blue", d.blue),
        get("green", d.green),
    )


class Testbed:
    def __init__(self, root: Path, ports: Ports):
        self.root, self.ports = root, ports
        self.ssh_dir, self.nginx_dir, self.pg_dir = root / "ssh", root / "nginx", root / "pg"

    # ---------- helpers ----------
    @staticmethod
    def _alive(pidfile: Path) -> int | None:
        try:
            pid = int(pidfile.read_text().split()[0])
            os.kill(pid, 0)
            return pid
        except (OSError, ValueError, IndexError):
            return None

    @staticmethod
    def _wait_port(port: int, seconds: float = 10.0) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with socket.socket() as s:
                s.settimeout(0.2)
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {seconds}s")

    @staticmethod
    def _stop(pidfile: Path, sig: int = signal.SIGTERM, seconds: float = 10.0) -> None:
        pid = Testbed._alive(pidfile)
        if pid is None:
            return
        try:  # a pid file outlives its process: never signal a process that reused the pid
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            return
        if str(pidfile.parent.parent).encode() not in cmdline:
            return
        os.kill(pid, sig)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except OSError:
                return
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)

    # ---------- paths the tests and the demo use ----------
    @property
    def client_key(self) -> Path:
        return self.ssh_dir / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.ssh_dir / "known_hosts"

    @property
    def upstream_file(self) -> Path:
        return self.nginx_dir / "upstream.conf"

    @property
    def nginx_conf(self) -> Path:
        return self.nginx_dir / "nginx.conf"

    @property
    def nginx_pid(self) -> Path:
        return self.nginx_dir / "nginx.pid"

    def env(self) -> dict[str, str]:
        p = self.ports
        return {
            "TESTBED_DIR": str(self.root),
            "SSH_PORT": str(p.ssh),
            "HTTP_PORT": str(p.http),
            "PG_PORT": str(p.pg),
            "BLUE_PORT": str(p.blue),
            "GREEN_PORT": str(p.green),
            "CLIENT_KEY": str(self.client_key),
            "KNOWN_HOSTS": str(self.known_hosts),
            "UPSTREAM_FILE": str(self.upstream_file),
            "NGINX_CONF": str(self.nginx_conf),
            "NGINX_PID": str(self.nginx_pid),
            "NGINX_PREFIX": str(self.nginx_dir),
            "PG_URL": f"postgresql://postgres@127.0.0.1:{p.pg}/postgres",
        }

    # ---------- sshd ----------
    def up_ssh(self) -> None:
        d = self.ssh_dir
        d.mkdir(parents=True, exist_ok=True)
        host_key = d / "ssh_host_ed25519_key"
        if not host_key.exists():
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)], check=True
            )
        if not self.client_key.exists():
            subprocess.run(
                [
                    "ssh-keygen",
                    "-q",
                    "-t",
                    "ed25519",
                    "-N",
                    "",
                    "-C",
                    "deployer-test",
                    "-f",
                    str(self.client_key),
                ],
                check=True,
            )
        (d / "authorized_keys").write_text(Path(f"{self.client_key}.pub").read_text())
        os.chmod(d / "authorized_keys", 0o600)
        pub = Path(f"{host_key}.pub").read_text().split()
        self.known_hosts.write_text(f"[127.0.0.1]:{self.ports.ssh} {pub[0]} {pub[1]}\n")
        pidfile = d / "sshd.pid"
        if self._alive(pidfile):
            return
        config = d / "sshd_config"
        config.write_text(
            sshd_config(self.ports.ssh, "127.0.0.1", host_key, pidfile, d / "authorized_keys")
        )
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)
        subprocess.run(["/usr/sbin/sshd", "-f", str(config), "-E", str(d / "sshd.log")], check=True)
        self._wait_port(self.ports.ssh)

    # ---------- nginx ----------
    def up_nginx(self, d: Path | None = None, port: int | None = None) -> None:
        """The bed's nginx; with ``d`` and ``port``, another one (a second router) with its
        own directory, pid file, upstream file and port (stop it with :meth:`stop_nginx`)."""
        d = d or self.nginx_dir
        port = port or self.ports.http
        upstream, conf, pid = d / "upstream.conf", d / "nginx.conf", d / "nginx.pid"
        for sub in ("tmp/body", "tmp/proxy", "tmp/fastcgi", "tmp/uwsgi", "tmp/scgi", "logs"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        if not upstream.exists():
            upstream.write_text(PLACEHOLDER)
        conf.write_text(f"""
worker_processes 2;
pid {pid};
error_log {d}/logs/error.log warn;
worker_shutdown_timeout 10s;
events {{ worker_connections 4096; }}
http {{
    log_format deployer '$time_iso8601 $upstream_addr $status $request_time '
                        '$upstream_response_time "$request_method $uri"';
    access_log {d}/logs/access.log deployer;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    keepalive_requests 100000;
    include {upstream};
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://demo;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_next_upstream error timeout;
            proxy_connect_timeout 2s;  # a host cut off is passed over, not waited on for 60 s
        }}
    }}
}}
""")
        if self._alive(pid):
            return
        subprocess.run(
            ["nginx", "-e", str(d / "logs" / "error.log"), "-p", str(d), "-c", str(conf)],
            check=True,
        )
        self._wait_port(port)

    def stop_nginx(self, d: Path) -> None:
        self._stop(d / "nginx.pid", signal.SIGQUIT)

    def nginx_cmd(self, *args: str, d: Path | None = None) -> str:
        """The command line the playbooks use for `nginx -t` and reload on this bed (``d``:
        another nginx started by :meth:`up_nginx`)."""
        d = d or self.nginx_dir
        log, conf = d / "logs" / "error.log", d / "nginx.conf"
        return " ".join(["nginx", "-e", str(log), "-p", str(d), "-c", str(conf), *args])

    # ---------- the example app's playbook on this bed ----------
    def playbook(self, root: Path, journal: Path, **overrides: Any) -> dict[str, Any]:
        """The demo playbook pointed at this bed, with short windows (tests and bench)."""
        p = self.ports
        doc: dict[str, Any] = {
            "app": "demo",
            "environment": "test",
            "hosts": [
                {
                    "name": "bed",
                    "address": "127.0.0.1",
                    "port": p.ssh,
                    "user": "root",
                    "key": str(self.client_key),
                    "known_hosts": str(self.known_hosts),
                }
            ],
            "colors": {"blue": {"port": p.blue}, "green": {"port": p.green}},
            "vars": {"root": str(root), "unhealthy_after": "-1"},
            "ship": [
                {
                    "name": "upload app",
                    "upload": {
                        "src": str(REPO / "examples/app"),
                        "dest": "${root}/releases/${version}",
                    },
                },
                {
                    "name": "link color",
                    "run": "ln -sfn ${root}/releases/${version} ${root}/${color}",
                },
            ],
            "service": {
                "start": "${root}/${color}/appctl.sh start ${root} ${color} ${port} ${version} "
                "${unhealthy_after}",
                "stop": "if [ -x ${root}/${color}/appctl.sh ]; then "
                "${root}/${color}/appctl.sh stop ${root} ${color}; fi",
                "status": "${root}/${color}/appctl.sh status ${root} ${color}",
            },
            "router": {
                "upstream_file": str(self.upstream_file),
                "upstream_name": "demo",
                "test": self.nginx_cmd("-t", "-q"),
                "reload": self.nginx_cmd("-s", "reload"),
                "pid_file": str(self.nginx_pid),
                "url": f"http://127.0.0.1:{p.http}",
                "drain_timeout": "15s",
                "access_log": str(self.nginx_dir / "logs" / "access.log"),
            },
            "gates": {
                "pre_switch": {
                    "path": "/health",
                    "expect_json": {"version": "${version}", "color": "${color}"},
                    "interval": "100ms",
                    "successes": 3,
                    "budget": "5s",
                },
                "post_switch": {
                    "path": "/health",
                    "window": "1s",
                    "rate": 20,
                    "max_error_rate": 0.1,
                    "max_p95": "1s",
                },
            },
            "rollback": {"keep_warm": "500ms"},
            "state_dir": "${root}/state",
            "journal_dir": str(journal),
            "lock": {"path": str(journal.parent / "deploy.lock")},  # one per test: no leaks
        }
        doc.update(overrides)
        return doc

    @staticmethod
    def stop_app(root: Path) -> None:
        """Stop both colors of the example app under ``root`` and call off their stop timers."""
        for color in ("blue", "green"):
            timer = root / "state" / f"{color}.stop-timer"
            if timer.exists():
                subprocess.run(["sh", "-c", f"kill -- -$(cat {timer}) 2>/dev/null"], check=False)
            ctl = root / color / "appctl.sh"
            if ctl.exists():
                subprocess.run([str(ctl), "stop", str(root), color], check=False)

    def reset_router(self) -> None:
        """Point the router at nothing (a placeholder upstream), as on a new machine."""
        self.upstream_file.write_text(PLACEHOLDER)
        self.reload_router()

    def reload_router(self) -> None:
        subprocess.run(self.nginx_cmd("-s", "reload").split(), check=True)

    @staticmethod
    def stop_app_color(root: Path, color: str) -> None:
        """Stop one color of the example app under ``root`` (a crashed process)."""
        ctl = root / color / "appctl.sh"
        if ctl.exists():
            subprocess.run([str(ctl), "stop", str(root), color], check=False)

    # ---------- PostgreSQL ----------
    def _pg_bin(self) -> Path:
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
        if not found:
            raise RuntimeError("PostgreSQL is not installed (run scripts/install.sh)")
        return found[-1].parent

    def up_pg(self) -> None:
        bin_dir = self._pg_bin()
        data, sock = self.pg_dir / "data", self.pg_dir / "sock"
        self.pg_dir.mkdir(parents=True, exist_ok=True)
        sock.mkdir(exist_ok=True)
        shutil.chown(self.pg_dir, "postgres", "postgres")
        shutil.chown(sock, "postgres", "postgres")
        self.root.chmod(0o755)
        as_pg = ["runuser", "-u", "postgres", "--"]
        if not (data / "PG_VERSION").exists():
            subprocess.run(
                [
                    *as_pg,
                    str(bin_dir / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--no-sync",
                ],
                check=True,
                stdout=subprocess.DEVNULL,
            )
        if self._alive(data / "postmaster.pid"):
            return
        opts = (
            f"-p {self.ports.pg} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c full_page_writes=off -c synchronous_commit=off"
        )
        subprocess.run(
            [
                *as_pg,
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data),
                "-o",
                opts,
                "-l",
                str(self.pg_dir / "postgres.log"),
                "-w",
                "-t",
                "30",
                "start",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )

    # ---------- all ----------
    def up(self, only: set[str]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if "ssh" in only:
            self.up_ssh()
        if "nginx" in only:
            self.up_nginx()
        if "pg" in only:
            self.up_pg()
        if "prometheus" in only:
            self.up_prometheus()

    # ---------- Prometheus ----------
    @property
    def prom_dir(self) -> Path:
        return self.root / "prometheus"

    @property
    def prom_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.prom}"

    def up_prometheus(self) -> None:
        """Prometheus (the distribution's package) as its own process and user, scraping both
        colors of the example app every second, on a private loopback port."""
        binary = shutil.which("prometheus")
        if binary is None:
            raise RuntimeError("prometheus is not installed (scripts/install.sh installs it)")
        d = self.prom_dir
        (d / "data").mkdir(parents=True, exist_ok=True)
        p = self.ports
        (d / "prometheus.yml").write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n"
            "  - job_name: app\n"
            "    static_configs:\n"
            f"      - targets: ['127.0.0.1:{p.blue}', '127.0.0.1:{p.green}']\n"
        )
        user = "prometheus" if _user_exists("prometheus") else "nobody"
        shutil.chown(d / "data", user)
        self.root.chmod(0o755)
        pidfile = d / "prometheus.pid"
        if self._alive(pidfile):
            return
        log = open(d / "prometheus.log", "ab")  # noqa: SIM115 (the child keeps it)
        proc = subprocess.Popen(
            ["runuser", "-u", user, "--", binary, f"--config.file={d / 'prometheus.yml'}",
             f"--storage.tsdb.path={d / 'data'}", f"--web.listen-address=127.0.0.1:{p.prom}",
             "--storage.tsdb.retention.time=1h"],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        pidfile.write_text(f"{proc.pid}\n")
        self._wait_port(p.prom, 30.0)

    def down(self) -> None:
        self._stop(self.prom_dir / "prometheus.pid")
        self._stop(self.nginx_pid, signal.SIGQUIT)
        self._stop(self.ssh_dir / "sshd.pid")
        self._stop(self.pg_dir / "data" / "postmaster.pid", signal.SIGINT)


def main() -> int:
    parser = argparse.ArgumentParser(description="deployer's local test bed")
    parser.add_argument("action", choices=["up", "down", "env"])
    parser.add_argument("--dir", default=os.environ.get("DEPLOYER_TESTBED_DIR", DEFAULT_DIR))
    parser.add_argument("--only", default="ssh,nginx,pg")
    args = parser.parse_args()
    bed = Testbed(Path(args.dir), env_ports())
    if args.action == "up":
        if os.geteuid() != 0:
            print("testbed: run as root (sshd and the postgres user need it)", file=sys.stderr)
            return 2
        started = time.monotonic()
        bed.up(set(args.only.split(",")))
        print(f"testbed up in {time.monotonic() - started:.1f}s at {bed.root}", file=sys.stderr)
    elif args.action == "down":
        bed.down()
    if args.action == "env":
        for k, v in bed.env().items():
            print(f"{k}={v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
