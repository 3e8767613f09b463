//! Warm-start teachers: whose decisions the clone learns before PPO (see `crate::clone`).

use std::sync::Arc;

use haca_policy::rng::derive_seed;
use haca_policy::{
    router_by_name, ClusterView, Policy, PolicyRouter, Router, Selection, ROUTER_NAMES,
};

/// Checks a teacher before any work.
pub fn check_teacher(name: &str) -> Result<(), String> {
    Teacher::parse(name).map(|_| ())
}

/// The teacher: a heuristic router by name, or an exported policy file (`*.safetensors`,
/// greedy), whose decisions a new network can clone to start from another run's policy
/// whatever that run's scales and scenario were. A policy file is read once; every env's
/// router shares its weights.
///
/// `oracle:<router>` is a privileged teacher: the router decides on the truth
/// (`Env::oracle_view`: every node now, all clients' dispatches, dead nodes known) while the
/// clone sees the client's own view. The clone then learns, per view, how likely each node is
/// to be the informed choice; sampled, it spreads the clients that see the same stale scrape
/// over the nodes as the informed router would (learning by cheating, Chen et al. 2019).
///
/// `by-clients:K:FEW:MANY` hands each decision to one of two teachers by the size of the
/// network it is taken in: `FEW` where at most `K` clients route, `MANY` where more do (each a
/// router or a policy file; policy files here run sampled, as a many-client policy is meant
/// to). It carries two regimes into one network that reads the number of clients (feature
/// schema 4's `ln_clients`), e.g. `lsq`'s sharp estimate where few clients route and a spread
/// policy where many would herd.
///
/// `by-loads:LOADER:OTHER` takes `LOADER`'s choice where that choice needs a cold model load
/// (the node does not hold the job's model) and `OTHER`'s elsewhere (policy files sampled). It
/// is a workaround for what a one-decision credit cannot teach: a load costs the job that
/// triggers it and pays the later jobs of that model with another warm copy, so PPO with
/// `gamma = 0` learns to avoid loads; `lsq` loads where its estimate says a load beats the
/// queue. Both routers see every view, so both must be stateless (`lsq`, `sed`, policies).
pub(crate) struct Teacher {
    kind: TeacherKind,
    pub oracle: bool,
}

enum TeacherKind {
    Heuristic(String),
    Policy(Arc<Policy>),
    ByClients {
        limit: u32,
        few: Box<TeacherKind>,
        many: Box<TeacherKind>,
    },
    ByLoads {
        loader: Box<TeacherKind>,
        other: Box<TeacherKind>,
    },
}

impl Teacher {
    pub fn parse(spec: &str) -> Result<Teacher, String> {
        let (oracle, name) = match spec.strip_prefix("oracle:") {
            Some(name) => (true, name),
            None => (false, spec),
        };
        let kind = if let Some(rest) = name.strip_prefix("by-clients:") {
            parse_by_clients(spec, rest)?
        } else if let Some(rest) = name.strip_prefix("by-loads:") {
            parse_by_loads(spec, rest)?
        } else {
            parse_one(spec, name)?
        };
        Ok(Teacher { kind, oracle })
    }

    /// A fresh router acting as the teacher, its ties (and samples) drawn with `seed`.
    pub fn router(&self, seed: u64) -> Box<dyn Router> {
        let mut r = self.kind.router(Selection::Greedy);
        r.reset(seed);
        r
    }
}

fn parse_by_clients(spec: &str, rest: &str) -> Result<TeacherKind, String> {
    let usage = || {
        format!(
            "init_from `{spec}`: expected `by-clients:K:FEW:MANY`, K a number of clients (1 or \
             more), FEW and MANY each a router or a policy file, e.g. \
             `by-clients:20:lsq:checkpoints/haca-clients.safetensors`"
        )
    };
    let mut parts = rest.splitn(3, ':');
    let (Some(k), Some(few), Some(many)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(usage());
    };
    let limit = k
        .parse::<u32>()
        .ok()
        .filter(|&k| k >= 1)
        .ok_or_else(usage)?;
    Ok(TeacherKind::ByClients {
        limit,
        few: Box::new(parse_one(spec, few)?),
        many: Box::new(parse_one(spec, many)?),
    })
}

fn parse_by_loads(spec: &str, rest: &str) -> Result<TeacherKind, String> {
    let Some((loader, other)) = rest.split_once(':') else {
        return Err(format!(
            "init_from `{spec}`: expected `by-loads:LOADER:OTHER`, each a router or a policy \
             file, e.g. `by-loads:lsq:runs/stage1.safetensors`"
        ));
    };
    Ok(TeacherKind::ByLoads {
        loader: Box::new(parse_one(spec, loader)?),
        other: Box::new(parse_one(spec, other)?),
    })
}

fn parse_one(spec: &str, name: &str) -> Result<TeacherKind, String> {
    if name.ends_with(".safetensors") {
        let policy = Policy::load(name).map_err(|e| format!("init_from `{spec}`: {e}"))?;
        return Ok(TeacherKind::Policy(Arc::new(policy)));
    }
    match router_by_name(name, 0) {
        Some(_) if name != "pooled" => Ok(TeacherKind::Heuristic(name.to_string())),
        _ => Err(format!(
            "init_from `{spec}`: `{name}` is not a router; use one of {} (or po<d>), a policy \
             file (*.safetensors), either after `oracle:`, `by-clients:K:FEW:MANY` or \
             `by-loads:LOADER:OTHER`",
            ROUTER_NAMES.join(", ")
        )),
    }
}

impl TeacherKind {
    fn router(&self, policy_selection: Selection) -> Box<dyn Router> {
        match self {
            TeacherKind::Heuristic(name) => router_by_name(name, 0).expect("parsed"),
            TeacherKind::Policy(p) => Box::new(PolicyRouter::new(p.clone(), policy_selection, 0)),
            TeacherKind::ByClients { limit, few, many } => {
                let sampled = Selection::Sample { temperature: 1.0 };
                Box::new(ByClients {
                    limit: *limit,
                    few: few.router(sampled),
                    many: many.router(sampled),
                })
            }
            TeacherKind::ByLoads { loader, other } => {
                let sampled = Selection::Sample { temperature: 1.0 };
                Box::new(ByLoads {
                    loader: loader.router(sampled),
                    other: other.router(sampled),
                })
            }
        }
    }
}

/// Routes with `few` where at most `limit` clients route, with `many` elsewhere. Only the
/// router that decides sees the view (stateful routers, `sdk` and `reputation`, would miss the
/// feedback of the other's decisions; the teachers this is for, `lsq` and policies, keep none).
struct ByClients {
    limit: u32,
    few: Box<dyn Router>,
    many: Box<dyn Router>,
}

impl Router for ByClients {
    fn name(&self) -> &str {
        "by-clients"
    }

    fn reset(&mut self, seed: u64) {
        self.few.reset(derive_seed(seed, 1));
        self.many.reset(derive_seed(seed, 2));
    }

    fn route(&mut self, view: &ClusterView) -> usize {
        if view.clients <= self.limit {
            self.few.route(view)
        } else {
            self.many.route(view)
        }
    }
}

/// Routes with `loader` where its choice is a node without the job's model, with `other`
/// elsewhere.
struct ByLoads {
    loader: Box<dyn Router>,
    other: Box<dyn Router>,
}

impl Router for ByLoads {
    fn name(&self) -> &str {
        "by-loads"
    }

    fn reset(&mut self, seed: u64) {
        self.loader.reset(derive_seed(seed, 1));
        self.other.reset(derive_seed(seed, 2));
    }

    fn route(&mut self, view: &ClusterView) -> usize {
        let loads = self.loader.route(view);
        let other = self.other.route(view);
        if view.nodes[loads].model_ready {
            other
        } else {
            loads
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_clients_names_its_parts_and_rejects_malformed_specs() {
        assert!(Teacher::parse("by-clients:20:lsq:sed").is_ok());
        for bad in [
            "by-clients:20:lsq",
            "by-clients:0:lsq:sed",
            "by-clients:x:lsq:sed",
            "by-clients:20:lsq:nope",
        ] {
            let e = Teacher::parse(bad).err().expect(bad);
            assert!(e.contains(bad), "{e}");
        }
        let e = Teacher::parse("by-clients:20:lsq:nope").err().unwrap();
        assert!(e.contains("`nope` is not a router"), "{e}");
        assert!(Teacher::parse("by-loads:lsq:sed").is_ok());
        for bad in ["by-loads:lsq", "by-loads:lsq:nope", "by-loads:x:sed"] {
            let e = Teacher::parse(bad).err().expect(bad);
            assert!(e.contains(bad), "{e}");
        }
    }

    #[test]
    fn by_loads_takes_the_loaders_choice_only_where_it_needs_a_cold_load() {
        // Three idle one-slot nodes of speeds 1, 2, 4; nodes 1 and 2 list a queued job (of no
        // work left), so `jsq` picks node 0 and `sed` the fastest finish.
        let teacher = Teacher::parse("by-loads:sed:jsq").unwrap();
        let mut r = teacher.router(7);
        let mut view = ClusterView {
            nodes: vec![Default::default(); 3],
            mask: vec![true; 3],
            ..Default::default()
        };
        view.job.est_work = 1.0;
        for (i, n) in view.nodes.iter_mut().enumerate() {
            n.slots = 1;
            n.speed = f64::from(1u32 << i);
            n.model_ready = true;
            n.queue_len = u32::from(i > 0);
        }
        assert_eq!(
            r.route(&view),
            0,
            "sed's choice (node 2) is warm: jsq decides"
        );
        view.nodes[2].model_ready = false;
        view.nodes[2].load_s = 0.1;
        assert_eq!(
            r.route(&view),
            2,
            "0.35 s with the load beats 0.5 s: sed loads, and decides"
        );
        view.nodes[2].load_s = 10.0;
        assert_eq!(
            r.route(&view),
            0,
            "the load costs more: sed's node 1 is warm, jsq decides"
        );
    }

    #[test]
    fn by_clients_hands_each_view_to_the_teacher_for_its_network_size() {
        // Two nodes, both legal: `round_robin` starts at node 0 and alternates; `jsq` picks
        // the node with the shorter queue (node 1 here).
        let teacher = Teacher::parse("by-clients:10:jsq:round_robin").unwrap();
        let mut r = teacher.router(7);
        let mut view = ClusterView {
            nodes: vec![Default::default(); 2],
            mask: vec![true; 2],
            ..Default::default()
        };
        view.nodes[0].queue_len = 5;
        for n in &mut view.nodes {
            n.slots = 1;
            n.busy_slots = 1;
            n.speed = 1.0;
        }
        view.clients = 10;
        assert_eq!((r.route(&view), r.route(&view)), (1, 1), "10 clients: jsq");
        view.clients = 11;
        let picks = [r.route(&view), r.route(&view)];
        assert!(
            picks == [0, 1] || picks == [1, 0],
            "11 clients: round robin"
        );
    }
}
