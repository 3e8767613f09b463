import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCENARIOS = sorted((ROOT / "env" / "scenarios").glob("*.toml"))


@pytest.fixture
def small():
    return ROOT / "env" / "scenarios" / "haca-small.toml"
