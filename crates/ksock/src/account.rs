//! Accounts: limits shared by a group of sockets (a face gives each user one).
//!
//! An [`Account`] counts the sockets attached to it and the bytes they have queued in socket
//! buffers that nobody has read yet (records counted with their per-record overhead, as
//! against the send buffer). A face attaches one to a socket with
//! [`Socket::set_account`](crate::Socket::set_account); a socket accepted from a listener
//! with an account joins the listener's account. Past the socket limit, attaching (or
//! accepting) fails with `EMFILE`; past the byte limit a send fails with `ENOBUFS` (a stream
//! send that fits partly sends the part).
//!
//! Bytes are charged when queued and credited when read or dropped (a reset, a close with
//! unread data): an account whose sockets have all ended and whose bytes were all read or
//! dropped reads zero on both counts. A socket without an account pays one branch.

use crate::errno::{Errno, Result};
use crate::sync::atomic::{AtomicUsize, Ordering};
use alloc::sync::Arc;
use core::fmt;

/// Socket and byte counts with their limits. Share it with `Arc`.
pub struct Account {
    sockets: AtomicUsize,
    bytes: AtomicUsize,
    max_sockets: usize,
    max_bytes: usize,
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("sockets", &self.sockets())
            .field("max_sockets", &self.max_sockets)
            .field("bytes", &self.bytes())
            .field("max_bytes", &self.max_bytes)
            .finish()
    }
}

impl Account {
    /// An account for at most `max_sockets` sockets and `max_bytes` queued bytes.
    pub fn new(max_sockets: usize, max_bytes: usize) -> Arc<Account> {
        Arc::new(Account {
            sockets: AtomicUsize::new(0),
            bytes: AtomicUsize::new(0),
            max_sockets,
            max_bytes,
        })
    }

    /// Sockets attached now.
    pub fn sockets(&self) -> usize {
        self.sockets.load(Ordering::Acquire)
    }

    /// Bytes queued now.
    pub fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Acquire)
    }

    /// The socket limit.
    pub fn max_sockets(&self) -> usize {
        self.max_sockets
    }

    /// The byte limit.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Counts one more socket: `EMFILE` at the limit (nothing counted).
    pub(crate) fn open_socket(&self) -> Result<()> {
        self.sockets
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_sockets).then_some(n + 1)
            })
            .map(|_| ())
            .map_err(|_| Errno::EMFILE)
    }

    /// Counts one socket less.
    pub(crate) fn close_socket(&self) {
        let _ = self
            .sockets
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }

    /// Charges as many of `want` bytes as the limit allows; returns how many.
    pub(crate) fn charge_upto(&self, want: usize) -> usize {
        let mut cur = self.bytes.load(Ordering::Relaxed);
        loop {
            let k = want.min(self.max_bytes.saturating_sub(cur));
            if k == 0 {
                return 0;
            }
            match self.bytes.compare_exchange_weak(
                cur,
                cur + k,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return k,
                Err(now) => cur = now,
            }
        }
    }

    /// Charges `n` bytes, all or nothing: `ENOBUFS` if they do not fit.
    pub(crate) fn charge_all(&self, n: usize) -> Result<()> {
        self.bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |cur| {
                cur.checked_add(n).filter(|&t| t <= self.max_bytes)
            })
            .map(|_| ())
            .map_err(|_| Errno::ENOBUFS)
    }

    /// Charges `n` bytes whatever the limit (bytes already queued that an account adopts).
    pub(crate) fn force_charge(&self, n: usize) {
        if n > 0 {
            self.bytes.fetch_add(n, Ordering::AcqRel);
        }
    }

    /// Credits `n` bytes read or dropped.
    pub(crate) fn credit(&self, n: usize) {
        if n > 0 {
            let _ = self
                .bytes
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |cur| {
                    Some(cur.saturating_sub(n))
                });
        }
    }
}

/// Bytes charged to an account, credited back when this is dropped (a queued datagram
/// carries one, so whichever way the record goes, its bytes come back; a family whose
/// buffers are allocated whole, as smoltcp's are, holds one per connection for them).
pub struct Charge {
    acct: Arc<Account>,
    n: usize,
}

impl Charge {
    /// Charges `n` bytes to `acct`, all or nothing (`ENOBUFS`).
    pub fn take(acct: &Arc<Account>, n: usize) -> Result<Charge> {
        acct.charge_all(n)?;
        Ok(Charge {
            acct: acct.clone(),
            n,
        })
    }
}

impl fmt::Debug for Charge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Charge({} bytes)", self.n)
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.acct.credit(self.n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockets_stop_at_the_limit_and_come_back() {
        let a = Account::new(2, 0);
        assert_eq!(a.open_socket(), Ok(()));
        assert_eq!(a.open_socket(), Ok(()));
        assert_eq!(a.open_socket(), Err(Errno::EMFILE));
        assert_eq!(a.sockets(), 2);
        a.close_socket();
        assert_eq!(a.open_socket(), Ok(()));
        a.close_socket();
        a.close_socket();
        a.close_socket();
        assert_eq!(a.sockets(), 0, "never below zero");
    }

    #[test]
    fn bytes_partly_or_whole() {
        let a = Account::new(1, 100);
        assert_eq!(a.charge_upto(60), 60);
        assert_eq!(a.charge_upto(60), 40, "the part that fits");
        assert_eq!(a.charge_upto(1), 0);
        assert_eq!(a.charge_all(1), Err(Errno::ENOBUFS));
        a.credit(50);
        assert_eq!(a.charge_all(51), Err(Errno::ENOBUFS), "all or nothing");
        assert_eq!(a.charge_all(50), Ok(()));
        a.credit(100);
        assert_eq!(a.bytes(), 0);
        a.force_charge(500);
        assert_eq!(a.bytes(), 500, "adopted bytes may exceed the limit");
        a.credit(500);
        let c = Charge::take(&a, 70).unwrap();
        assert!(Charge::take(&a, 31).is_err());
        drop(c);
        assert_eq!(a.bytes(), 0, "a charge is credited when dropped");
    }
}
