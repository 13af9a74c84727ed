"""Docker-compatible REST API on a unix socket; a thin layer over the same engine as the CLI."""
