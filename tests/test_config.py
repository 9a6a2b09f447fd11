import pytest

from core.config import (
    ClusterConfig,
    DataConfig,
    FeatureConfig,
    MapConfig,
    RunConfig,
    parse_reduce,
    validate,
    workspace_dir,
)
from core.errors import ParameterError


def cfg(**cluster):
    return RunConfig(data=DataConfig("digits"), cluster=ClusterConfig(**cluster))


def test_valid_config_passes_through_unchanged():
    c = cfg(k=5)
    assert validate(c) is c


@pytest.mark.parametrize("k", [1, 0, -3])
def test_k_below_two_is_refused_with_reason(k):
    with pytest.raises(ParameterError, match="k must be at least 2"):
        validate(cfg(k=k))


def test_unknown_metric_lists_choices():
    with pytest.raises(ParameterError, match="euclidean, cosine, mahalanobis"):
        validate(cfg(metric="manhattan"))


def test_bad_map_and_sizes():
    with pytest.raises(ParameterError, match="umap, tsne, pca"):
        validate(RunConfig(data=DataConfig("digits"), map=MapConfig(method="mds")))
    with pytest.raises(ParameterError, match="between 8 and 1024"):
        validate(RunConfig(data=DataConfig("digits"), features=FeatureConfig(image_size=4)))
    with pytest.raises(ParameterError, match="no data given"):
        validate(RunConfig(data=DataConfig("")))


def test_parse_reduce():
    assert parse_reduce("none") == ("none", None)
    assert parse_reduce("umap:10") == ("umap", 10)
    assert parse_reduce("pca:50") == ("pca", 50)
    for bad in ("umap", "tsne:2", "pca:0", "pca:x"):
        with pytest.raises(ParameterError, match="umap:N"):
            parse_reduce(bad)


def test_workspace_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("CLUSTERLENS_HOME", str(tmp_path / "env"))
    assert workspace_dir(tmp_path / "flag") == tmp_path / "flag"
    assert workspace_dir(None) == tmp_path / "env"
    monkeypatch.delenv("CLUSTERLENS_HOME")
    assert str(workspace_dir(None)) == "workspace"
