"""The Explore / Review filter's mask (issue 26, item 6)."""
import numpy as np

from ui.filters import Filter, describe, mask


def test_each_part_of_the_filter_and_their_conjunction() -> None:
    conf = np.array([0.1, 0.3, 0.5, 0.7, 0.9, 0.25])
    corrected = np.array([0, 1, 0, 1, 0, 1], bool)
    truth = np.array([0, 1, 1, 2, 0, 1])
    unclean = np.array([1, 1, 0, 0, 1, 0], bool)
    assert mask(Filter(), conf, corrected, truth, unclean).all() and not Filter().active()
    assert np.flatnonzero(mask(Filter(conf_lo=0.25, conf_hi=0.7), conf, corrected)).tolist() == [1, 2, 3, 5]
    assert np.flatnonzero(mask(Filter(corrected_only=True), conf, corrected)).tolist() == [1, 3, 5]
    assert np.flatnonzero(mask(Filter(true_class=1), conf, corrected, truth)).tolist() == [1, 2, 5]
    assert np.flatnonzero(mask(Filter(unclean_only=True), conf, corrected, truth, unclean)).tolist() == [0, 1, 4]
    both = Filter(conf_lo=0.2, corrected_only=True, true_class=1, unclean_only=True)
    assert np.flatnonzero(mask(both, conf, corrected, truth, unclean)).tolist() == [1]
    # a part the data cannot answer keeps everything (its control is not offered then)
    assert mask(Filter(true_class=1, unclean_only=True), conf, corrected, None, None).all()
    assert describe(both, ["a", "b", "c"]) == ("confidence 0.20–1.00, corrected only, true class b, "
                                               "RUC's unclean set only")
    assert describe(Filter()) == ""
