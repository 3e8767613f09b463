//! The `[arrivals]` section: which process, at what rate (given directly, as a mean gap, or as
//! a load relative to the network's capacity), and a trace's time scale.

use std::sync::Arc;

use super::ctx::Ctx;
use crate::bounds::{shown, MAX_RATE_MULT};
use crate::config::RawArrivals;
use crate::scenario::{ArrivalProcess, Arrivals, ScenarioError};
use crate::trace::Trace;

/// The `[arrivals]` table: its process and mean rate. `load` is relative to `capacity` (the
/// network's available work per second) and `mean_work` (a job's mean work).
pub(crate) fn arrivals(
    cx: &Ctx,
    a: &RawArrivals,
    trace: Option<&Arc<Trace>>,
    mean_work: f64,
    capacity: f64,
) -> Result<Arrivals, ScenarioError> {
    check_fields(cx, a)?;
    let load_rate = |load: f64| -> Result<f64, ScenarioError> {
        Ok(cx.positive("arrivals.load", load)? * capacity / mean_work)
    };
    if let Some(trace) = trace {
        let native_rate = if trace.span_s() > 0.0 {
            (trace.len() - 1) as f64 / trace.span_s()
        } else {
            f64::INFINITY
        };
        let (rate, time_scale) = match a.load {
            Some(_) if native_rate.is_infinite() => {
                return Err(cx.err(
                    "arrivals.load",
                    "every request of the trace arrives at the same instant, so there is no time to rescale: remove `load`",
                ))
            }
            Some(load) => {
                let rate = load_rate(load)?;
                (rate, native_rate / rate)
            }
            None => (native_rate, 1.0),
        };
        return Ok(Arrivals {
            process: ArrivalProcess::Trace {
                trace: trace.clone(),
                time_scale,
                random_offset: a.random_offset.unwrap_or(true),
            },
            rate_per_s: rate,
        });
    }
    let rate = match (a.rate_per_s, a.mean_interarrival_s, a.load) {
        (Some(r), None, None) => cx.positive("arrivals.rate_per_s", r)?,
        (None, Some(m), None) => 1.0 / cx.positive("arrivals.mean_interarrival_s", m)?,
        (None, None, Some(l)) => load_rate(l)?,
        _ => {
            return Err(cx.err(
                "arrivals.rate_per_s",
                "set exactly one of rate_per_s, mean_interarrival_s or load",
            ))
        }
    };
    Ok(Arrivals {
        process: synthetic(cx, a, rate)?,
        rate_per_s: rate,
    })
}

/// Rejects a field the process does not take (a likely typo or a copy from another process).
fn check_fields(cx: &Ctx, a: &RawArrivals) -> Result<(), ScenarioError> {
    let allowed: &[&str] = match a.process.as_str() {
        "poisson" => &["rate_per_s", "mean_interarrival_s", "load"],
        "mmpp" => &[
            "rate_per_s",
            "mean_interarrival_s",
            "load",
            "high_mult",
            "low_mult",
            "mean_high_s",
            "mean_low_s",
        ],
        "diurnal" => &[
            "rate_per_s",
            "mean_interarrival_s",
            "load",
            "period_s",
            "amplitude",
        ],
        "trace" => &["load", "path", "random_offset"],
        other => {
            return Err(cx.err(
                "arrivals.process",
                format!("is \"{other}\": expected \"poisson\", \"mmpp\", \"diurnal\" or \"trace\""),
            ))
        }
    };
    let given = [
        ("rate_per_s", a.rate_per_s.is_some()),
        ("mean_interarrival_s", a.mean_interarrival_s.is_some()),
        ("load", a.load.is_some()),
        ("high_mult", a.high_mult.is_some()),
        ("low_mult", a.low_mult.is_some()),
        ("mean_high_s", a.mean_high_s.is_some()),
        ("mean_low_s", a.mean_low_s.is_some()),
        ("period_s", a.period_s.is_some()),
        ("amplitude", a.amplitude.is_some()),
        ("path", a.path.is_some()),
        ("random_offset", a.random_offset.is_some()),
    ];
    for (name, is_set) in given {
        if is_set && !allowed.contains(&name) {
            return Err(cx.err(
                format!("arrivals.{name}"),
                format!(
                    "does not apply to process = \"{}\" (which takes {})",
                    a.process,
                    allowed.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// The synthetic process named by `a.process`, at mean `rate` jobs per second.
fn synthetic(cx: &Ctx, a: &RawArrivals, rate: f64) -> Result<ArrivalProcess, ScenarioError> {
    Ok(match a.process.as_str() {
        "poisson" => ArrivalProcess::Poisson,
        "mmpp" => {
            let high = cx.positive("arrivals.high_mult", a.high_mult.unwrap_or(4.0))?;
            let low = cx.non_negative("arrivals.low_mult", a.low_mult.unwrap_or(0.25))?;
            let th = cx.positive("arrivals.mean_high_s", a.mean_high_s.unwrap_or(60.0))?;
            let tl = cx.positive("arrivals.mean_low_s", a.mean_low_s.unwrap_or(240.0))?;
            for (field, m) in [("arrivals.high_mult", high), ("arrivals.low_mult", low)] {
                if m > MAX_RATE_MULT {
                    return Err(cx.err(
                        field,
                        format!(
                            "is {}: at most {MAX_RATE_MULT} (it is relative to the mean rate)",
                            shown(m)
                        ),
                    ));
                }
            }
            // Normalize so the time-averaged rate is `rate`.
            let k = (th + tl) / (high * th + low * tl);
            if !(k.is_finite() && k > 0.0) {
                return Err(cx.err(
                    "arrivals.mean_high_s",
                    "and mean_low_s, with the multipliers, give no finite average rate: use durations of seconds to days",
                ));
            }
            ArrivalProcess::Mmpp {
                high_rate: rate * high * k,
                low_rate: rate * low * k,
                mean_high_s: th,
                mean_low_s: tl,
            }
        }
        _ => {
            let amplitude = cx.non_negative("arrivals.amplitude", a.amplitude.unwrap_or(0.5))?;
            if amplitude > 1.0 {
                return Err(cx.err(
                    "arrivals.amplitude",
                    format!("is {amplitude}: must be at most 1 (the rate cannot go negative)"),
                ));
            }
            ArrivalProcess::Diurnal {
                period_s: cx.positive("arrivals.period_s", a.period_s.unwrap_or(86_400.0))?,
                amplitude,
            }
        }
    })
}
