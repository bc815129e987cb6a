//! The Steward vocabulary, shared by every other crate.
//!
//! - [`workspace`]: RunWhen-format workspace objects (`Workspace`, `ServiceLevelX`,
//!   `ServiceLevelIndicator`, `ServiceLevelObjective`, `Runbook`) and the on-disk workspace tree,
//!   loaded with file:line errors and written back with unknown fields preserved.
//! - [`run`]: what a run is (kind, status, the spec a runner executes, the result it reports).
//! - [`issue`]: issues and report entries in the shape `RW.Core` writes them.
//! - [`metrics`] and [`otlp`]: metric points and their decoding from OTLP/HTTP (protobuf or JSON).
//! - [`wire`]: the runner ↔ platform protocol; [`api`]: the client API bodies.
//!
//! Nothing here performs I/O beyond reading the files it is asked to parse.
//!
//! ```
//! use steward_model::workspace::SlxDocuments;
//! let tree = steward_model::workspace::WorkspaceTree::from_files(
//!     [("workspace.yaml".to_string(), "apiVersion: runwhen.com/v1\nkind: Workspace\nmetadata:\n  name: demo\n".to_string())],
//! ).unwrap();
//! assert_eq!(tree.workspace.name(), "demo");
//! assert!(tree.slxs.is_empty());
//! # let _ : Option<&SlxDocuments> = None;
//! ```
#![deny(missing_docs)]

pub mod api;
pub mod issue;
pub mod metrics;
pub mod names;
pub mod otlp;
pub mod run;
pub mod wire;
pub mod workspace;
