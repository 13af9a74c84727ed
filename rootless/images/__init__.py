"""Images: references, manifests, the registry client, the store and layer unpacking.

- :mod:`rootless.images.reference` parses ``[registry/]repository[:tag][@digest]`` like docker;
- :mod:`rootless.images.manifest` parses manifests, indexes and image configs, and picks a
  platform from an index;
- :mod:`rootless.images.unpack` extracts one layer tar into a directory, safely.

The first two are pure; unpacking acts on one directory it is given and nothing else.
"""
