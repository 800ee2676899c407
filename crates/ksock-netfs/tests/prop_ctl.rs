//! The ctl grammar's properties (`props/ctl.rs`, also the fuzz target `ctl`) on generated
//! writes: arbitrary bytes, and writes made of the grammar's own pieces.

mod props {
    pub mod ctl;
}

use props::ctl::check_ctl;
use proptest::prelude::*;

/// Pieces of the grammar, so that generated writes reach past the tokenizer.
fn piece() -> impl Strategy<Value = Vec<u8>> {
    let fixed = proptest::sample::select(vec![
        &b"bind"[..],
        b"connect",
        b"listen",
        b"shutdown",
        b"hangup",
        b"nonblock",
        b"headers",
        b"rd",
        b"wr",
        b"rdwr",
        b"on",
        b"off",
        b"&&",
        b" ",
        b"\t",
        b"\n",
        b"\"",
        b"'",
        b"\\",
        b"\\x",
        b"\\x4",
        b"\\x41",
        b"\\\n",
        b"0",
        b"7",
        b"4096",
        b"99999999999999999999999",
    ]);
    prop_oneof![
        4 => fixed.prop_map(<[u8]>::to_vec),
        1 => proptest::collection::vec(any::<u8>(), 1..6),
    ]
}

fn write() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(piece(), 0..16).prop_map(|p| p.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes(input in proptest::collection::vec(any::<u8>(), 0..300)) {
        check_ctl(&input);
    }

    #[test]
    fn grammar_pieces(input in write()) {
        check_ctl(&input);
    }
}

#[test]
fn sizes_and_edges() {
    for input in [
        &b""[..],
        b" ",
        b"&&",
        b"\\",
        b"\"",
        b"listen 0",
        b"listen 128",
        b"bind \"\"",
        b"bind \\x",
        b"bind \"\\x",
        b"headers on && nonblock off && shutdown rdwr && hangup",
    ] {
        check_ctl(input);
    }
    let mut long = b"bind ".to_vec();
    long.resize(4096, b'\x01');
    check_ctl(&long);
    long.push(b'a');
    check_ctl(&long);
}

/// Found by the property: the local name `&&` printed as `&&`, which the grammar reads as
/// the separator (`connect &&` was `EINVAL` instead of a connect to that name).
#[test]
fn a_name_spelled_like_the_separator_reads_back() {
    props::ctl::check_commands_of(b"&&");
    let text = format!("connect {}", ksock::SockAddr::local(b"&&").unwrap());
    let cmds = ksock_netfs::ctl::split(text.as_bytes()).unwrap();
    assert_eq!(
        ksock_netfs::ctl::command(&cmds[0]),
        Ok(ksock_netfs::ctl::Command::Connect(b"&&".to_vec()))
    );
}
