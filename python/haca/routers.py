"""Heuristic routers and exported policies acting on a `HacaEnv`, and `haca.compare`."""

import json

from haca._haca import RustRouter, compare_json


class Router:
    """A router by name (`haca.ROUTERS`) or an exported policy (`Router.policy(path)`), choosing
    nodes for a `HacaEnv`'s current decision as the Rust evaluation does."""

    def __init__(self, rust):
        self._rust = rust

    @staticmethod
    def heuristic(name, seed=0):
        return Router(RustRouter.heuristic(name, seed))

    @staticmethod
    def policy(path, sample=False, seed=0):
        """A policy file written by `haca-train export`; greedy unless `sample`."""
        return Router(RustRouter.policy(str(path), sample, seed))

    @property
    def name(self):
        return self._rust.name

    def reset(self, seed):
        self._rust.reset(seed)

    def route(self, env, oracle=False):
        """The node this router picks for `env`'s current job, on the deciding client's view;
        with `oracle=True`, on the truth no client sees (every node now, every client's
        dispatches, dead listed nodes masked while a live legal node remains): a privileged
        teacher's label for cloning, as `haca-train --init-from oracle:<router>`. Never for
        routing."""
        return env.unwrapped._rust.route(self._rust, oracle)


def compare(scenario, routers="random,jsq,lwl,sed,affinity", policies=(), episodes=32, seed=0):
    """Runs `haca-eval compare` and returns its JSON document as a dict."""
    return json.loads(compare_json(str(scenario), routers, [str(p) for p in policies], episodes, seed))
