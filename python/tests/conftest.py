import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCENARIOS = sorted((ROOT / "env" / "scenarios").glob("*.toml"))


@pytest.fixture
def small():
    return ROOT / "env" / "scenarios" / "haca-small.toml"


def tiny_scenario(folder, jobs, speeds=(100.0, 100.0), load=0.5):
    """A one-model scenario with one single-slot node per speed (in that order), jobs of 100
    work units known exactly, no verification; written to `folder` and its path returned."""
    classes = "".join(
        f'[[node_classes]]\nname = "n{i}"\ncount = 1\nspeed = {s}\nmemory_gb = 8\n'
        for i, s in enumerate(speeds)
    )
    path = folder / "tiny.toml"
    path.write_text(
        f"""
[episode]
jobs = {jobs}
[sim]
size_visibility = "exact"
[verification]
verifiers = 0
[[models]]
name = "m"
memory_gb = 1
prefill_cost = 1.0
decode_cost = 0.0
{classes}
[workload]
input_tokens = {{ dist = "fixed", value = 100 }}
[arrivals]
process = "poisson"
load = {load}
"""
    )
    return path
