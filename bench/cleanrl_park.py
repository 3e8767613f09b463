#!/usr/bin/env python3
"""The baseline of DESIGN section 8: a CleanRL-style PPO in PyTorch on Park's load-balance env.

It is what a researcher would write without this project: the env in pure Python (as Park's own
is), a synchronous vector of envs stepped one after the other in Python (gymnasium's
SyncVectorEnv), and CleanRL's `ppo.py` loop. To compare implementations and not algorithms,
everything else is haca-train's:

- the env semantics of `env/scenarios/park.toml`: 10 single-slot FIFO servers with rates
  0.15..1.05, 1000 jobs per episode with sizes floor(Pareto(1.5, 100)) and gaps
  floor(Exp(55)), service time floor(size / rate), reward = - integral of jobs in the system,
  the episode ends when the last job finishes;
- the observation: haca-policy's feature schema 1 (12 per node, 8 job, 5 global), computed
  here for Park's single-slot, model-less nodes;
- the network: the same permutation-equivariant node scorer (hidden 32, 2 scoring layers,
  1 value layer, ReLU, 7,138 parameters) with masked softmax;
- the hyperparameters: 16 envs x 128 steps, 4 epochs of 4 minibatches, Adam 3e-4 (eps 1e-5)
  annealed, gamma 0.995, GAE 0.95, clip 0.2 with clipped value loss, entropy 0.01, value 0.5,
  global gradient-norm clip 0.5, per-minibatch advantage normalization, reward scaling by the
  running std of the discounted return, orthogonal init.

Prints CleanRL's SPS (steps per second since the start) every 10 updates, and at the end one
JSON line with the SPS and a greedy evaluation (mean latency over --eval-episodes episodes),
plus the same evaluation of the lwl and sed heuristics as a check that this env matches
haca-env's park (compare with `haca-eval compare --scenario env/scenarios/park.toml`).

    python3 -m venv venv && venv/bin/pip install torch numpy
    venv/bin/python bench/cleanrl_park.py --total-timesteps 200000
"""

import argparse
import heapq
import json
import math
import random
import time
from collections import deque

import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim
from torch.distributions.categorical import Categorical

RATES = [0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 0.95, 1.05]
JOBS = 1000
MEAN_GAP = 55.0
PARETO_SHAPE, PARETO_SCALE = 1.5, 100.0
# haca-env's feature scales for park: mean work (the Pareto mean) and mean slot speed.
SCALE_WORK = PARETO_SHAPE * PARETO_SCALE / (PARETO_SHAPE - 1.0)
SCALE_SPEED = sum(RATES) / len(RATES)
T = SCALE_WORK / SCALE_SPEED
N, NODE_F, JOB_F, GLOBAL_F = len(RATES), 12, 8, 5


class ParkEnv:
    """Park's load balancing: route each arriving job to one of N FIFO single-slot servers."""

    def __init__(self, seed):
        self.rng = random.Random(seed)

    def reset(self):
        self.now = 0.0
        self.arrived = 0
        # Per server: deque of [work, service_s, start_s or None, finish_s or None].
        self.queues = [deque() for _ in RATES]
        self.free_at = [0.0] * N
        self.finish_heap = []  # finish times of jobs in the system
        self.latencies = []
        self._next_job()
        return self._obs()

    def _next_job(self):
        if self.arrived > 0:
            self.now += math.floor(self.rng.expovariate(1.0 / MEAN_GAP))
        u = 1.0 - self.rng.random()
        self.size = math.floor(PARETO_SCALE * u ** (-1.0 / PARETO_SHAPE))
        self.arrived += 1

    def _advance(self, t):
        """Integral of jobs in the system from now to t; retires jobs finished by t."""
        area, cur = 0.0, self.now
        while self.finish_heap and self.finish_heap[0] <= t:
            f = heapq.heappop(self.finish_heap)
            area += (len(self.finish_heap) + 1) * (f - cur)
            cur = f
        area += len(self.finish_heap) * (t - cur)
        for q in self.queues:
            while q and q[0][3] <= t:
                q.popleft()
        return area

    def step(self, action):
        s = action
        service = math.floor(self.size / RATES[s])
        start = max(self.now, self.free_at[s])
        finish = start + service
        self.free_at[s] = finish
        self.queues[s].append((self.size, service, start, finish))
        heapq.heappush(self.finish_heap, finish)
        self.latencies.append(finish - self.now)
        if self.arrived == JOBS:
            end = max(self.free_at)
            area = self._advance(end)
            self.now = end
            return None, -area, True
        self._next_job()
        area = self._advance(self.now)
        return self._obs(), -area, False

    def _obs(self):
        """haca-policy feature schema 1 for Park's nodes (one slot, no models, no capabilities)."""
        nodes = np.zeros((N, NODE_F), dtype=np.float32)
        jobs_in_system = len(self.finish_heap) + 1
        busy_total = 0
        for i, (q, rate) in enumerate(zip(self.queues, RATES)):
            busy = 1 if q and q[0][2] <= self.now else 0
            queued = len(q) - busy
            left = 0.0
            for k, (work, _, start, _) in enumerate(q):
                left += max(0.0, min(work, work - rate * (self.now - start))) if k == 0 and busy else work
            idle = busy == 0 and queued == 0
            delay = (0.0 if idle else left / rate) + self.size / rate
            nodes[i] = (
                rate / SCALE_SPEED,
                math.log(2.0),
                busy,
                math.log1p(queued),
                math.log1p(left / rate / T),
                math.log1p(delay / T),
                1.0,
                0.0,
                0.0,
                0.0,
                1.0 if idle else 0.0,
                0.0,
            )
            busy_total += busy
        job = np.array(
            [math.log1p(self.size) / 10.0, 0.0, 1.0, self.size / SCALE_WORK, 1.0, 0.0, 0.0, 0.0],
            dtype=np.float32,
        )
        glob = np.array(
            [math.log1p(N), (jobs_in_system - 1) / N, 0.0, 1.0, busy_total / N], dtype=np.float32
        )
        return nodes, job, glob


class SyncVec:
    """gymnasium.vector.SyncVectorEnv's stepping, with same-step autoreset."""

    def __init__(self, num_envs, seed):
        self.envs = [ParkEnv(seed * 1000 + e) for e in range(num_envs)]
        self.latency_means = []

    def reset(self):
        return self._stack([e.reset() for e in self.envs])

    def step(self, actions):
        obs, rewards, dones = [], np.zeros(len(self.envs), np.float32), np.zeros(len(self.envs), np.float32)
        for i, (env, a) in enumerate(zip(self.envs, actions)):
            o, r, d = env.step(int(a))
            if d:
                self.latency_means.append(float(np.mean(env.latencies)))
                o = env.reset()
            obs.append(o)
            rewards[i], dones[i] = r, d
        return self._stack(obs), rewards, dones

    @staticmethod
    def _stack(obs):
        return tuple(torch.from_numpy(np.stack(x)) for x in zip(*obs))


def layer_init(layer, std=np.sqrt(2), bias_const=0.0):
    torch.nn.init.orthogonal_(layer.weight, std)
    torch.nn.init.constant_(layer.bias, bias_const)
    return layer


class Agent(nn.Module):
    """haca-policy's node scorer: embed each node, pool [mean, max] over legal nodes, score."""

    def __init__(self, h=32):
        super().__init__()
        self.embed = layer_init(nn.Linear(NODE_F + JOB_F + GLOBAL_F, h))
        self.score0 = layer_init(nn.Linear(3 * h, h))
        self.score1 = layer_init(nn.Linear(h, h))
        self.score_out = layer_init(nn.Linear(h, 1), std=0.01)
        self.value0 = layer_init(nn.Linear(2 * h, h))
        self.value_out = layer_init(nn.Linear(h, 1), std=1.0)

    def forward(self, nodes, job, glob, mask):
        b, n, _ = nodes.shape
        x = torch.cat([nodes, job[:, None, :].expand(b, n, JOB_F), glob[:, None, :].expand(b, n, GLOBAL_F)], -1)
        hn = torch.relu(self.embed(x))
        m = mask[..., None].float()
        mean = (hn * m).sum(1) / m.sum(1).clamp(min=1.0)
        mx = hn.masked_fill(~mask[..., None], -1e9).max(1).values
        ctx = torch.cat([mean, mx], -1)
        u = torch.relu(self.score0(torch.cat([hn, ctx[:, None, :].expand(b, n, ctx.shape[-1])], -1)))
        u = torch.relu(self.score1(u))
        logits = self.score_out(u).squeeze(-1).masked_fill(~mask, -1e8)
        value = self.value_out(torch.relu(self.value0(ctx))).squeeze(-1)
        return logits, value

    def get_value(self, obs):
        return self.forward(*obs)[1]

    def get_action_and_value(self, obs, action=None):
        logits, value = self.forward(*obs)
        probs = Categorical(logits=logits)
        if action is None:
            action = probs.sample()
        return action, probs.log_prob(action), probs.entropy(), value


class MlpAgent(nn.Module):
    """CleanRL ppo.py's own agent: separate 64-64 tanh MLPs on the flattened observation."""

    def __init__(self):
        super().__init__()
        d = N * NODE_F + JOB_F + GLOBAL_F

        def mlp(out, std):
            return nn.Sequential(
                layer_init(nn.Linear(d, 64)), nn.Tanh(), layer_init(nn.Linear(64, 64)), nn.Tanh(),
                layer_init(nn.Linear(64, out), std=std),
            )

        self.critic, self.actor = mlp(1, 1.0), mlp(N, 0.01)

    def forward(self, nodes, job, glob, mask):
        x = torch.cat([nodes.flatten(1), job, glob], -1)
        return self.actor(x).masked_fill(~mask, -1e8), self.critic(x).squeeze(-1)

    get_value = Agent.get_value
    get_action_and_value = Agent.get_action_and_value


def with_mask(obs):
    nodes, job, glob = obs
    return nodes, job, glob, torch.ones(nodes.shape[:2], dtype=torch.bool)


def evaluate(choose, episodes, seed):
    lat = []
    for ep in range(episodes):
        env = ParkEnv(10_000_000 + seed * 1000 + ep)
        obs, done = env.reset(), False
        while not done:
            obs, _, done = env.step(choose(env, obs))
        lat.append(float(np.mean(env.latencies)))
    mean = float(np.mean(lat))
    half = 1.96 * float(np.std(lat, ddof=1)) / math.sqrt(len(lat)) if len(lat) > 1 else float("nan")
    return mean, half


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--total-timesteps", type=int, default=200_000)
    p.add_argument("--num-envs", type=int, default=16)
    p.add_argument("--num-steps", type=int, default=128)
    p.add_argument("--learning-rate", type=float, default=3e-4)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads (the machine's cores)")
    p.add_argument("--eval-episodes", type=int, default=50)
    p.add_argument("--agent", choices=["node-scorer", "mlp"], default="node-scorer",
                   help="haca-train's network (default) or CleanRL's 64-64 MLP")
    a = p.parse_args()
    gamma, lam, minibatches, epochs = 0.995, 0.95, 4, 4
    clip, ent_coef, vf_coef, max_grad_norm = 0.2, 0.01, 0.5, 0.5

    random.seed(a.seed)
    np.random.seed(a.seed)
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)

    envs = SyncVec(a.num_envs, a.seed)
    agent = Agent() if a.agent == "node-scorer" else MlpAgent()
    optimizer = optim.Adam(agent.parameters(), lr=a.learning_rate, eps=1e-5)
    E, S = a.num_envs, a.num_steps
    batch = E * S
    mb = batch // minibatches
    updates = a.total_timesteps // batch

    b_nodes = torch.zeros((S, E, N, NODE_F))
    b_job = torch.zeros((S, E, JOB_F))
    b_glob = torch.zeros((S, E, GLOBAL_F))
    actions = torch.zeros((S, E), dtype=torch.long)
    logprobs = torch.zeros((S, E))
    rewards = torch.zeros((S, E))
    dones = torch.zeros((S, E))
    values = torch.zeros((S, E))
    # Reward scaling (gymnasium's NormalizeReward): divide by the running std of the return.
    ret = np.zeros(E)
    r_count, r_mean, r_var = 1e-4, 0.0, 1.0

    global_step = 0
    start = time.time()
    next_obs = envs.reset()
    next_done = torch.zeros(E)
    sps = 0.0
    rollout_s = 0.0
    for update in range(1, updates + 1):
        optimizer.param_groups[0]["lr"] = (1.0 - (update - 1.0) / updates) * a.learning_rate
        t_rollout = time.time()
        for step in range(S):
            global_step += E
            b_nodes[step], b_job[step], b_glob[step] = next_obs
            dones[step] = next_done
            with torch.no_grad():
                action, logprob, _, value = agent.get_action_and_value(with_mask(next_obs))
            values[step] = value
            actions[step] = action
            logprobs[step] = logprob
            next_obs, reward, done = envs.step(action.numpy())
            ret = ret * gamma * (1.0 - done) + reward
            bm, bv, bc = ret.mean(), ret.var(), E
            delta, tot = bm - r_mean, r_count + bc
            r_mean += delta * bc / tot
            r_var = (r_var * r_count + bv * bc + delta**2 * r_count * bc / tot) / tot
            r_count = tot
            rewards[step] = torch.from_numpy(reward / math.sqrt(r_var + 1e-8)).float()
            next_done = torch.from_numpy(done)
        rollout_s += time.time() - t_rollout

        with torch.no_grad():
            next_value = agent.get_value(with_mask(next_obs))
            advantages = torch.zeros_like(rewards)
            lastgaelam = 0
            for t in reversed(range(S)):
                if t == S - 1:
                    nextnonterminal, nextvalues = 1.0 - next_done, next_value
                else:
                    nextnonterminal, nextvalues = 1.0 - dones[t + 1], values[t + 1]
                delta = rewards[t] + gamma * nextvalues * nextnonterminal - values[t]
                advantages[t] = lastgaelam = delta + gamma * lam * nextnonterminal * lastgaelam
            returns = advantages + values

        f_nodes, f_job, f_glob = b_nodes.reshape(batch, N, NODE_F), b_job.reshape(batch, JOB_F), b_glob.reshape(batch, GLOBAL_F)
        f_mask = torch.ones((batch, N), dtype=torch.bool)
        f_act, f_logp = actions.reshape(-1), logprobs.reshape(-1)
        f_adv, f_ret, f_val = advantages.reshape(-1), returns.reshape(-1), values.reshape(-1)
        inds = np.arange(batch)
        for _ in range(epochs):
            np.random.shuffle(inds)
            for s0 in range(0, batch, mb):
                i = inds[s0 : s0 + mb]
                _, newlogprob, entropy, newvalue = agent.get_action_and_value((f_nodes[i], f_job[i], f_glob[i], f_mask[i]), f_act[i])
                ratio = (newlogprob - f_logp[i]).exp()
                adv = f_adv[i]
                adv = (adv - adv.mean()) / (adv.std() + 1e-8)
                pg_loss = torch.max(-adv * ratio, -adv * torch.clamp(ratio, 1 - clip, 1 + clip)).mean()
                v_unclipped = (newvalue - f_ret[i]) ** 2
                v_clipped = f_val[i] + torch.clamp(newvalue - f_val[i], -clip, clip)
                v_loss = 0.5 * torch.max(v_unclipped, (v_clipped - f_ret[i]) ** 2).mean()
                loss = pg_loss - ent_coef * entropy.mean() + v_loss * vf_coef
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(agent.parameters(), max_grad_norm)
                optimizer.step()
        sps = global_step / (time.time() - start)
        if update % 10 == 0 or update == updates:
            recent = envs.latency_means[-16:]
            lat = f"{np.mean(recent):.1f}" if recent else "-"
            print(f"update {update}/{updates} global_step {global_step} SPS {sps:.0f} episodic mean latency {lat}", flush=True)
    train_s = time.time() - start

    def greedy(env, obs):
        with torch.no_grad():
            logits, _ = agent(*with_mask(tuple(torch.from_numpy(x)[None] for x in obs)))
        return int(logits.argmax())

    def lwl(env, obs):
        left = obs[0][:, 4]  # ln(1 + drain time): monotone in work left / rate
        return int(np.flatnonzero(left == left.min())[env.rng.randrange(int((left == left.min()).sum()))])

    def sed(env, obs):
        d = obs[0][:, 5]
        return int(np.flatnonzero(d == d.min())[env.rng.randrange(int((d == d.min()).sum()))])

    t0 = time.time()
    policy = evaluate(greedy, a.eval_episodes, a.seed)
    eval_s = time.time() - t0
    out = {
        "total_timesteps": global_step,
        "train_s": round(train_s, 2),
        "sps": round(sps, 1),
        "rollout_ms_per_update": round(1e3 * rollout_s / updates, 1),
        "update_ms_per_update": round(1e3 * (train_s - rollout_s) / updates, 1),
        "threads": a.threads,
        "agent": a.agent,
        "eval_episodes": a.eval_episodes,
        "policy_mean_latency_s": policy,
        "lwl_mean_latency_s": evaluate(lwl, a.eval_episodes, a.seed),
        "sed_mean_latency_s": evaluate(sed, a.eval_episodes, a.seed),
        "eval_decisions_per_s": round(a.eval_episodes * JOBS / eval_s, 1),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
