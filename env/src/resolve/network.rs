//! `[clients]`, `[registry]`, `[prefix]` and settlement batching: the tables of how the network
//! runs around the routers (see `crate::network`).

use crate::config::{RawClients, RawPrefix, RawRegistry, RawVerification};
use crate::network::{Clients, Demand, PrefixCaching, Registry, Settlement};
use crate::scenario::ScenarioError;

use super::Ctx;

/// More clients than this would make the per-client tables (views, dispatch counts) the cost of
/// an episode rather than its jobs.
pub const MAX_CLIENTS: u32 = 10_000;
/// The most blocks a node may cache per model.
pub const MAX_KV_BLOCKS: u32 = 1 << 22;

pub(crate) fn clients(cx: &Ctx, raw: Option<&RawClients>) -> Result<Clients, ScenarioError> {
    let Some(raw) = raw else {
        return Ok(Clients::single());
    };
    let count = raw.count.unwrap_or(1);
    if !(1..=MAX_CLIENTS).contains(&count) {
        return Err(cx.err(
            "clients.count",
            format!("is {count}: must be 1 to {MAX_CLIENTS}"),
        ));
    }
    let demand = match raw.demand.as_deref().unwrap_or("uniform") {
        "uniform" => {
            if raw.zipf.is_some() {
                return Err(cx.err(
                    "clients.zipf",
                    "is set with demand = \"uniform\": set demand = \"zipf\" or remove zipf",
                ));
            }
            Demand::Uniform
        }
        "zipf" => {
            let s = raw.zipf.unwrap_or(1.0);
            if !(s.is_finite() && (0.0..=10.0).contains(&s)) {
                return Err(cx.err("clients.zipf", format!("is {s}: must be in [0, 10]")));
            }
            Demand::Zipf(s)
        }
        other => {
            return Err(cx.err(
                "clients.demand",
                format!("is \"{other}\": expected \"uniform\" or \"zipf\""),
            ))
        }
    };
    Ok(Clients::new(count, demand))
}

pub(crate) fn registry(
    cx: &Ctx,
    raw: Option<&RawRegistry>,
) -> Result<Option<Registry>, ScenarioError> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let heartbeat_s = cx.positive("registry.heartbeat_s", raw.heartbeat_s.unwrap_or(900.0))?;
    let max_age_s = cx.positive("registry.max_age_s", raw.max_age_s.unwrap_or(1800.0))?;
    if max_age_s < heartbeat_s {
        return Err(cx.err(
            "registry.max_age_s",
            format!("is {max_age_s}: must be at least heartbeat_s ({heartbeat_s}), or a live node would drop out of the registry between heartbeats"),
        ));
    }
    let fail_timeout_s = cx.positive(
        "registry.fail_timeout_s",
        raw.fail_timeout_s.unwrap_or(30.0),
    )?;
    Ok(Some(Registry {
        heartbeat_s,
        max_age_s,
        fail_timeout_s,
    }))
}

/// The `[prefix]` table and the default node cache size it sets.
pub(crate) fn prefix(
    cx: &Ctx,
    raw: Option<&RawPrefix>,
) -> Result<Option<(PrefixCaching, u32)>, ScenarioError> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let block_tokens = raw.block_tokens.unwrap_or(512);
    if !(1..=1 << 20).contains(&block_tokens) {
        return Err(cx.err(
            "prefix.block_tokens",
            format!("is {block_tokens}: must be 1 to 1048576"),
        ));
    }
    let cache_blocks = kv_blocks(cx, "prefix.cache_blocks", raw.cache_blocks.unwrap_or(4096))?;
    let caching = PrefixCaching {
        block_tokens,
        sessions: raw.sessions.unwrap_or(0),
        system_prompts: raw.system_prompts.unwrap_or(0),
        system_tokens: raw.system_tokens.unwrap_or(2048),
    };
    for (field, v) in [
        ("prefix.sessions", caching.sessions),
        ("prefix.system_prompts", caching.system_prompts),
    ] {
        if v > 1_000_000 {
            return Err(cx.err(field, format!("is {v}: at most 1000000")));
        }
    }
    Ok(Some((caching, cache_blocks)))
}

pub(crate) fn kv_blocks(cx: &Ctx, field: &str, v: u32) -> Result<u32, ScenarioError> {
    if v > MAX_KV_BLOCKS {
        return Err(cx.err(field, format!("is {v}: at most {MAX_KV_BLOCKS} blocks")));
    }
    Ok(v)
}

pub(crate) fn settlement(
    cx: &Ctx,
    v: &RawVerification,
) -> Result<Option<Settlement>, ScenarioError> {
    let Some(batch) = v.settle_batch else {
        for (field, set) in [
            (
                "verification.settle_timeout_s",
                v.settle_timeout_s.is_some(),
            ),
            ("verification.settle_workers", v.settle_workers.is_some()),
        ] {
            if set {
                return Err(cx.err(
                    field,
                    "is set without verification.settle_batch: add settle_batch (e.g. 20) or remove it",
                ));
            }
        }
        return Ok(None);
    };
    if !(1..=1_000_000).contains(&batch) {
        return Err(cx.err(
            "verification.settle_batch",
            format!("is {batch}: must be 1 to 1000000"),
        ));
    }
    let workers = v.settle_workers.unwrap_or(1);
    if !(1..=10_000).contains(&workers) {
        return Err(cx.err(
            "verification.settle_workers",
            format!("is {workers}: must be 1 to 10000"),
        ));
    }
    Ok(Some(Settlement {
        batch,
        timeout_s: cx.positive(
            "verification.settle_timeout_s",
            v.settle_timeout_s.unwrap_or(60.0),
        )?,
        workers,
    }))
}
