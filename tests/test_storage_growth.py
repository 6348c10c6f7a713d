"""Storage grows linearly with dialogue length (the benchmark's measurement, at test sizes)."""

from __future__ import annotations

from benchmarks.storage_growth import measure


def test_storage_stays_within_three_times_the_export_and_steps_stay_flat(tmp_path):
    short, long = measure(30, tmp_path), measure(150, tmp_path)
    assert long.messages > 3 * short.messages  # five times the turns; messages per turn vary with the seed
    for m in (short, long):
        assert m.ratio <= 3.0, m
    # bytes per checkpoint do not grow with length (quadratic storage would multiply them)
    assert long.db_bytes / long.checkpoints <= 1.3 * short.db_bytes / short.checkpoints, (short, long)
    # time in the checkpointer per step stays flat (generous: shared CI machines are noisy)
    assert long.ms_per_step <= 3 * short.ms_per_step + 1.0, (short, long)


def test_in_place_branches_cost_their_own_new_steps_not_copies_of_the_prefix(tmp_path):
    from benchmarks.storage_growth import measure_branches

    line, branches = measure_branches(40, 4, tmp_path)
    assert branches.new_checkpoints > 20
    # a new checkpoint on a branch costs about what one on the first line does
    assert branches.step_cost_ratio <= 1.6, branches
    # four branches together weigh less than two copies of the shared line would
    assert branches.copy_ratio * branches.branches < 2, branches
    assert branches.ms_per_step <= 3 * line.ms_per_step + 1.0, (line, branches)
