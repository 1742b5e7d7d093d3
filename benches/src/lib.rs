//! Benchmarks of switchboard against the designs it replaces, and the `sim`
//! host that runs a scripted app-server workload on three of them.
//!
//! Every design implements one [`Registry`] trait, so the criterion groups
//! (`benches/registry.rs`), the `targets` and `memory` binaries and the
//! tests run the same workload under the same names on each:
//!
//! | name | design |
//! |---|---|
//! | `switchboard` | [`switchboard_core::Engine`] ([`designs::Switchboard`]) |
//! | `reference` | one `tokio::sync::Mutex` over the three maps, as the reference app server ([`designs::Reference`]) |
//! | `pl_mutex` | `parking_lot::Mutex<maps>` ([`designs::PlMutex`]) |
//! | `rwlock` | `std::sync::RwLock<maps>` ([`designs::StdRwLock`]) |
//! | `dashmap` | three `DashMap`s ([`designs::Dash`]) |
//! | `arcswap_clone` | `ArcSwap<maps>`, cloning the whole graph per write ([`designs::ArcSwapClone`]) |
//!
//! The baselines keep the per-thread entry the reference design keeps (an
//! `Arc`'d, mutex-guarded [`designs::State`] plus a has-subscribers watch),
//! so their memory and write figures compare like with like with
//! switchboard's `ThreadEntry`.
//!
//! # Example
//!
//! ```
//! use switchboard_benches::designs::{PlMutex, Switchboard};
//! use switchboard_benches::Registry;
//!
//! fn fan_out<R: Registry>() -> Vec<u64> {
//!     let r = R::new();
//!     r.connect(1, 0);
//!     r.connect(2, 0);
//!     assert!(r.subscribe(10, 1).is_some());
//!     assert!(r.subscribe(10, 2).is_some());
//!     assert!(r.subscribe(10, 3).is_none()); // 3 is not connected
//!     let mut seen = Vec::new();
//!     r.for_each_subscriber(10, |c| seen.push(c));
//!     seen.sort();
//!     seen
//! }
//!
//! assert_eq!(fan_out::<Switchboard>(), [1, 2]);
//! assert_eq!(fan_out::<PlMutex>(), [1, 2]);
//! ```

// First: `for_each_design!` is in scope for the modules below.
#[macro_use]
mod registry;

pub mod alloc;
pub mod designs;
pub mod hist;
pub mod measure;
pub mod sim;
pub mod storm;
pub mod workload;

pub use registry::{Direct, ReadHandle, Registry, DESIGNS};
