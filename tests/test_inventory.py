"""Hosts from Ansible inventories, in the formats Ansible documents (INI and YAML): groups,
children, group and host variables with Ansible's precedence, host ranges."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from deployer.playbook.inventory import InventoryError, expand, hosts_in, parse_ini, parse_yaml

INI = """\
# the fleet
mail.example.com

[webservers]
web[01:03].example.com ansible_user=deploy
web04.example.com ansible_host=10.0.0.4 ansible_port=2222 http_port=8080

[dbservers]
db-[a:b].example.com

[atlanta:children]
webservers
dbservers

[atlanta:vars]
ansible_user=atl
ntp_server=ntp.atlanta.example.com

[webservers:vars]
http_port=80
"""

YAML = """\
all:
  vars:
    ansible_user: root
  hosts:
    mail.example.com:
  children:
    prod:
      vars:
        ansible_user: prod
      children:
        web:
          vars: {ansible_port: 2200}
          hosts:
            web[1:2]:
              ansible_host: 10.1.0.1
            web3: {ansible_host: 10.1.0.3, ansible_user: special}
"""


def test_ranges() -> None:
    assert expand("web[01:03].x") == ["web01.x", "web02.x", "web03.x"]
    assert expand("db-[a:c]") == ["db-a", "db-b", "db-c"]
    assert expand("n[0:10:5]") == ["n0", "n5", "n10"]
    with pytest.raises(InventoryError):
        expand("bad[x1:y2]")


def test_ini_groups_children_and_precedence() -> None:
    groups = parse_ini(INI)
    web = hosts_in(groups, "webservers")
    assert list(web) == [f"web0{i}.example.com" for i in range(1, 5)]
    # host var > child group var (webservers) > parent group var (atlanta)
    assert web["web01.example.com"]["ansible_user"] == "deploy"
    assert web["web04.example.com"]["ansible_user"] == "atl"
    assert web["web04.example.com"]["http_port"] == 8080
    assert web["web02.example.com"]["http_port"] == 80
    assert web["web02.example.com"]["ntp_server"] == "ntp.atlanta.example.com"
    atlanta = hosts_in(groups, "atlanta")
    assert set(atlanta) == set(web) | {"db-a.example.com", "db-b.example.com"}
    assert "mail.example.com" in hosts_in(groups, "all")
    with pytest.raises(InventoryError, match="no group 'nope'"):
        hosts_in(groups, "nope")


def test_yaml_nested_children_and_precedence() -> None:
    groups = parse_yaml(YAML)
    web = hosts_in(groups, "web")
    assert set(web) == {"web1", "web2", "web3"}
    assert web["web1"] == {"ansible_user": "prod", "ansible_port": 2200, "ansible_host": "10.1.0.1"}
    assert web["web3"]["ansible_user"] == "special"
    assert set(hosts_in(groups, "prod")) == set(web)


def test_a_playbook_takes_its_hosts_from_an_inventory(tmp_path: Path) -> None:
    (tmp_path / "inventory.ini").write_text(INI)
    root = Path(__file__).resolve().parent.parent
    doc = yaml.safe_load((root / "playbooks" / "demo.yml").read_text())
    del doc["hosts"]
    doc["inventory"] = {"path": "inventory.ini", "group": "webservers", "key": "~/.ssh/k"}
    doc["router"]["host"] = "web01.example.com"
    doc.pop("migrate")
    pb = tmp_path / "fleet.yml"
    pb.write_text(yaml.safe_dump(doc))
    from deployer.playbook import load_playbook

    hosts = load_playbook(pb).model.hosts
    assert [(h.name, h.address, h.port, h.user, h.key) for h in hosts][-1] == (
        "web04.example.com", "10.0.0.4", 2222, "atl", "~/.ssh/k",
    )  # fmt: skip
    doc["inventory"]["group"] = "nope"
    pb.write_text(yaml.safe_dump(doc))
    out = subprocess.run(
        [sys.executable, "-m", "deployer", "validate", "-p", str(pb)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert out.returncode == 2 and "no group 'nope'" in out.stderr and "inventory" in out.stderr
    assert "Traceback" not in out.stderr
