"""Every private LangGraph / LangChain name dialogforge relies on, in one place.

Each name in this package is an assumption about a library's internals, and
each has a test of its own in ``tests/test_compat.py``; ``pyproject.toml``
pins the minor versions those tests ran against. An upgrade that breaks an
assumption fails there, loudly, instead of deep inside a run. One module per
library, so importing the checkpoint helpers does not load the OpenAI client:

* ``dialogforge.compat.langgraph``: the msgpack wire format of stored values,
  LangGraph's safe-type lists, the delta-snapshot type, the Checkpoint dict
  a new checkpoint is written as, and task paths in stored writes.
* ``dialogforge.compat.openai_chat``: ``ChatOpenAI``'s request payload and
  result hooks, overridden to keep reasoning and skip the SDK's re-parsing.
"""
