//! How the network runs around the routers, as OpenGradient's code runs it (DESIGN.md section
//! 1): many clients that each route for themselves, liveness from a registry with heartbeats,
//! prefix KV caches on the nodes, and batched settlement. Each is optional; a scenario without
//! its table behaves as before it existed.

/// `[clients]`, resolved: how many clients route, and each one's share of the demand.
#[derive(Debug, Clone, PartialEq)]
pub struct Clients {
    pub count: u32,
    pub demand: Demand,
    /// Cumulative shares, one per client (the last is 1); empty for a single client.
    pub cdf: Vec<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Demand {
    Uniform,
    /// Client `c`'s share is proportional to `1 / (c + 1)^s`.
    Zipf(f64),
}

impl Clients {
    /// One client: today's single router.
    pub fn single() -> Clients {
        Clients::new(1, Demand::Uniform)
    }

    pub fn new(count: u32, demand: Demand) -> Clients {
        let weights: Vec<f64> = (0..count)
            .map(|c| match demand {
                Demand::Uniform => 1.0,
                Demand::Zipf(s) => 1.0 / ((c + 1) as f64).powf(s),
            })
            .collect();
        let total: f64 = weights.iter().sum();
        let mut cdf = Vec::new();
        if count > 1 {
            let mut acc = 0.0;
            for w in &weights {
                acc += w / total;
                cdf.push(acc);
            }
            *cdf.last_mut().expect("count > 1") = 1.0;
        }
        Clients { count, demand, cdf }
    }

    /// Client `c`'s share of the demand.
    pub fn share(&self, c: u32) -> f64 {
        match (self.cdf.get(c as usize), c) {
            (None, _) => 1.0,
            (Some(&hi), 0) => hi,
            (Some(&hi), c) => hi - self.cdf[c as usize - 1],
        }
    }
}

impl Default for Clients {
    fn default() -> Self {
        Clients::single()
    }
}

/// `[registry]`, resolved.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Registry {
    pub heartbeat_s: f64,
    pub max_age_s: f64,
    pub fail_timeout_s: f64,
}

/// `[prefix]`, resolved (each node's capacity is `Node::kv_blocks`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PrefixCaching {
    pub block_tokens: u32,
    pub sessions: u32,
    pub system_prompts: u32,
    pub system_tokens: u32,
}

/// Batched settlement (`verification.settle_batch` and the fields beside it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settlement {
    pub batch: u32,
    pub timeout_s: f64,
    pub workers: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_sum_to_one_and_follow_the_demand() {
        let u = Clients::new(4, Demand::Uniform);
        assert!((0..4).all(|c| (u.share(c) - 0.25).abs() < 1e-12));
        let z = Clients::new(3, Demand::Zipf(1.0));
        // 1 : 1/2 : 1/3 over 11/6.
        let expect = [6.0 / 11.0, 3.0 / 11.0, 2.0 / 11.0];
        for (c, e) in expect.iter().enumerate() {
            assert!((z.share(c as u32) - e).abs() < 1e-12);
        }
        assert_eq!(Clients::single().share(0), 1.0);
        assert!(Clients::single().cdf.is_empty());
    }
}
