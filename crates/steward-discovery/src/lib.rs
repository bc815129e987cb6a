//! The workspace builder.
//!
//! `workspaceInfo.yaml` ([`config`]) says what to index and which CodeCollections to read
//! ([`collection`]). Indexers ([`kubernetes`], [`snapshot`]) fill a [`Registry`] with the
//! resources the generation rules ([`rules`]) refer to; the rules are matched against it, the
//! matches are named ([`naming`]) and rendered ([`render`]) into a workspace tree ([`output`]).
//! The behaviour follows runwhen-local's so that existing CodeCollections produce the same
//! workspace; where runwhen-local has a defect, docs/discovery.md says what we do instead.

pub mod collection;
pub mod config;
pub mod engine;
pub mod kubernetes;
mod levels;
pub mod map_rules;
pub mod naming;
pub mod output;
pub mod pipeline;
pub mod render;
pub mod resource;
pub mod rules;
pub mod snapshot;
pub mod upload;

pub use pipeline::{DiscoverError, DiscoverOptions, Summary, discover};
pub use resource::{Lod, Registry, Resource};
