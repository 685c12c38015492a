"""The ``splitrun`` command line: a thin root (:mod:`cli`) and one module per command.

Each command module owns its parser (``add_arguments``) and its function (``execute``);
the options and exit codes several share are in :mod:`common`. The library never imports
this package.
"""
