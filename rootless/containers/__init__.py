"""Containers: what one is, and the OCI runtime config planned from it.

- :mod:`rootless.containers.spec`: :class:`ContainerSpec`, the validated definition of a
  container (docker-run options over the image's defaults), and ``parse_*`` for flag values;
- :mod:`rootless.containers.ocispec`: :func:`plan_oci_config`, the translation of a spec
  into crun's ``config.json`` (runtime-spec 1.0.2);
- :mod:`rootless.containers.seccomp`: the default seccomp profile (podman's) and user profiles.

These three are pure (no files, no processes): the engine reads the image's files, writes
the bundle and runs crun.
"""
