//! # haca-policy: the deployment surface of HACA routing
//!
//! What a scheduler needs to route jobs, with no simulator and no deep-learning dependency:
//!
//! - [`ClusterView`] ([`NodeView`], [`JobView`]): what a router sees at a decision;
//! - [`features::encode`]: the fixed-width `f32` encoding of a view that learned policies read,
//!   versioned by [`FEATURE_SCHEMA_VERSION`];
//! - [`Router`]: the trait every router implements, with [`RandomRouter`],
//!   [`RoundRobinRouter`] and the heuristics of [`heuristics`] (jsq, lwl, sed, power of d, jiq,
//!   model affinity), built by name with [`router_by_name`];
//! - [`Rng`]: the seedable generator shared with the simulator, so results are reproducible
//!   across platforms and releases.
//!
//! The simulator (`haca-env`) produces these views; nothing here depends on it.

pub mod features;
pub mod heuristics;
pub mod rng;
mod router;
mod view;

pub use features::{FEATURE_SCHEMA_VERSION, GLOBAL_FEATURES, JOB_FEATURES, NODE_FEATURES};
pub use heuristics::{AffinityRouter, JiqRouter, JsqRouter, LwlRouter, PowerOfDRouter, SedRouter};
pub use rng::Rng;
pub use router::{router_by_name, RandomRouter, RoundRobinRouter, Router, ROUTER_NAMES};
pub use view::{ClusterView, JobView, NodeView, Scales, SizeVisibility, Verification};
