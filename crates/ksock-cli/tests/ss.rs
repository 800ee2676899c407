//! `ksock ss` through a real mount: which sockets each option lists (`-t`, `-u`, `-x`, `-l`,
//! `-a`, a state filter), what `-p`, `-e` and `-i` add, `--json` read by Python's `json`
//! module, and usage errors. The sockets are held by processes separate from the test, as a
//! user's would be.

mod common;

include!("scenarios/ss.rs");
