//! # haca-policy: the deployment surface of HACA routing
//!
//! What a scheduler needs to route jobs, with no simulator and no deep-learning dependency:
//!
//! - [`ClusterView`] ([`NodeView`], [`JobView`]): what a router sees at a decision;
//! - [`features::encode`]: the fixed-width `f32` encoding of a view that learned policies read,
//!   versioned by [`FEATURE_SCHEMA_VERSION`], into an [`ObsMut`] (one observation) or a row of
//!   an [`ObsBatch`] (many, row-major);
//! - [`Router`]: the trait every router implements, with [`RandomRouter`],
//!   [`RoundRobinRouter`] and the heuristics of [`heuristics`] (jsq, lwl, sed, power of d, jiq,
//!   model affinity), built by name with [`router_by_name`];
//! - [`Policy`]: an exported learned policy, one safetensors file (`policy/FORMAT.md`) loaded
//!   with [`Policy::load`] into a [`model::Network`] whose allocation-free forward pass needs no
//!   deep-learning library; [`PolicyRouter`] routes with it;
//! - [`Rng`]: the seedable generator shared with the simulator, so results are reproducible
//!   across platforms and releases.
//!
//! The simulator (`haca-env`) produces these views; nothing here depends on it.

pub mod client_routers;
mod digest;
pub mod features;
mod file;
pub mod heuristics;
pub mod model;
pub mod obs;
mod per_client;
mod policy_router;
pub mod rng;
mod router;
mod schema;
mod view;

pub use client_routers::{LsqRouter, PrefixRouter, ReputationRouter, SdkRouter};
pub use digest::sha256_hex;
pub use features::{FEATURE_SCHEMA_VERSION, GLOBAL_FEATURES, JOB_FEATURES, NODE_FEATURES};
pub use file::{Policy, PolicyError, PolicyInfo, FORMAT_VERSION};
pub use heuristics::{AffinityRouter, JiqRouter, JsqRouter, LwlRouter, PowerOfDRouter, SedRouter};
pub use model::{Activation, Architecture};
pub use obs::{Obs, ObsBatch, ObsMut};
pub use per_client::{client_seed, PerClient, RouterFactory};
pub use policy_router::{PolicyRouter, Selection};
pub use rng::Rng;
pub use router::{
    router_by_name, single_router, RandomRouter, RoundRobinRouter, Router, ROUTER_NAMES,
};
pub use view::{ClusterView, Feedback, JobView, NodeView, Scales, SizeVisibility, Verification};
