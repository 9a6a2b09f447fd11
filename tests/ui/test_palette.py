"""One colour per cluster (issue 26, item 9): the map, tiles and bars use figures.colour; true
classes a palette of their own; cluster 0 stands out on the map; the legend clear of the toolbar."""
import numpy as np

from ui import figures


def _luminance(hex_colour: str) -> float:
    rgb = [int(hex_colour.lstrip("#")[i:i + 2], 16) / 255 for i in (0, 2, 4)]
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(a: str, b: str) -> float:
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_cluster_colours_are_distinct_and_cluster_0_stands_out_on_the_map() -> None:
    first = [figures.colour(c) for c in range(30)]
    assert len(set(first)) == 30 and figures.OUTLIER_COLOUR not in first
    assert figures.colour(-1) == figures.OUTLIER_COLOUR
    assert figures.colour(30) == figures.colour(0)                # repeats only past 30
    assert contrast(figures.colour(0), figures.MAP_BACKGROUND) >= 4.5   # WCAG AA, on the map's ground
    assert all(contrast(figures.colour(c), figures.MAP_BACKGROUND) >= 1.9 for c in range(30))


def test_true_classes_use_another_palette_than_clusters() -> None:
    clusters = {figures.colour(c) for c in range(30)}
    classes = [figures.class_colour(i) for i in range(10)]
    assert len(set(classes)) == 10 and not clusters & set(classes)
    fig = figures.scatter(np.zeros((4, 2)), list("abcd"), np.array([0, 1, 1, 2]), ["x", "y", "z"],
                          palette=figures.class_colour)
    assert {t.name: t.marker.color for t in fig.data} == {n: figures.class_colour(i) for i, n in enumerate("xyz")}


def test_map_traces_biggest_first_legend_by_id_and_below_the_plot() -> None:
    labels = np.array([0, 1, 1, 1, 2, 2, -1])
    fig = figures.scatter(np.zeros((7, 2)), [str(i) for i in range(7)], labels, lambda c: f"cluster_{c}")
    assert [t.name for t in fig.data] == ["cluster_1", "cluster_2", "cluster_0", "outliers"]   # small on top
    assert sorted(fig.data, key=lambda t: t.legendrank)[0].name == "outliers"
    assert [t.name for t in sorted(fig.data, key=lambda t: t.legendrank)][1:] == ["cluster_0", "cluster_1",
                                                                                  "cluster_2"]
    assert {t.name: t.marker.color for t in fig.data}["cluster_0"] == figures.colour(0)
    assert fig.layout.legend.orientation == "h" and fig.layout.legend.y < 0   # under the map, not the toolbar


def test_every_chart_keeps_its_legend_under_the_plot_away_from_the_toolbar() -> None:
    labels, conf = np.array([0, 1, 1, -1]), np.array([0.9, 0.1, 0.5, 0.3])
    figs = [figures.cluster_sizes(labels, conf, 0.2),
            figures.training_curve([{"epoch": 1, "loss": 1.0, "images_per_s": 10.0}]),
            figures.run_history([{"epoch": 1, "loss": 1.0, "clean_fraction": 0.5}]),
            figures.scatter(np.zeros((4, 2)), list("abcd"), labels, None)]
    for fig in figs:
        assert fig.layout.legend.orientation == "h" and fig.layout.legend.yanchor == "top"
        assert fig.layout.legend.y < 0, fig.layout.legend       # below the plot; the toolbar is at the top
