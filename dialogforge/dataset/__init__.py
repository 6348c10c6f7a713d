"""From trajectories to a training set: rule checks, a rubric judge, dedup, export, statistics.

Everything here reads finished trajectories through ``dialogforge.checkpoints`` public
functions (``Manifest.rows``, ``load_state``) and writes its findings to a
``validations`` table in the same database, so the generator never waits on
it and it can be re-run at will.
"""
