"""Everything the tests share, by concern: builders of states and models (``builders``), real
generated runs and dialogue checks (``checkpoints``), dataset fixtures (``dataset``),
Tool-Exec databases (``sql``), the viewer's scenario database (``viewer``), kill/resume
drivers (``kills``), the Postgres readers (``postgres``), paths (``paths``) and the
in-process CLI runner (``cli``).
"""
