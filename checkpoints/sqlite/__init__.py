"""A SQLite checkpointer whose storage grows linearly with dialogue length.

LangGraph's stock ``SqliteSaver`` stores every channel's value inside every
checkpoint row, so a state with a long task list, a tool list and counters
costs their full size at every step, quadratic over a long dialogue. Here:

* Channel values live apart from checkpoints (``cp_blobs``, keyed by
  thread, channel and version, as LangGraph's Postgres saver does), so a
  channel that did not change costs nothing at a step (``schema``).
* A changed value is stored as a structural patch on its previous version
  (``dialogforge.checkpoints.patches``), with a full keyframe whenever the
  patches since the last one outweigh it, so reading any version stays
  bounded (``values``).
* A node's write of a last-value channel is the next checkpoint's value of
  that channel: once that checkpoint exists the write row just points at the
  blob, so the bytes are stored once (``steps``, ``writes``).
* ``DeltaChannel`` (the message list) keeps LangGraph's contract: each step
  stores only its writes and a reader replays the ancestors' writes. The
  periodic snapshots LangGraph asks for are checked against that replay; a
  snapshot that the replay reproduces exactly is recorded as a marker
  (``derived``) and costs no bytes, and the one a branch starts with is
  stored as a patch on its parent's list (``delta``).
* A thread may branch (LangGraph's replay, or ``update_state`` on a past
  checkpoint). Branches re-use version numbers, so once a thread has one,
  its new values take keys of their own, named in the checkpoint body; a
  branch costs its own new steps, never a copy of the shared prefix, and a
  thread that never branched is stored exactly as before (``branches``).
* Ids are packed (16 bytes per UUID), names interned (``names``), payloads
  deflated. Copies (``copies``) and pruning (``pruning``) keep every base a
  kept row needs.

Everything stored goes through the strict serializer. Channel versions are
integers. One connection, guarded by a lock; the async methods run the same
code (each call is one short transaction, so nothing waits across an await).
"""

from dialogforge.checkpoints.sqlite.saver import LinearSqliteSaver
from dialogforge.checkpoints.sqlite.schema import DERIVED, MISSING, TABLES

__all__ = ["DERIVED", "LinearSqliteSaver", "MISSING", "TABLES"]
