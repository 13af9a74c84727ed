"""Reports: what the engine returns about containers, images, volumes and networks.

Each report is a frozen dataclass that knows one rendering, Docker's own JSON document
(``to_docker()``: the Engine API v1.44's field names and types, as ``docker inspect`` and
``GET /containers/json`` print them), so that the CLI's ``--format``, its ``json`` output and
the REST API all show the same document. rctl's own facts that Docker has no field for sit
under the key ``Rctl``, which no Docker document uses. The modules import nothing that
touches the host: the services fill the reports, these only shape them.
"""
