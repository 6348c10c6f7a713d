"""The shared runtime of dialogforge: configuration, errors and the model layer.

It lives in its own package (named after our distribution, so it shadows
nothing) because graphs/, nodes/, checkpoints/ and scripts/ all use it.
"""

__version__ = "0.1.0"
