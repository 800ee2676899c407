//! Mbuf chains: shared, zero-copy byte slices, over [`ksock::Chain`].

use alloc::vec::Vec;
use bytes::Bytes;
use core::fmt;
use core::ops::{Deref, DerefMut};
use ksock::Chain;

/// An mbuf chain (XNU `mbuf_t`): a chain of shared byte slices.
///
/// Ownership follows the KPI's rules, enforced by the type system:
/// - [`sock_sendmbuf`](crate::sock_sendmbuf) takes the chain by value and always consumes
///   it: on success its slices move into the peer's queue without a copy (a partial stream
///   send drops the rest), on every error they are dropped before the call returns.
/// - [`sock_receivembuf`](crate::sock_receivembuf) hands back a chain the caller owns; its
///   slices share the sender's memory, which is freed when the last slice is dropped.
///
/// It dereferences to [`Chain`] for everything else (length, slices, splitting).
#[derive(Clone, Default)]
pub struct Mbuf(Chain);

impl Mbuf {
    /// An empty chain.
    pub const fn new() -> Mbuf {
        Mbuf(Chain::new())
    }

    /// The chain inside.
    pub fn into_chain(self) -> Chain {
        self.0
    }
}

impl Deref for Mbuf {
    type Target = Chain;

    fn deref(&self) -> &Chain {
        &self.0
    }
}

impl DerefMut for Mbuf {
    fn deref_mut(&mut self) -> &mut Chain {
        &mut self.0
    }
}

impl From<Chain> for Mbuf {
    fn from(c: Chain) -> Self {
        Mbuf(c)
    }
}

impl From<Mbuf> for Chain {
    fn from(m: Mbuf) -> Self {
        m.0
    }
}

impl From<Bytes> for Mbuf {
    fn from(b: Bytes) -> Self {
        Mbuf(Chain::from(b))
    }
}

impl From<Vec<u8>> for Mbuf {
    fn from(v: Vec<u8>) -> Self {
        Mbuf(Chain::from(v))
    }
}

impl From<&'static [u8]> for Mbuf {
    fn from(s: &'static [u8]) -> Self {
        Mbuf(Chain::from(s))
    }
}

impl FromIterator<Bytes> for Mbuf {
    fn from_iter<I: IntoIterator<Item = Bytes>>(iter: I) -> Self {
        Mbuf(iter.into_iter().collect())
    }
}

impl PartialEq<[u8]> for Mbuf {
    fn eq(&self, other: &[u8]) -> bool {
        self.0 == *other
    }
}

impl fmt::Debug for Mbuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Mbuf({} bytes in {} slices)",
            self.0.len(),
            self.0.segment_count()
        )
    }
}
