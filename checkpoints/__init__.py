"""Persistence: the SQLite checkpointer, the run manifest, resume, history and fork."""
