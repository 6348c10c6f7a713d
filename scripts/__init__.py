"""The ``dialogforge`` command line: a thin layer over library functions."""
