//! # haca-train: PPO on burn for HACA routing policies
//!
//! - [`TrainConfig`]: every hyperparameter, saved with the run.
//! - [`model::Net`]: the burn mirror of `haca_policy::model` (same layers and names), exported
//!   with [`model::Net::to_policy`].
//! - [`Trainer`]: rollouts through the fast runtime forward pass, GAE, the clipped PPO update
//!   with global gradient-norm clipping, checkpoints that resume bit-identically.
//!   Its parts: `rollout` (acting and storage), [`advantage`] (reward scaling, GAE with
//!   truncation, the input-dependent baseline), [`credit`] (per-job reward credit), `checkpoint`
//!   (save and bit-identical resume, envs as replayable snapshots), [`clone`] (the warm start by
//!   behaviour cloning of a heuristic), [`seeds`] (every random stream of a run).
//! - [`run`]: the command-line run loop (TensorBoard, progress, evaluation, the choice of
//!   `best.safetensors`, export), ending with a [`verdict::Verdict`]; [`select`] re-evaluates
//!   the best candidates on fresh episodes before the verdict; [`curves`] draws runs' learning
//!   curves.

pub mod advantage;
mod checkpoint;
pub mod clone;
mod config;
pub mod credit;
pub mod curves;
pub mod model;
mod ppo;
mod rollout;
pub mod run;
pub mod seeds;
pub mod select;
mod teacher;
pub mod verdict;

pub use checkpoint::stamp_manifest;
pub use config::TrainConfig;
pub use ppo::{device, RunningStat, TrainState, Trainer, UpdateStats};

/// Keeps burn's tensor buffers in the heap instead of fresh memory maps.
///
/// burn's CPU backend allocates and frees buffers of megabytes at every operation of an update.
/// glibc serves blocks that large with `mmap` and returns them with `munmap`, so every operation
/// pays page faults on fresh memory (they were most of a `perf` profile). Raising the mmap and
/// trim thresholds lets freed buffers be reused: `haca-train bench` on park, same machine and
/// run: 23.0 k -> 38.2 k env steps/s end to end, the burn update 80.8 -> 45.3 ms.
/// Call it once, first thing in `main`. Elsewhere than glibc it does nothing.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before any other thread exists.
    unsafe {
        // 32 MiB is glibc's largest accepted mmap threshold on 64-bit targets.
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}
