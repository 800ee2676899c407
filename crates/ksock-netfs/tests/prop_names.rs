//! Properties of names with `:flags` and socket ids (`props/names.rs`, also the fuzz target
//! `names`) on generated names.

mod props {
    pub mod names;
}

use props::names::check_name;
use proptest::prelude::*;

fn piece() -> impl Strategy<Value = Vec<u8>> {
    let fixed = proptest::sample::select(vec![
        &b":"[..],
        b"n",
        b"nonblock",
        b"data",
        b"ctl",
        b"accept",
        b"listen",
        b"status",
        b"err",
        b"local",
        b"remote",
        b"stream",
        b"dgram",
        b"seqpacket",
        b"addrs",
        b"table",
        b"0",
        b"1",
        b"2",
        b"18446744073709551615",
        b"18446744073709551616",
    ]);
    prop_oneof![
        4 => fixed.prop_map(<[u8]>::to_vec),
        1 => proptest::collection::vec(any::<u8>(), 1..4),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_names(name in proptest::collection::vec(any::<u8>(), 0..40)) {
        check_name(&name);
    }

    #[test]
    fn names_of_pieces(p in proptest::collection::vec(piece(), 0..6)) {
        check_name(&p.concat());
    }

    #[test]
    fn ids(id in any::<u64>()) {
        check_name(id.to_string().as_bytes());
        check_name(format!("0{id}").as_bytes());
    }
}

#[test]
fn every_file_with_every_flag_spelling() {
    for base in [
        "", "local", "stream", "addrs", "table", "data", "ctl", "1", "2", "3",
    ] {
        for flags in ["", ":n", ":nonblock", ":n:nonblock", ":", "::", ":x"] {
            check_name(format!("{base}{flags}").as_bytes());
        }
    }
}
