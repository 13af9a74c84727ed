"""Network adapter: network namespaces, slirp4netns and pasta, bridges and veths, ports, DNS.

Takes plain typed values (port lists, subnets, namespace paths); imports only the standard
library, pyroute2 and ``rctlbase``.
"""
