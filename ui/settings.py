"""The app's settings, read from the environment on every run (cheap; tests change them freely).

- ``CLUSTERLENS_HOME``: the workspace folder (default ./workspace), as for the CLI.
- ``CLUSTERLENS_ALLOWED_ROOTS``: os.pathsep-separated folders the app may read datasets from
  (default: the current directory). Anything outside is refused.
- ``CLUSTERLENS_MAX_UPLOAD_MB``: the most an upload may weigh, all files together (default 200).
- ``CLUSTERLENS_JOB_WAIT_S``: how long a page waits for a job it just started before showing a
  progress bar instead (default 1.0): quick runs then show their result with no flicker.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from core.config import workspace_dir
from core.errors import DataError


@dataclass(frozen=True)
class Settings:
    workspace: Path
    allowed_roots: tuple[Path, ...]
    max_upload_mb: float
    job_wait_s: float

    @staticmethod
    def from_env() -> Settings:
        roots = [r for r in os.environ.get("CLUSTERLENS_ALLOWED_ROOTS", "").split(os.pathsep) if r.strip()]
        return Settings(
            workspace=workspace_dir(),
            allowed_roots=tuple(Path(os.path.realpath(os.path.expanduser(r))) for r in roots or [os.getcwd()]),
            max_upload_mb=float(os.environ.get("CLUSTERLENS_MAX_UPLOAD_MB", "200")),
            job_wait_s=float(os.environ.get("CLUSTERLENS_JOB_WAIT_S", "1.0")),
        )


def outside_message(roots: tuple[Path, ...]) -> str:
    return ("That folder is not under the folders this app may read "
            f"({', '.join(str(r) for r in roots)}). Choose a folder inside one of them, or ask whoever "
            "runs the app to add it to CLUSTERLENS_ALLOWED_ROOTS.")


def resolved_path(text: str) -> Path:
    """``text`` as a real, absolute path (user folder and links resolved), or DataError when it cannot
    name a file at all (a NUL or other control character, e.g. from a paste)."""
    bad = next((c for c in text if ord(c) < 32 and c not in "\t"), None)
    if bad is not None:
        raise DataError(f"the path contains a control character ({bad!r}), which no file name can hold; "
                        "type or paste the path again")
    try:
        return Path(os.path.realpath(os.path.expanduser(text.strip() or ".")))
    except (OSError, ValueError) as e:
        raise DataError(f"that path cannot be used ({e}); type or paste it again") from None


def _inside(path: Path, roots: tuple[Path, ...]) -> bool:
    return any(path == r or r in path.parents for r in roots)


def allowed_folder(text: str, settings: Settings) -> Path:
    """The resolved folder if it lies under an allowed root, else DataError.

    Why realpath before any existence check: the refusal must not reveal whether a path outside
    the roots exists (same message either way), and symlinks must not lead out of a root.
    """
    path = resolved_path(text)
    if not _inside(path, settings.allowed_roots):
        raise DataError(outside_message(settings.allowed_roots))
    return path


def check_source(source: str, settings: Settings) -> None:
    """Refuse a data source the app may not read: every way of opening data in the app (the Data
    page, a run reopened from the workspace or from ``?run=N``) passes here. Demos and torchvision
    sets are read from the operator's data root; a path must lie under an allowed root or be one of
    the app's own uploads (kept in the workspace)."""
    from core.data.demos import DEMOS
    from core.data.tv import PREFIX

    text = str(source).strip()
    path = resolved_path(text)
    if text.lower().startswith(PREFIX) or (text in DEMOS and not Path(text).expanduser().exists()):
        return
    ws = Path(os.path.realpath(settings.workspace))
    if not _inside(path, (*settings.allowed_roots, ws / "uploads")):
        raise DataError(outside_message(settings.allowed_roots))
