"""systemd adapter: transient units over D-Bus, unit-file rendering, the generator, journald.

Knows nothing about containers: it takes plain typed values (a unit name, its properties)
and talks to the user's service manager. Imports only the standard library, dbus-fast and
``rctlbase``.
"""
