"""The graph's nodes, one module each, with their prompts in ``nodes/prompts/``."""
