//! # haca-train: PPO on burn for HACA routing policies
//!
//! - [`TrainConfig`]: every hyperparameter, saved with the run.
//! - [`model::Net`]: the burn mirror of `haca_policy::model` (same layers and names), exported
//!   with [`model::Net::to_policy`].
//! - [`Trainer`]: rollouts through the fast runtime forward pass, GAE, the clipped PPO update
//!   with global gradient-norm clipping, checkpoints that resume bit-identically.
//! - [`run`]: the command-line run loop (TensorBoard, progress, evaluation, export).

mod config;
pub mod model;
mod ppo;
pub mod run;

pub use config::TrainConfig;
pub use ppo::{device, RunningStat, TrainState, Trainer, UpdateStats};
