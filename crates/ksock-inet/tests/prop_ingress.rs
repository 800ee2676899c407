//! Properties of the inet family's ingress (`props/ingress.rs`, also the fuzz target
//! `ingress`) on generated programs of injected frames, data and time.

mod props {
    pub mod ingress;
}

use props::ingress::check_ingress;
use proptest::prelude::*;

/// One step of a program: an opcode and enough bytes for its fields, often small so that
/// segments land near the sequence numbers in use.
fn step() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<u8>(),
        proptest::collection::vec(any::<u8>(), 12..24),
        0usize..12,
    )
        .prop_map(|(op, mut fields, small)| {
            for f in fields.iter_mut().skip(1).take(small) {
                *f %= 4;
            }
            [vec![op], fields].concat()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_programs(data in proptest::collection::vec(any::<u8>(), 0..200)) {
        check_ingress(&data);
    }

    #[test]
    fn programs_of_steps(steps in proptest::collection::vec(step(), 0..12)) {
        check_ingress(&steps.concat());
    }
}

// Named programs (see `props/ingress.rs` for the opcodes: `op % 12` picks the step, the
// other bits of `op` are its flags). `check_ingress` returns whether the connection's data
// was checked, that is whether nothing injected could have changed it.

const FIN: u8 = 0x01;
const RST: u8 = 0x04;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;

#[test]
fn nothing_injected() {
    assert!(check_ingress(&[]));
    // Data both ways and time, with nothing injected.
    assert!(check_ingress(&[6, 10, 7, 10, 8, 200, 9, 20, 11]));
}

#[test]
fn a_reset_in_the_window_ends_the_connection() {
    // Client to server, at the server's RCV.NXT, acknowledging what it sent.
    assert!(!check_ingress(&[1, RST | ACK, 0, 0, 0, 0, 0x10, 0, 0, 0]));
}

#[test]
fn resets_outside_the_window_change_nothing() {
    // 32768 bytes behind the window.
    assert!(check_ingress(&[1, RST | ACK, 0x80, 0, 0, 0, 0x10, 0, 0, 0]));
    // Far from it (the sequence number's high half flipped).
    assert!(check_ingress(&[0x49, RST, 0x40, 0, 0, 0, 0x10, 0, 0, 0]));
    // A FIN with an acknowledgement of data never sent.
    assert!(check_ingress(&[1, FIN | ACK, 0, 0, 0x10, 0, 0x10, 0, 0, 0]));
}

/// Found by the property: five bytes injected into the server's window, from the client's
/// address, are acknowledged by the server past anything the client sent; the client
/// drops those acknowledgements, and the two sides never agree again. After both close,
/// each side's orphan retransmitted its FIN forever (no timeout once established); an
/// orphan now gives up after `CONNECT_TIMEOUT` of silence, so nothing is left.
#[test]
fn a_desynchronized_connection_is_given_up_after_close() {
    let mut program = vec![1, PSH | ACK, 0, 0, 0, 0, 0x10, 0, 0, 5];
    program.extend_from_slice(b"hello");
    program.extend_from_slice(&[8, 10]);
    assert!(!check_ingress(&program));
}

#[test]
fn a_zero_window_from_the_server_then_data() {
    // Server to client: window 0. The client probes until the real window comes back.
    assert!(check_ingress(&[
        0x19, ACK, 0, 0, 0, 0, 0, 0, 0, 0, 6, 50, 9, 100
    ]));
}

#[test]
fn icmp_errors() {
    // Port unreachable for the connected UDP socket's datagram, over IPv4 (it reads
    // ECONNREFUSED next) and as ICMPv6 quoting mapped addresses.
    assert!(check_ingress(&[0x84, 0, 3, 0, 10]));
    assert!(check_ingress(&[0x90, 0, 4, 0, 10]));
    // Quoting the TCP connection's segment (TCP takes no ICMP errors), and the
    // unconnected UDP socket's datagram to some port.
    assert!(check_ingress(&[0x84, 1, 3, 0, 6, 10, 8, 40]));
    assert!(check_ingress(&[0x84, 2, 0x12, 0x34, 3, 0, 10]));
    // Other types and codes.
    assert!(check_ingress(&[0x84, 0, 0x80, 0, 0x84, 0, 0xff, 0, 10]));
}

/// Found by the fuzz target `ingress`: injected segments give the client a FIN
/// (CLOSE-WAIT), then a reset; the client's next receive failed with `EPIPE`, which
/// Linux's `recv` never gives there: it reads end of file (`tcp_recvmsg` checks
/// `SOCK_DONE` before `sk_err`), and the `EPIPE` goes to the next send.
#[test]
fn a_reset_after_the_peers_fin_reads_as_end_of_file() {
    check_ingress(&[
        6, 10, 241, 241, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 1, 20, 1, 0, 0, 0, 127,
        113, 0, 1, 0, 0, 0, 0, 0, 94, 235, 12, 159, 247, 0, 10, 255, 255, 255, 255, 255, 255, 255,
        0, 0, 0, 0, 0, 143, 233, 255, 8, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5,
        5, 5, 5, 5, 5, 5, 8, 5, 5, 5, 5, 5, 5, 5, 136, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5,
        5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5,
        5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 251, 113, 5, 5, 5, 5, 200, 9, 6,
        10, 5, 5, 5, 5, 5, 5, 5, 5, 10, 47, 8, 200, 244, 17, 25, 39, 4, 47, 4, 11, 5, 5, 5, 5, 5,
        5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 251,
        113, 65,
    ]);
}
