"""The rctl test host: a real systemd machine where integration tests run as uid 1000.

Two tiers boot the same Debian bookworm tree (see ``shared/TESTHOST.md`` for the measured
facts this is built on): ``nspawn`` (systemd-nspawn, native speed, no cgroup controllers) and
``vm`` (qemu TCG resumed from a saved snapshot, the only tier with cgroup controllers).
The harness runs as root on the machine that runs ``make test``.
"""
