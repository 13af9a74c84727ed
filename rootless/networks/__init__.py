"""Bridge networks: their records, addresses, the per-user rootless network namespace that
holds their bridges, and attaching containers to them.

::

    store.py    network records under $XDG_DATA_HOME/rctl/networks (NAME.json), the lock
    leases.py   who is attached where now (leases.json): addresses, interfaces, forwards
    hosts.py    each attached container's /etc/hosts, planned from the leases (pure)
    holder.py   the rootless namespace's unit: its forking start (python -m)
    attach.py   a container's start and stop on its networks (called from its unit)
    detach.py   python -m entry for the container unit's ExecStopPost
    service.py  the use cases behind ``rctl network ...``
"""
