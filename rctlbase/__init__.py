"""The foundation every rctl package may import: errors and running programs.

It imports nothing from the project (pip's ``exceptions`` module is the model), so the
adapters (``units``, ``uidmap``, ``netns``) and the product (``rootless``) can share one
exception root and one door to external programs without importing each other.
"""
