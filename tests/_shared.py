"""Paths to the project's real data and official weights, and skip markers for tests that need them.

`SHARED` is `../shared` beside the checkout (or `$GEFU_SHARED`); it is absent on a user's clone, where the tests
that need it skip with the reason. Importing this module (conftest.py does, before any test) points the weight
store (`$GEFU_WEIGHTS`) at a fresh temporary folder for the whole session, filled from `SHARED/weights` with
`gefu.weights.provision_from` when that exists: tests never read or write the user's own store, and they go
through the same verified path as a user's offline site.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GEFU_SHARED", ROOT.parent / "shared"))
SHARED_WEIGHTS = SHARED / "weights"
SHARED_DATA = SHARED / "data"


def _session_weight_store() -> Path:
    store = Path(tempfile.mkdtemp(prefix="gefu-test-weights-"))
    atexit.register(shutil.rmtree, store, ignore_errors=True)
    os.environ["GEFU_WEIGHTS"] = str(store)
    os.environ.pop("GEFU_RETINEXNET", None)
    if SHARED_WEIGHTS.is_dir():
        from gefu.weights import provision_from

        provision_from(SHARED_WEIGHTS)
    return store


WEIGHT_STORE = _session_weight_store()


def needs_weights(*names: str):
    """Skip unless every named weight-table file is in the session store (provisioned from ../shared/weights)."""
    from gefu.weights import find_weight

    missing = [n for n in names if find_weight(n) is None]
    return pytest.mark.skipif(
        bool(missing), reason=f"official weights {', '.join(missing)} not found (../shared/weights is absent)"
    )


def needs_shared_data(*parts: str):
    """Skip unless `../shared/data/<parts>` exists."""
    path = SHARED_DATA.joinpath(*parts)
    return pytest.mark.skipif(not path.exists(), reason=f"{path} is absent (real data lives in ../shared/data)")
