//! Properties of the inet address text (`props/addr.rs`, also the fuzz target `inet_addr`)
//! on generated text: arbitrary bytes, and texts made of the forms' own pieces.

mod props {
    pub mod addr;
}

use props::addr::check_inet_addr;
use proptest::prelude::*;
use std::net::SocketAddr;

fn piece() -> impl Strategy<Value = String> {
    let fixed = proptest::sample::select(vec![
        "127",
        "0",
        "1",
        "255",
        "256",
        "00",
        "01",
        ".",
        ":",
        "::",
        "[",
        "]",
        "%",
        "localhost",
        "*",
        "ffff",
        "65535",
        "65536",
        "99999",
        " ",
        "\n",
        "1.2.3.4",
        "::ffff:",
        "-",
    ]);
    prop_oneof![
        4 => fixed.prop_map(str::to_string),
        1 => "[0-9a-fA-F.:%\\[\\]*]{1,4}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn arbitrary_bytes(text in proptest::collection::vec(any::<u8>(), 0..64)) {
        check_inet_addr(&text);
    }

    #[test]
    fn pieces_of_the_forms(p in proptest::collection::vec(piece(), 0..8)) {
        check_inet_addr(p.concat().as_bytes());
    }

    #[test]
    fn every_address_prints_and_reads_back(a in any::<SocketAddr>()) {
        // Flow information has no text form: it reads back as 0.
        let a = match a {
            SocketAddr::V6(v6) => SocketAddr::V6(std::net::SocketAddrV6::new(
                *v6.ip(), v6.port(), 0, v6.scope_id())),
            a => a,
        };
        check_inet_addr(a.to_string().as_bytes());
        prop_assert_eq!(ksock_inet::addr::parse(a.to_string().as_bytes()), Ok(a));
    }
}

#[test]
fn the_forms_and_their_edges() {
    for t in [
        "127.0.0.1:80",
        "[::1]:8080",
        "[fe80::1%3]:22",
        "localhost:7",
        "*:9",
        "*:65535",
        "*:65536",
        "localhost:000080",
        "1.2.3.4:0",
        "01.2.3.4:1",
        "[::ffff:1.2.3.4]:5",
        "[::1%]:5",
        "[::1%x]:5",
        " 10.0.0.1:1\n",
        "[::1]:+5",
        "1.2.3.4:+5",
        "*:+5",
    ] {
        check_inet_addr(t.as_bytes());
    }
}
