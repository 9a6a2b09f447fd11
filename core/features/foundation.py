"""Foundation-model backbones (DINOv2, CLIP, SigLIP) through ``timm``, weights in the Hugging Face cache.

Why timm for all of them: one well-kept library builds every architecture; its hub repos
(``timm/<arch>.<tag>``) hold each model in one published format (``config.json`` +
``model.safetensors``) in the standard Hugging Face hub cache, and its ``pretrained_cfg`` gives the
published preprocessing. Listing never imports timm or touches the network beyond one short
reachability probe (see :func:`hub_reachable`); weights are fetched with
``huggingface_hub.hf_hub_download`` on first use only, then loaded from the local file.

Cache layout (read without the network): ``$HF_HUB_CACHE`` (default ``$HF_HOME/hub``,
``~/.cache/huggingface/hub``) / ``models--timm--<arch>.<tag>/refs/main`` (a commit) and
``snapshots/<commit>/{config.json, model.safetensors}``.
"""
from __future__ import annotations

import functools
import json
import logging
import os
import re
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import torch
from torch import nn

from core.errors import ClusterLensError
from core.features.checkpoint import file_sha256

log = logging.getLogger(__name__)

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
OFFLINE_STATE = "no internet: use efficientnet_lite0 (ships offline)"
# DINOv2 and CLIP/SigLIP were trained at 224 px (DINOv2's last stage at 518): 224 = 16 x 14.
FOUNDATION_SIZE = 224
PROBE_TIMEOUT_S = 1.0
PROBE_TTL_S = 60.0
_TRUE = {"1", "true", "yes", "on"}


def hub_cache_dir() -> str:
    """The Hugging Face hub cache folder, read from the environment at call time (the library
    reads it once at import, so a test or user changing HF_HOME later would not be seen)."""
    env = os.environ
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if env.get(var):
            return os.path.expanduser(env[var])
    home = env.get("HF_HOME") or os.path.join(env.get("XDG_CACHE_HOME") or "~/.cache", "huggingface")
    return os.path.join(os.path.expanduser(home), "hub")


def hub_offline() -> bool:
    """True when the user said so (``HF_HUB_OFFLINE=1``, as huggingface_hub reads it)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE


_probe: dict[str, tuple[float, bool]] = {}
_probe_lock = threading.Lock()


def _probe_target() -> tuple[str, int]:
    proxy = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy")
    url = urlparse(proxy or os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    return url.hostname or "huggingface.co", url.port or (443 if url.scheme != "http" else 80)


def hub_reachable(timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Can the hub (or the HTTPS proxy) be reached? A TCP connect, DNS included, bounded by
    ``timeout`` (DNS runs in a daemon thread: ``getaddrinfo`` ignores socket timeouts); the
    answer is kept for a minute so listing backbones never waits twice. Never raises."""
    if hub_offline():
        return False
    host, port = _probe_target()
    key = f"{host}:{port}"
    with _probe_lock:
        hit = _probe.get(key)
        if hit is not None and time.monotonic() - hit[0] < PROBE_TTL_S:
            return hit[1]
    result: list[bool] = []

    def connect() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    t = threading.Thread(target=connect, name="clusterlens-hub-probe", daemon=True)
    t.start()
    t.join(timeout * 2)
    ok = bool(result and result[0])
    with _probe_lock:
        _probe[key] = (time.monotonic(), ok)
    return ok


@dataclass(frozen=True)
class HubFiles:
    """A model's files in the local hub cache."""

    commit: str
    config: str
    weights: str


def cached_files(repo_id: str, cache_dir: str | None = None) -> HubFiles | None:
    """The files of ``repo_id`` at ``refs/main`` in the local cache, or None (no network)."""
    from huggingface_hub import try_to_load_from_cache

    cache = cache_dir or hub_cache_dir()
    found = []
    for fname in (CONFIG_FILE, WEIGHTS_FILE):
        p = try_to_load_from_cache(repo_id, fname, cache_dir=cache)
        if not isinstance(p, str) or not os.path.isfile(p):
            return None
        found.append(p)
    return HubFiles(commit=os.path.basename(os.path.dirname(found[1])), config=found[0], weights=found[1])


def download_files(repo_id: str, cache_dir: str | None = None) -> HubFiles:
    """Fetch ``config.json`` and ``model.safetensors`` into the hub cache (through
    ``huggingface_hub.hf_hub_download``, looked up at call time so tests can replace it)."""
    import huggingface_hub

    cache = cache_dir or hub_cache_dir()
    try:
        for fname in (CONFIG_FILE, WEIGHTS_FILE):
            huggingface_hub.hf_hub_download(repo_id, fname, cache_dir=cache)
    except Exception as e:   # why: the hub raises many types (offline mode, HTTP, DNS, no repo): all mean "not here"
        raise ClusterLensError(
            f"could not download {repo_id} from the Hugging Face hub into {cache} ({type(e).__name__}: "
            f"{str(e)[:200]}): "
            f"{OFFLINE_STATE}, or copy the hub cache folder models--{repo_id.replace('/', '--')} "
            "there from a machine that has it") from None
    files = cached_files(repo_id, cache)
    if files is None:
        raise ClusterLensError(f"{repo_id} was downloaded but its files are not in the hub cache {cache}; "
                               "delete that model's folder there and try again")
    return files


_sha_memo: dict[tuple[str, int, int], str] = {}


def weights_sha256(path: str) -> str:
    """The weights file's SHA-256: the blob name in the hub cache (huggingface_hub names LFS blobs
    by it), else hashed once per (file, size, mtime)."""
    real = os.path.realpath(path)
    name = os.path.basename(real)
    if re.fullmatch(r"[0-9a-f]{64}", name):
        return name
    st = os.stat(real)
    key = (real, st.st_size, st.st_mtime_ns)
    if key not in _sha_memo:
        _sha_memo[key] = file_sha256(real)
    return _sha_memo[key]


class FoundationFeatures(nn.Module):
    """A timm model as a feature module, with an fp32 check of low-precision autocast.

    Without autocast it runs in fp32. Under autocast (extraction uses fp16 autocast on CUDA;
    tests use bf16 on the CPU) the first batch is also run in fp32 and the rows' cosine
    similarity compared: at or above ``MIN_COSINE`` the low-precision output is kept for every
    batch, below it the module falls back to fp32 for good (and logs why).
    ``precision`` says what was used ("float32", "float16", "bfloat16"), ``check_cosine`` the
    smallest cosine measured on the first batch (None when no autocast was seen).
    """

    MIN_COSINE = 0.99

    def __init__(self, model: nn.Module, name: str) -> None:
        super().__init__()
        self.model, self.name = model, name
        self.precision: str | None = None
        self.check_cosine: float | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dev = x.device.type
        if not torch.is_autocast_enabled(dev):
            self.precision = self.precision or "float32"
            return self.model(x)
        if self.precision == "float32":   # fell back (or started without autocast): stay in fp32
            with torch.autocast(dev, enabled=False):
                return self.model(x.float())
        low = self.model(x)
        if self.check_cosine is not None:
            return low
        with torch.autocast(dev, enabled=False):
            ref = self.model(x.float())
        cos = float(nn.functional.cosine_similarity(low.float(), ref, dim=1, eps=1e-12).min())
        self.check_cosine = cos
        if cos >= self.MIN_COSINE:
            self.precision = str(torch.get_autocast_dtype(dev)).removeprefix("torch.")
            return low
        log.warning("%s: %s autocast moved features to cosine %.4f of fp32 (< %.2f); using fp32",
                    self.name, torch.get_autocast_dtype(dev), cos, self.MIN_COSINE)
        self.precision = "float32"
        return ref


@functools.lru_cache(maxsize=64)
def _say_rounded(name: str, asked: int, used: int, patch: int) -> None:
    log.warning("image size %d is not a multiple of %s's %d-pixel patch: using %d px", asked, name, patch, used)


def round_to_patch(size: int, patch: int) -> int:
    """The patch multiple nearest ``size`` (at least one patch)."""
    return max(patch, int(round(size / patch)) * patch)


def build_timm(arch: str, tag: str, files: HubFiles, *, num_classes: int, mean: tuple[float, ...],
               std: tuple[float, ...], name: str) -> nn.Module:
    """``timm.create_model`` from the cached files, after checking their ``config.json`` is the
    architecture and preprocessing ClusterLens declares for ``name``."""
    try:
        with open(files.config, encoding="utf-8") as f:
            cfg: dict[str, Any] = json.load(f)
    except (OSError, ValueError) as e:
        raise ClusterLensError(f"{files.config} is not a readable config.json ({e}); delete the model's folder "
                               "in the hub cache and it is downloaded again") from None
    pre = cfg.get("pretrained_cfg") or {}
    problems = []
    if cfg.get("architecture") != arch:
        problems.append(f"architecture {cfg.get('architecture')!r}, expected {arch!r}")
    for key, want in (("mean", mean), ("std", std)):
        got = pre.get(key)
        if got is not None and (len(got) != len(want)
                                or any(abs(a - b) > 1e-6 for a, b in zip(got, want, strict=True))):
            problems.append(f"{key} {got}, expected {list(want)}")
    if problems:
        raise ClusterLensError(f"{files.config} does not describe {name}: {'; '.join(problems)}. Delete the "
                               "model's folder in the hub cache (it is downloaded again) or update ClusterLens")
    import timm

    try:
        model = timm.create_model(f"{arch}.{tag}", pretrained=True, num_classes=num_classes,
                                  dynamic_img_size=True, pretrained_cfg_overlay={"file": files.weights})
    except (RuntimeError, OSError, ValueError) as e:   # strict load: missing / unexpected / mis-shaped keys
        raise ClusterLensError(f"{files.weights} does not hold {arch} weights ({type(e).__name__}: "
                               f"{str(e)[:300]}); delete the model's folder in the hub cache and try again") from None
    return FoundationFeatures(model, name)
