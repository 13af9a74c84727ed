"""Volumes: host directories and named volumes mounted into containers.

- :mod:`.parse`: ``-v``, ``--mount`` and ``--volumes-from`` values into typed requests (pure);
- :mod:`.plan`: requests (plus ``--volumes-from`` and the image's ``VOLUME``s) into the
  container's mount points and the volumes to create (pure);
- :mod:`.store`: named volumes under ``$XDG_DATA_HOME/rctl/volumes/NAME/`` (``_data`` and
  ``volume.json``);
- :mod:`.service`: the ``rctl volume`` use cases and what container create/rm need;
- :mod:`.userjob`: work on volume data that needs the user namespace (``:U`` chown,
  copy-up of the image's files, removal of files of mapped IDs);
- :mod:`.cleanup`: the ``--rm`` container unit's stop hook removing anonymous volumes.
"""
