//! # df-plugin-host
//!
//! Finds df-plugin bundles, proves each one compatible **before any of its code runs**, and
//! registers what it exports into a DataFusion session, whole or not at all.
//!
//! The load pipeline, one module per step:
//!
//! 1. [`discover`] — search paths in order (explicit, `DF_PLUGIN_PATH`, next to the executable);
//! 2. [`trust`] — file checks (symlinks, permissions, owner), then the trust level: `any`,
//!    `pinned` (a lock file of hashes) or `signed` (ed25519), hashes cached per file version;
//! 3. [`metadata`] — the ABI record and manifest, read from the file with `object`, no `dlopen`;
//! 4. [`verify`] — plugin ABI, DataFusion, datafusion-ffi, Arrow, sqlparser, target;
//! 5. [`open`] — `dlopen(RTLD_NOW | RTLD_LOCAL)`, never closed;
//! 6. [`handshake`] — the live record and manifest equal the file's;
//! 7. [`root_module`] — abi_stable's layout check, then `init(host context)`;
//! 8. [`truth`] — the exports match the manifest;
//! 9. [`register`] — all or nothing into one `Arc<SessionContext>`, after [`restore`] gave
//!    each function back the documentation and parameter names datafusion-ffi drops;
//!    [`planners`] puts bundles' SQL planners in front of DataFusion's.
//!
//! Refusals ([`Refusal`]) name the bundle, the step, every field that differs and the fix.
//!
//! [`conformance`] is the conformance kit's checks (`df-plugin-host verify`): every step above
//! run one at a time and reported, then each object exercised, panics injected, and the
//! bundle's own `.slt` files run.
//!
//! Around the pipeline: [`config`] (the `df-plugin-host.toml` file), [`catalog`]
//! (`df_plugins()` and `df_plugin_objects()`), [`lifecycle`] (load later, deregister,
//! upgrade, reload) and [`statement`] (`LOAD PLUGIN` and friends as SQL text).
//!
//! [`distributed`] runs the same bundles on a Ballista cluster: scheduler and executor entry
//! points, a client session, and codecs that route plugin objects by bundle and version.
//!
//! See [`host`] for the embedding API.

// A `Refusal` is large (it carries every mismatch and the fix) but it is the cold path: at
// most one per refused bundle. Boxing it would only make every step's signature noisier.
#![allow(clippy::result_large_err)]

pub mod catalog;
pub mod config;
pub mod conformance;
pub mod discover;
pub mod distributed;
pub mod error;
pub mod handshake;
pub mod host;
pub mod inspect;
pub mod lifecycle;
pub mod metadata;
pub mod open;
pub mod options;
pub mod planners;
pub mod register;
pub mod restore;
pub mod root_module;
pub mod session;
pub mod statement;
pub mod trust;
pub mod truth;
pub mod verify;

pub use catalog::{BundleRecord, BundleState, ObjectRecord};
pub use config::HostConfig;
pub use error::{HostError, Mismatch, Refusal, Result, Step};
pub use host::{LoadedBundle, PluginHost, PluginHostBuilder, Plugins, Registration};
pub use register::{ConflictPolicy, PluginRegistry, RegisteredBundle};
pub use statement::PluginStatement;
pub use trust::{TrustLevel, TrustPolicy};
