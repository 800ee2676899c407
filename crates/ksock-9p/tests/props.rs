//! The wire properties of `props/wire.rs`, bounded, on stable (the fuzz target `ninep`
//! runs the same code unbounded).

#[path = "props/wire.rs"]
mod wire;

use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_bytes_decode_or_fail_and_round_trip(data in proptest::collection::vec(any::<u8>(), 0..120)) {
        wire::check_decode(&data);
    }

    #[test]
    fn any_session_leaves_nothing_behind(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        wire::check_session(&data);
    }
}
