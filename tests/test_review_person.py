"""What a person did, told apart from what a split or merge did (issue 26, item 10): only moves
and outlier marks a person made count as corrected and checked, and leave the review queue."""
import numpy as np

from core.review import ReviewSession, cluster_name
from core.store import Store
from tests.review_helpers import make_run


def test_split_and_merge_move_labels_but_count_as_nobody_s_look(tmp_path):
    run, ids, base = make_run(tmp_path / "ws", n=40, k=2)
    X = np.random.default_rng(0).normal(0, 0.1, (40, 4)).astype(np.float32)
    members = np.flatnonzero(base == 0)
    X[members[::2], 0] += 10
    with Store(tmp_path / "ws") as store:
        s = ReviewSession(store, run)
        s.split(0, 2, X)
        moved = s.corrected_mask()
        assert moved.sum() == len(members) // 2                 # labels changed ...
        assert not s.person_mask().any()                        # ... but nobody looked at them
        assert set(s.review_queue(order="index").tolist()) == set(range(40))   # all still to review
        s.move([ids[int(members[0])], ids[int(members[1])]], 1)
        s.mark_outliers([ids[int(np.flatnonzero(base == 1)[0])]])
        person = s.person_mask()
        assert np.flatnonzero(person).tolist() == sorted([int(members[0]), int(members[1]),
                                                          int(np.flatnonzero(base == 1)[0])])
        assert not set(np.flatnonzero(person).tolist()) & set(s.review_queue(order="index").tolist())
        s.undo()                                                 # the outlier mark undone: not counted
        assert person.sum() - 1 == s.person_mask().sum()
        with Store(tmp_path / "ws") as other:                    # replayed from the log, same answer
            assert np.array_equal(ReviewSession(other, run).person_mask(), s.person_mask())


def test_one_cluster_name():
    assert cluster_name(3) == "cluster_3" and cluster_name(-1) == "outliers"
    assert cluster_name(3, {3: "sevens"}) == "sevens" and cluster_name(4, {3: "sevens"}) == "cluster_4"
