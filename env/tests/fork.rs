//! Forks: a copy of an env's present with a freshly drawn future, shared by forks of one seed
//! (common random numbers for comparing actions), leaving the original untouched.

mod common;

use haca_env::Env;
use haca_policy::{RandomRouter, Router};

/// Rewards and arrival times of `steps` steps routed by a seeded random router.
fn run(env: &mut Env, steps: usize) -> Vec<(u64, u64)> {
    let mut router = RandomRouter::new(3);
    let mut out = Vec::new();
    for _ in 0..steps {
        let a = router.route(env.obs());
        let s = env.step(a).unwrap();
        out.push((s.reward.to_bits(), s.info.time.to_bits()));
        if s.done() {
            break;
        }
    }
    out
}

#[test]
fn forks_share_their_future_and_leave_the_original_alone() {
    for name in ["haca-small", "haca-churn", "park"] {
        let sc = common::shipped_scenario(name);
        let mut env = Env::new(sc);
        env.reset(Some(11));
        run(&mut env, 300);
        let (time, decisions) = (env.info().time, env.info().decisions);
        let copy = env.clone();

        let (mut a, mut b, mut c) = (env.fork(7), env.fork(7), env.fork(8));
        assert_eq!(
            a.info().decisions,
            decisions,
            "{name}: a fork starts at the present"
        );
        assert_eq!(a.obs().job.est_work, env.obs().job.est_work, "{name}");
        let (ra, rb, rc) = (run(&mut a, 400), run(&mut b, 400), run(&mut c, 400));
        assert_eq!(ra, rb, "{name}: forks of one seed share their future");
        assert_ne!(ra, rc, "{name}: another seed draws another future");

        // The original still continues into its own future, as its untouched copy does.
        assert_eq!(env.info().time, time);
        let mut copy = copy;
        let (ro, rcopy) = (run(&mut env, 400), run(&mut copy, 400));
        assert_eq!(ro, rcopy, "{name}: forking does not disturb the original");
        assert_ne!(ro, ra, "{name}: a fork's future is a new sample");
    }
}

#[test]
fn a_reset_fork_is_an_ordinary_env_again() {
    let sc = common::shipped_scenario("haca-small");
    let mut env = Env::new(sc.clone());
    env.reset(Some(2));
    run(&mut env, 50);
    let mut fork = env.fork(1);
    fork.replay(env.info().episode_seed);
    run(&mut fork, 20);
    // A fresh episode follows from its seed again, so its snapshot replays.
    let snap = fork.snapshot();
    let mut other = Env::new(sc);
    other.restore(&snap).unwrap();
    assert_eq!(other.info().time, fork.info().time);
}
