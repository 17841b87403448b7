"""Targets: where traffic is switched. One module per platform behind
:class:`deployer.ports.Target`; the composition root (:func:`deployer.app.make_target`) picks
one by the playbook's ``target``."""
