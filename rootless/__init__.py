"""rctl, the product: CLI, engine (use cases), images, storage, containers, definitions, API.

Import direction (checked by ``tests/unit/test_layers.py``): ``rootless.cli`` and
``rootless.api`` import the engine and the models only; the engine imports the domain
modules and the adapters ``units``, ``uidmap`` and ``netns``; nothing here is imported by them.
"""

__version__ = "0.1.0"
