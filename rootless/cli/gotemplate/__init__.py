"""Go's text/template for ``--format``, with docker's functions and table output.

A small interpreter of the language docker's ``--format`` takes (no pure-Python one is
maintained). :mod:`.template` is the entry: ``parse`` checks a template once,
``Template.execute`` applies it to a value, ``render_table`` is docker's ``table`` format.
The stages: :mod:`.lex` (tokens), :mod:`.parse` (nodes), :mod:`.execute` (output),
:mod:`.funcs` (builtins and docker's functions), :mod:`.values` (Python data as Go values:
printing, JSON, printf), :mod:`.tabwriter` (column alignment). Every error is a
:class:`.errors.TemplateError`, one line.

This package imports nothing itself, so that code which only builds template data (the CLI's
row adapters, from :mod:`.values`) does not load the interpreter.
"""
