"""Fuzzed playbooks through `validate` and `plan`: every one ends in exit 0 or 2, in time.

Each example starts from a real playbook (nginx, vercel, or one whose hosts come from an
Ansible inventory written beside it) and mutates it the way hostile or careless files do:
a value replaced by one of another type or shape (huge numbers, NaN, control characters,
lone surrogates, deep nesting, ``${...}`` references that loop or double, thousands of
characters), keys added or removed, then the YAML text itself cut or spliced. The CLI's
own entry point runs in this process (the test sees the exit code it would return) under
an alarm: a hang fails the example. An exit 1 (an unexpected error) fails it too.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deployer.cli.entry import main

ROOT = Path(__file__).resolve().parent.parent
NGINX = yaml.safe_load((ROOT / "playbooks" / "demo.yml").read_text())
VERCEL = yaml.safe_load((ROOT / "playbooks" / "vercel.yml").read_text())
INVENTORY_PB = {
    **{k: v for k, v in NGINX.items() if k != "hosts"},
    "inventory": {"path": "hosts.ini", "group": "web", "user": "root"},
}
INVENTORY = "[web]\nweb[1:3] ansible_port=22\n[web:vars]\nansible_user=root\n"

#: a single example must end well within this (the slowest good plan takes ~0.2 s)
ALARM_S = 10

NASTY_TEXT = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=20),
    st.sampled_from(
        [
            "",
            "${version}",
            "${env:NOPE}",
            "${nope}",
            "$${x}",
            "${",
            "}",
            "\ud800",
            "\x00",
            "\u202e",
            "a\nb",
            "-rf",
            "../../etc",
            "x" * 5000,
            "${" + "a" * 300 + "}",
            "${root}${root}${root}${root}",
            "10h",
            "-1s",
            "1e400",
            "999999999999999999999s",
            "0s",
            "nan",
            "inf",
            "http://[::1",
            "http://x:99999",
            "unix:/x",
        ]
    ),
)
SCALAR = st.one_of(
    NASTY_TEXT,
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
)
VALUE = st.recursive(
    SCALAR,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(NASTY_TEXT, inner, max_size=4)
    ),
    max_leaves=12,
)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path in ``doc`` (mappings and lists), the root excluded."""
    out: list[tuple[Any, ...]] = []
    items = (
        doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else []
    )
    for k, v in items:
        out.append((*prefix, k))
        out += _paths(v, (*prefix, k))
    return out


@st.composite
def playbooks(draw: st.DrawFn) -> tuple[str, str]:
    """(the playbook's YAML text, the inventory file's text)."""
    import copy

    base = copy.deepcopy(draw(st.sampled_from([NGINX, VERCEL, INVENTORY_PB])))
    inventory = INVENTORY
    for _ in range(draw(st.integers(1, 4))):
        paths = _paths(base)
        action = draw(st.sampled_from(["replace", "replace", "delete", "add", "vars", "inv"]))
        if action == "vars":  # values that reference each other (doubling, loops)
            names = [f"v{i}" for i in range(draw(st.integers(2, 30)))]
            base["vars"] = {
                n: (f"${{{names[i - 1]}}}${{{names[i - 1]}}}" if i else "x" * 40)
                for i, n in enumerate(names)
            }
            base.setdefault("ship", []).append({"name": "use", "run": f"echo ${{{names[-1]}}}"})
            continue
        if action == "inv":
            inventory = draw(
                st.sampled_from(
                    [
                        "[web]\nweb[0000:9999999]\n",
                        "[web]\nh1 ansible_port=abc\n",
                        "[web]\nh[1:9:0]\n",
                        "[web\n",
                        "[web:children]\nweb\n",
                        "web:\n  hosts: [a, b]\n",
                        "all:\n  children: &a {x: *a}\n",
                        "[web]\nh1 x=" + "[" * 400 + "\n",
                        "",
                    ]
                )
            ) + draw(st.text(max_size=30))
            continue
        if not paths:
            continue
        path = draw(st.sampled_from(paths))
        node: Any = base
        for k in path[:-1]:
            node = node[k]
        if action == "replace":
            node[path[-1]] = draw(VALUE)
        elif action == "delete":
            del node[path[-1]]
        elif isinstance(node, dict):
            node[draw(NASTY_TEXT)] = draw(VALUE)
    text = yaml.safe_dump(base, allow_unicode=draw(st.booleans()), sort_keys=False)
    if draw(st.booleans()):  # the text itself, cut and spliced
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.text(max_size=20)) + text[at + draw(st.integers(0, 20)) :]
    return text, inventory


@contextlib.contextmanager
def _alarm(seconds: int) -> Iterator[None]:
    def hung(signum: int, frame: Any) -> None:
        raise TimeoutError(f"hung for {seconds}s")

    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _run(*args: str) -> int:
    """`deployer ARGS` through the CLI's own entry point: its exit code."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
            assert code != 1, err.getvalue()[-500:]
            return code
    return 0


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@settings(
    max_examples=int(os.environ.get("DEPLOYER_FUZZ_EXAMPLES", "250")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=os.environ.get("DEPLOYER_FUZZ_RANDOM") != "1",
)
@given(case=playbooks())
def test_a_fuzzed_playbook_validates_or_is_refused_in_time(
    workdir: Path, case: tuple[str, str]
) -> None:
    text, inventory = case
    pb = workdir / "pb.yml"
    pb.write_text(text, encoding="utf-8", errors="surrogatepass")
    (workdir / "hosts.ini").write_text(inventory, encoding="utf-8", errors="surrogatepass")
    os.environ.pop("VERCEL_TOKEN", None)
    with _alarm(ALARM_S):
        assert _run("validate", "-p", str(pb)) in (0, 2)
        assert _run("plan", "-p", str(pb), "--version", "v1", "--live", "blue") in (0, 2)
