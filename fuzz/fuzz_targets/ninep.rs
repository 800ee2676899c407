//! The 9P server's wire: the first byte chooses between the codec alone (any bytes decode
//! to a message or an error; a message re-encodes to itself) and a whole session (any
//! sequence of requests, then a hang-up, leaves no socket, no waiting request and no
//! connection behind). The properties are in `crates/ksock-9p/tests/props/wire.rs`, shared
//! with the stable property tests.
#![no_main]

#[path = "../../crates/ksock-9p/tests/props/wire.rs"]
mod wire;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    match data.split_first() {
        Some((k, rest)) if k % 2 == 0 => wire::check_decode(rest),
        Some((_, rest)) => wire::check_session(rest),
        None => {}
    }
});
