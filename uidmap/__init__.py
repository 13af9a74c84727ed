"""User-namespace adapter: /etc/subuid and /etc/subgid, ID mappings, newuidmap/newgidmap.

Takes and returns plain typed values (users, ID ranges, mappings); imports only the standard
library and ``rctlbase``.
"""
