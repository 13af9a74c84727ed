"""Images made here rather than pulled: ``rctl diff`` and ``rctl commit`` of a container
(:mod:`.layerdiff`, :mod:`.commit`), and the Dockerfile reader of ``rctl build``
(:mod:`.dockerfile`, :mod:`.ignore`)."""
