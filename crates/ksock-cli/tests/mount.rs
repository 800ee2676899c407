//! The `/net` tree mounted for real, driven by separate processes (sh and python3).

mod common;

include!("scenarios/mount.rs");
