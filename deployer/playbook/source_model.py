"""Where a playbook's hosts come from when not listed in it: an Ansible inventory."""

from __future__ import annotations

from pydantic import Field

from deployer.playbook.fields import Strict


class Inventory(Strict):
    path: str = Field(description="An Ansible inventory (INI or YAML), relative to the playbook.")
    group: str = Field("all", description="The group whose hosts are the app hosts.")
    user: str | None = Field(None, description="SSH user when the inventory sets none.")
    key: str | None = Field(None, description="Private key when the inventory sets none.")
    known_hosts: str | None = Field(None, description="known_hosts for every host.")
    port: int | None = Field(None, ge=1, le=65535, description="SSH port when none is set.")
