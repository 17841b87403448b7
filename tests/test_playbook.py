"""Playbook loading and validation: each bad playbook gets its file, line, key and reason."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from deployer.errors import PlaybookError
from deployer.playbook import load_playbook, parse_playbook

ROOT = Path(__file__).resolve().parent.parent

GOOD = """\
app: shop
hosts:
  - name: web1
    address: 10.0.0.5
colors:
  blue: {port: 8001}
  green: {port: 8002}
service:
  start: run ${color} ${port}
  stop: stop ${color}
  status: check ${color}
router:
  upstream_file: /etc/nginx/upstream.conf
  url: http://shop.example
"""


def test_minimal_playbook_loads_with_documented_defaults() -> None:
    pb = parse_playbook(GOOD, "p.yml")
    assert pb.app == "shop" and pb.router_host.name == "web1"
    assert pb.gates.post_switch.window == 30.0 and pb.rollback.keep_warm == 60.0
    assert pb.lock.ttl == 900.0


@pytest.mark.parametrize(
    "playbook", sorted((ROOT / "playbooks").glob("*.yml")), ids=lambda p: p.name
)
def test_shipped_playbooks_validate(playbook: Path) -> None:
    load_playbook(playbook)


def _patch(text: str, patch: str) -> str:
    doc = yaml.safe_load(text)
    for line in patch.splitlines():
        path, _, value = line.partition("=")
        node = doc
        keys = path.split(".")
        for k in keys[:-1]:
            node = node[int(k)] if k.isdigit() else node.setdefault(k, {})
        if value == "<del>":
            del node[keys[-1]]
        else:
            node[int(keys[-1]) if keys[-1].isdigit() else keys[-1]] = yaml.safe_load(value)
    return yaml.safe_dump(doc, sort_keys=False)


BAD = [
    # (patch, expected line, expected message)
    (
        "gates.post_switch.window=30 seconds",
        19,
        "gates.post_switch.window: must be a duration like 30s",
    ),
    (
        "gates.post_switch.windwo=30s",
        19,
        "gates.post_switch.windwo: unknown key; did you mean 'window'?",
    ),
    ("colors.green.port=8001", 5, "colors: blue and green need different ports"),
    ("router.host=web9", 17, "router.host: no host named 'web9' in hosts"),
    ("router.hosts=[web1, web9]", 17, "router.hosts: no host named 'web9' in hosts"),
    ("router.hosts=[web1, web1]", 17, "router.hosts: 'web1' is listed twice"),
    ("router.hosts=[]", 17, "router.hosts: List should have at least 1 item"),
    ("hosts.0.port=70000", 5, "hosts.0.port: Input should be less than or equal to 65535"),
    ("app=Shop!", 1, "app: String should match pattern"),
    ("service.stop=<del>", 10, "service.stop: required key is missing"),
    (
        "service.start=run ${colour}",
        11,
        "service.start: unknown variable '${colour}'; did you mean '${color}'?",
    ),
    (
        "ship=[{run: a, upload: {src: x, dest: y}}]",
        18,
        "ship.0: a ship step has exactly one of `upload` or `run`",
    ),
    ("hosts.0.transport=telnet", 5, "hosts.0.transport: Input should be 'ssh' or 'local'"),
    (
        "gates.pre_switch.successes=0",
        19,
        "gates.pre_switch.successes: Input should be greater than or equal to 1",
    ),
    ("hosts=[{name: a}, {name: a}]", 2, "hosts: duplicate host name 'a'"),
    ("vars={version: x}", 18, "vars.version: 'version' is a built-in variable"),
    ("rollback.keep_warm=-5s", 18, "rollback.keep_warm: must be a duration like 30s"),
    (
        "gates.post_switch.max_error_rate=2",
        19,
        "gates.post_switch.max_error_rate: Input should be less than or equal to 1",
    ),
]


@pytest.mark.parametrize("patch,line,message", BAD, ids=[b[0].split("=")[0] for b in BAD])
def test_bad_playbook_names_file_line_and_key(patch: str, line: int, message: str) -> None:
    text = _patch(GOOD, patch)
    with pytest.raises(PlaybookError) as err:
        parse_playbook(text, "bad.yml")
    first = str(err.value).splitlines()[0]
    assert first.startswith("bad.yml:"), first
    assert message in first, first
    assert first.startswith(f"bad.yml:{line}: "), (first, text)


def test_invalid_yaml_points_at_the_line() -> None:
    with pytest.raises(PlaybookError) as err:
        parse_playbook("app: x\nhosts: [\n  - a\n", "broken.yml")
    assert str(err.value).startswith("broken.yml:")
    assert "invalid YAML" in str(err.value)


def test_duplicate_key_is_an_error() -> None:
    with pytest.raises(PlaybookError, match=r"dup.yml:2: app: duplicate key"):
        parse_playbook("app: a\napp: b\n", "dup.yml")


def test_not_a_mapping() -> None:
    with pytest.raises(PlaybookError, match="a playbook is a YAML mapping"):
        parse_playbook("- just\n- a list\n", "list.yml")


def test_several_problems_are_all_reported() -> None:
    text = _patch(GOOD, "gates.post_switch.window=soon\nhosts.0.port=0")
    with pytest.raises(PlaybookError) as err:
        parse_playbook(text, "two.yml")
    lines = str(err.value).splitlines()
    assert len(lines) == 2 and all(line.startswith("two.yml:") for line in lines)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deployer", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )


def test_cli_bad_playbook_exits_2_with_one_line_and_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(_patch(GOOD, "gates.post_switch.window=30 seconds"))
    proc = _cli("validate", "-p", str(bad))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert f"{bad}:" in proc.stderr and "must be a duration like 30s" in proc.stderr


def test_cli_missing_playbook_exits_2() -> None:
    proc = _cli("release", "-p", "/nonexistent/p.yml", "--version", "v1")
    assert proc.returncode == 2 and "no such playbook file" in proc.stderr


def test_cli_unknown_var_exits_2(tmp_path: Path) -> None:
    good = tmp_path / "good.yml"
    good.write_text(GOOD)
    proc = _cli("plan", "-p", str(good), "--version", "v1", "--live", "none", "--var", "x=1")
    assert proc.returncode == 2 and "no such var" in proc.stderr


def test_schema_is_json_schema_with_every_top_level_key() -> None:
    proc = _cli("schema")
    schema = json.loads(proc.stdout)
    nginx, vercel = (schema["$defs"][ref["$ref"].rsplit("/", 1)[1]] for ref in schema["anyOf"])
    assert {"app", "hosts", "colors", "router", "gates", "rollback", "lock"} <= set(
        nginx["properties"]
    )
    assert {"target", "vercel", "gates", "migrate"} <= set(vercel["properties"])
    assert nginx["additionalProperties"] is False and vercel["additionalProperties"] is False


def test_docs_explains_each_key_with_default() -> None:
    proc = _cli("docs", "gates.post_switch")
    assert proc.returncode == 0
    assert "gates.post_switch.window" in proc.stdout and "duration (default: 30s)" in proc.stdout
    assert _cli("docs", "nope").returncode == 2


def test_router_host_and_hosts_are_one_or_the_other() -> None:
    text = _patch(_patch(GOOD, "router.hosts=[web1]"), "router.host=web1")
    with pytest.raises(PlaybookError, match=r"router: set `host` \(one router\) or `hosts`"):
        parse_playbook(text, "both.yml")
    pb = parse_playbook(_patch(GOOD, "router.hosts=[web1]"), "one.yml")
    assert [h.name for h in pb.router_hosts] == ["web1"] and pb.router_host.name == "web1"
