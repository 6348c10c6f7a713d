"""The export formats and validation defaults, in a module light enough for ``--help`` to read.

The command line shows these as choices and defaults before any heavy
library (datasets, numpy) is loaded; ``export`` and ``dedup`` use the same
names, so there is one source.
"""

FORMATS = ("openai", "sharegpt", "hf")
DEFAULT_THRESHOLD = 0.8  # near-duplicate similarity (MinHash Jaccard estimate)
DEFAULT_JUDGE_CONTEXT_TOKENS = 32_000  # what one judge request may hold: instructions, specs, rubric, transcript
MIN_JUDGE_CONTEXT_TOKENS = 2_000
