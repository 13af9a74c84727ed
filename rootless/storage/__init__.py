"""Storage drivers: how a container's root filesystem is made from its image's layers.

- ``overlay``: kernel overlayfs mounted inside the user namespace (Linux ≥ 5.11), with the
  ``userxattr`` option so opaque directories are read from ``user.overlay.*`` xattrs;
- ``fuse-overlayfs``: the same layout served by the FUSE daemon, for kernels that refuse it;
- ``vfs``: no mount at all; each layer is a full copy of its parent and the container gets a
  copy of its image's top layer. Slow and big, but it works everywhere.

Both overlay drivers share one layer format (whiteouts as 0:0 character devices); vfs has its
own. Mounts are made in the container's mount namespace, so they die with the container.
"""
