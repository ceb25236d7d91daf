//! The plugin contract, host side: one module per version of the WIT
//! package (`v0_1` for `nova:plugin@0.1.x`), and in it one file per
//! interface, each over the [`crate::capability`] it lends.
//!
//! When a `0.2` contract arrives, `v0_2` is generated beside `v0_1` from
//! `wit/v0.2` and the host serves both: a plugin is dispatched on the
//! version in the name of the interface it exports (see
//! `Runtime::prepare`).

pub mod v0_1;
