//! Kubernetes discovery: which kinds are listed and how objects become resources ([`kinds`]),
//! and listing them from live clusters ([`index`]; the namespaces a context has, custom
//! resource discovery and paginated lists live in private modules beside it).

mod custom;
pub mod index;
pub mod kinds;
mod list;
mod namespaces;

pub use index::{
    CustomRef, IndexProblem, IndexResult, Limits, NamespacePolicy, Progress, Silent, Target,
};
