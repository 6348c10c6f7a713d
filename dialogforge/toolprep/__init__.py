"""Tool preparation, the paper's stage before tasks: questions, drafts, gap analysis, result schemas.

Used once per domain to build a tool library (``library``), and per trajectory by
the tool-synthesis node when a run asks for that (``stages``).
"""
