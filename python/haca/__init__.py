"""The HACA routing simulator from Python: Gymnasium environments over the Rust core, its
heuristic routers, exported policies and the evaluation of `haca-eval compare`.

    import haca
    env = haca.make("env/scenarios/haca-small.toml", seed=0)
    obs, info = env.reset()
    obs, reward, terminated, truncated, info = env.step(int(obs["action_mask"].argmax()))
"""

from haca._haca import ROUTER_NAMES
from haca.env import HacaEnv, make
from haca.vector import VectorEnv
from haca.routers import Router, compare

ROUTERS = list(ROUTER_NAMES)

__all__ = ["HacaEnv", "make", "VectorEnv", "Router", "compare", "ROUTERS"]
