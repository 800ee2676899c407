//! An in-kernel style echo server that runs entirely in upcalls, and a client that talks to
//! it with mbuf chains.
//!
//! The listener's upcall accepts (`MSG_DONTWAIT`) and gives each connection an upcall that
//! echoes whatever arrived by sending the received chain straight back: no thread of its
//! own, no copy.
//!
//! Run: `cargo run -p ksock-kpi --example upcall_echo [messages]`

use ksock::{Domain, Errno, MsgFlags, SockAddr, SockType, Stack};
use ksock_kpi::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Server {
    conns: Mutex<Vec<Sock>>,
    upcalls: AtomicUsize,
}

fn echo(so: &Sock, srv: &Arc<Server>, _: WaitF) {
    srv.upcalls.fetch_add(1, Ordering::Relaxed);
    loop {
        match sock_receivembuf(so, None, 64 * 1024, MsgFlags::DONTWAIT) {
            Ok(m) if m.is_empty() => {
                // End of file: forget the connection (it closes when this upcall returns).
                let gone = {
                    let mut conns = srv.conns.lock().unwrap();
                    let at = conns.iter().position(|c| c.same_socket(so));
                    at.map(|i| conns.swap_remove(i))
                };
                drop(gone);
                return;
            }
            Ok(m) => {
                if let Err(e) = sock_sendmbuf(so, None, m, MsgFlags::DONTWAIT) {
                    eprintln!("echo: {e:#}");
                }
            }
            Err(e) if e == Errno::EWOULDBLOCK => return,
            // The last upcall, on a connection that has closed.
            Err(e) if e == Errno::EBADF => return,
            Err(e) => return eprintln!("echo: {e:#}"),
        }
    }
}

fn accept_all(l: &Sock, srv: &Arc<Server>, _: WaitF) {
    srv.upcalls.fetch_add(1, Ordering::Relaxed);
    let up = SockUpcall::new(srv.clone(), echo);
    while let Ok((conn, _)) = sock_accept(l, None, MsgFlags::DONTWAIT, Some(up.clone())) {
        srv.conns.lock().unwrap().push(conn);
    }
}

fn main() -> Result<(), Errno> {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000);
    let kpi = Kpi::with_threads(Stack::new());
    let name = SockAddr::local("echo")?;

    let srv = Arc::new(Server::default());
    let up = SockUpcall::new(srv.clone(), accept_all);
    let listener = sock_socket(&kpi, Domain::LOCAL, SockType::STREAM, 0, Some(up))?;
    sock_bind(&listener, &name)?;
    sock_listen(&listener, 16)?;

    let client = sock_socket(&kpi, Domain::LOCAL, SockType::STREAM, 0, None)?;
    sock_connect(&client, &name, MsgFlags::empty())?;
    let mut bytes = 0;
    for i in 0..n {
        let msg = format!("message {i}");
        sock_sendmbuf(
            &client,
            None,
            Mbuf::from(msg.clone().into_bytes()),
            MsgFlags::empty(),
        )?;
        let reply = sock_receivembuf(&client, None, msg.len(), MsgFlags::WAITALL)?;
        assert_eq!(reply.to_vec(), msg.as_bytes());
        bytes += reply.len();
    }
    println!(
        "echoed {n} messages ({bytes} bytes); server upcalls: {}; connections: {}",
        srv.upcalls.load(Ordering::Relaxed),
        srv.conns.lock().unwrap().len()
    );

    sock_close(client);
    sock_close(listener);
    println!(
        "after closing: connections {}, sockets open {}",
        srv.conns.lock().unwrap().len(),
        kpi.stack().socket_count()
    );
    Ok(())
}
