"""Shared fixtures: generated data sets live in one session temp dir."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def digits_dir(tmp_path_factory):
    """The embedded digits ImageFolder (64 px, train/val), written once per test session."""
    from tokes_bench.data.digits import write_digits_imagefolder

    return write_digits_imagefolder(tmp_path_factory.mktemp("digits"), size=64)
