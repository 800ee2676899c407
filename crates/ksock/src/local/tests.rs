//! Tests of the local family across its socket types: accounts (queued bytes and socket
//! counts).

use crate::{Account, Domain, Errno, MsgFlags, SockAddr, SockType, Stack};
use alloc::vec;

const OVERHEAD: usize = super::queue::RECORD_OVERHEAD;

#[test]
fn stream_bytes_are_charged_until_read_and_a_write_fits_partly() {
    let st = Stack::new();
    let acct = Account::new(10, 10_000);
    let (a, b) = st.socketpair(Domain::LOCAL, SockType::STREAM, 0).unwrap();
    a.set_account(acct.clone()).unwrap();
    assert_eq!(acct.sockets(), 1);
    assert_eq!(
        a.send(&[1u8; 6000]),
        Ok(6000),
        "large: copied outside the lock"
    );
    assert_eq!(a.send(&[2u8; 6000]), Ok(4000), "the part that fits");
    assert_eq!(acct.bytes(), 10_000);
    assert_eq!(
        a.sendmsg(&mut &[3u8; 10][..], None, MsgFlags::DONTWAIT),
        Err(Errno::ENOBUFS)
    );
    let mut buf = vec![0u8; 7000];
    assert_eq!(b.recv(&mut buf), Ok(7000));
    assert_eq!(acct.bytes(), 3000);
    assert_eq!(a.send(&[4u8; 100]), Ok(100), "small: packed");
    assert_eq!(acct.bytes(), 3100);
    // Closing with unread data drops it: every byte comes back.
    drop(b);
    assert_eq!(acct.bytes(), 0);
    drop(a);
    assert_eq!((acct.sockets(), acct.bytes()), (0, 0));
}

#[test]
fn records_go_whole_or_fail_with_enobufs() {
    let st = Stack::new();
    let acct = Account::new(10, 2 * (100 + OVERHEAD) + 50);
    for ty in [SockType::SEQPACKET, SockType::DGRAM] {
        let (a, b) = st.socketpair(Domain::LOCAL, ty, 0).unwrap();
        a.set_account(acct.clone()).unwrap();
        assert_eq!(a.send(&[1u8; 100]), Ok(100));
        assert_eq!(a.send(&[2u8; 100]), Ok(100));
        assert_eq!(acct.bytes(), 2 * (100 + OVERHEAD));
        assert_eq!(a.send(&[3u8; 100]), Err(Errno::ENOBUFS), "{ty:?}");
        let mut buf = [0u8; 10];
        assert_eq!(b.recv(&mut buf), Ok(10), "truncated: the rest is dropped");
        assert_eq!(acct.bytes(), 100 + OVERHEAD, "{ty:?}");
        assert_eq!(a.send(&[4u8; 5000]), Err(Errno::ENOBUFS), "{ty:?}");
        drop(b);
        assert_eq!(acct.bytes(), 0, "{ty:?}: dropped with the receiver");
        drop(a);
    }
    assert_eq!((acct.sockets(), acct.bytes()), (0, 0));
}

#[test]
fn bytes_queued_to_a_connection_never_accepted_come_back_on_reset() {
    let st = Stack::new();
    let server = Account::new(10, 1 << 20);
    let client = Account::new(10, 1 << 20);
    let l = st.socket(Domain::LOCAL, SockType::STREAM, 0).unwrap();
    l.set_account(server.clone()).unwrap();
    l.bind(&SockAddr::local("acct").unwrap()).unwrap();
    l.listen(4).unwrap();
    let mut cs = vec![];
    for _ in 0..3 {
        let c = st.socket(Domain::LOCAL, SockType::STREAM, 0).unwrap();
        c.set_account(client.clone()).unwrap();
        c.connect(&SockAddr::local("acct").unwrap()).unwrap();
        assert_eq!(c.send(&[7u8; 9000]), Ok(9000));
        cs.push(c);
    }
    assert_eq!(client.bytes(), 27_000);
    assert_eq!(server.sockets(), 1, "not accepted: not counted");
    // One is accepted; it joins the listener's account.
    let (conn, _) = l.accept().unwrap();
    assert_eq!(server.sockets(), 2);
    assert_eq!(conn.send(b"hello"), Ok(5));
    assert_eq!(server.bytes(), 5);
    drop(conn);
    assert_eq!(
        client.bytes(),
        18_000,
        "the accepted one's unread bytes dropped"
    );
    drop(l);
    assert_eq!(client.bytes(), 0, "the rest reset with the listener");
    assert_eq!(server.sockets(), 0);
    let mut buf = [0u8; 8];
    assert_eq!(
        cs[0].recv(&mut buf),
        Ok(5),
        "what the server sent is still there"
    );
    assert_eq!(server.bytes(), 0);
    drop(cs);
    assert_eq!((client.sockets(), client.bytes()), (0, 0));
    assert_eq!(st.socket_count(), 0);
}

#[test]
fn accept_at_the_socket_limit_is_emfile_and_dequeues_nothing() {
    let st = Stack::new();
    let acct = Account::new(2, 1 << 20);
    let l = st.socket(Domain::LOCAL, SockType::SEQPACKET, 0).unwrap();
    l.set_account(acct.clone()).unwrap();
    l.bind(&SockAddr::local("lim").unwrap()).unwrap();
    l.listen(4).unwrap();
    let c1 = st.socket(Domain::LOCAL, SockType::SEQPACKET, 0).unwrap();
    c1.connect(&SockAddr::local("lim").unwrap()).unwrap();
    let c2 = st.socket(Domain::LOCAL, SockType::SEQPACKET, 0).unwrap();
    c2.connect(&SockAddr::local("lim").unwrap()).unwrap();
    c2.send(b"second").unwrap();
    let (a1, _) = l.try_accept().unwrap();
    assert_eq!(l.try_accept().unwrap_err(), Errno::EMFILE);
    assert_eq!(l.info().unwrap().queues.pending, 1, "still queued");
    let other = st.socket(Domain::LOCAL, SockType::SEQPACKET, 0).unwrap();
    assert_eq!(other.set_account(acct.clone()), Err(Errno::EMFILE));
    drop(a1);
    let (a2, _) = l.try_accept().unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(a2.recv(&mut buf), Ok(6));
    assert_eq!(a2.set_account(Account::new(9, 9)), Err(Errno::EINVAL));
    drop((a2, l, c1, c2, other));
    assert_eq!((acct.sockets(), acct.bytes()), (0, 0));
}

#[test]
fn datagrams_to_a_closing_receiver_are_credited() {
    let st = Stack::new();
    let acct = Account::new(10, 1 << 20);
    let rx = st.socket(Domain::LOCAL, SockType::DGRAM, 0).unwrap();
    rx.bind(&SockAddr::local("dg").unwrap()).unwrap();
    let tx = st.socket(Domain::LOCAL, SockType::DGRAM, 0).unwrap();
    tx.set_account(acct.clone()).unwrap();
    let to = SockAddr::local("dg").unwrap();
    for n in [10usize, 5000] {
        assert_eq!(tx.send_to(&vec![1u8; n], &to), Ok(n));
    }
    assert_eq!(acct.bytes(), 5010 + 2 * OVERHEAD);
    drop(rx);
    assert_eq!(acct.bytes(), 0);
    drop(tx);
    assert_eq!(acct.sockets(), 0);
}

/// `Socket::autobind` is the family's: the first free name of five hex digits, in
/// order from where the last one stopped, one counter for the namespace (Linux's
/// `unix_autobind`, which the POSIX face reports as the abstract `"\0xxxxx"`).
#[test]
fn autobind_picks_the_next_free_name() {
    let st = Stack::new();
    let name = |n: &str| SockAddr::local(n).unwrap();
    let types = [SockType::STREAM, SockType::SEQPACKET, SockType::DGRAM];
    let socks: alloc::vec::Vec<_> = types
        .iter()
        .map(|&ty| st.socket(Domain::LOCAL, ty, 0).unwrap())
        .collect();
    let taken = st.socket(Domain::LOCAL, SockType::DGRAM, 0).unwrap();
    taken.bind(&name("00001")).unwrap();
    for (s, want) in socks.iter().zip(["00000", "00002", "00003"]) {
        assert_eq!(s.autobind(), Ok(()));
        assert_eq!(
            s.local_addr(),
            Ok(name(want)),
            "{}: a taken name is skipped",
            s.ty()
        );
        assert_eq!(s.state(), crate::State::Bound);
        // Bound already: the call succeeds and the name stays.
        assert_eq!(s.autobind(), Ok(()));
        assert_eq!(s.local_addr(), Ok(name(want)));
        // A named bind of a bound socket is still EINVAL.
        assert_eq!(s.bind(&name("else")), Err(Errno::EINVAL));
    }
    // An autobound name is an ordinary name: a listener there takes connections.
    socks[0].listen(1).unwrap();
    let c = st.socket(Domain::LOCAL, SockType::STREAM, 0).unwrap();
    c.connect(&name("00000")).unwrap();
    // A freed name is not tried again until the counter comes round.
    drop(socks);
    let again = st.socket(Domain::LOCAL, SockType::STREAM, 0).unwrap();
    again.autobind().unwrap();
    assert_eq!(again.local_addr(), Ok(name("00004")));
    // A connected socket without a name: the state decides, as for a named bind.
    let (p, _q) = st.socketpair(Domain::LOCAL, SockType::STREAM, 0).unwrap();
    assert_eq!(p.autobind(), p.bind(&name("pair")));
    assert_eq!(p.local_addr(), Ok(SockAddr::Unnamed));
    // No address is not a name: a bind of it stays EINVAL.
    let u = st.socket(Domain::LOCAL, SockType::DGRAM, 0).unwrap();
    assert_eq!(u.bind(&SockAddr::Unnamed), Err(Errno::EINVAL));
    assert_eq!(u.local_addr(), Ok(SockAddr::Unnamed));
}

#[test]
fn autobind_names_are_five_lowercase_hex_digits() {
    assert_eq!(&super::hex5(0), b"00000");
    assert_eq!(&super::hex5(0xabcde), b"abcde");
    assert_eq!(&super::hex5(0xF_FFFF), b"fffff");
    assert_eq!(&super::hex5(0x10_0001), b"00001", "the low 20 bits");
}
