"""TOML definitions of containers, volumes and networks (docs/definitions.md).

``positions`` indexes where keys are, ``schema`` validates a file into ``model`` values,
``load`` reads files and checks them together, ``translate`` turns a definition into
``rctl run`` options and a unit file (pure, golden-tested), ``apply`` plans ``rctl apply`` /
``down``, ``service`` carries plans out and runs generated units, ``generator`` is the
systemd user generator.
"""
