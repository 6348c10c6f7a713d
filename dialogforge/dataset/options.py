"""The export formats, chat families and defaults, in a module light enough for ``--help`` to read.

The command line shows these as choices and defaults before any heavy
library (datasets, numpy) is loaded; ``export`` and ``dedup`` use the same
names, so there is one source (``chat_families.FAMILIES`` holds the same
family names; a test keeps the two lists equal).
"""

FORMATS = ("openai", "sharegpt", "hf")
CHAT_TEMPLATES = ("qwen3", "glm4-moe", "llama3", "gpt-oss", "deepseek-v3", "deepseek-v3-training")
# Whether an export keeps the agent's reasoning when neither --with-reasoning nor --no-reasoning
# is given: yes, the data is for reasoning models (a run that captured none has none to keep).
# Where a target has no place for reasoning (openai; llama3, deepseek-v3) an explicit
# --with-reasoning is refused, while this default only leaves it out and says so in the manifest.
WITH_REASONING_DEFAULT = True
DEFAULT_THRESHOLD = 0.8  # near-duplicate similarity (MinHash Jaccard estimate)
DEFAULT_JUDGE_CONTEXT_TOKENS = 32_000  # what one judge request may hold: instructions, specs, rubric, transcript
MIN_JUDGE_CONTEXT_TOKENS = 2_000
