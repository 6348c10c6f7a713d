"""Everything the tests share, by concern: builders of states and models (``builders``), real
generated runs and dialogue checks (``checkpoints``), dataset fixtures (``dataset``),
Tool-Exec databases (``sql``), the viewer's scenario database (``viewer``), kill/resume
drivers (``kills``), the Postgres readers (``postgres``), paths (``paths``), the
in-process CLI runner (``cli``), and what exports are checked against: TRL's chat templates
rendered as transformers renders them (``chat_templates``), LLaMA-Factory's reading of
ShareGPT (``llama_factory``) and the OpenAI fine-tuning schema (``finetune_schema``).
"""
