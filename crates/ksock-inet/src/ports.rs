//! The port table: who holds which port on which address, with Linux's conflict rule and
//! its ephemeral range.
//!
//! A binding is an address (one address, or every address of one version, or of both) and
//! a port, per protocol. Two bindings of a port conflict when their addresses overlap,
//! unless both set `SO_REUSEADDR` and (for TCP) neither is listening: Linux's
//! `inet_csk_bind_conflict` without `SO_REUSEPORT`. Connections accepted from a listener
//! hold its port too (so a restarted server needs `SO_REUSEADDR` while they live, as on
//! Linux).

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::net::IpAddr;

/// Linux's default `ip_local_port_range`.
pub const EPHEMERAL: core::ops::RangeInclusive<u16> = 32768..=60999;

/// The transport protocols with ports.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

/// The addresses a binding covers.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Cover {
    /// One address.
    One(IpAddr),
    /// Every IPv4 address (`0.0.0.0`).
    Any4,
    /// Every IPv6 address (`::`), and every IPv4 one too unless `IPV6_V6ONLY`.
    Any6 {
        /// `IPV6_V6ONLY`.
        v6only: bool,
    },
}

impl Cover {
    /// Whether an address of this binding is also one of `other`'s.
    pub fn overlaps(self, other: Cover) -> bool {
        use Cover::*;
        match (self, other) {
            (One(a), One(b)) => a == b,
            (Any4, One(a)) | (One(a), Any4) => a.is_ipv4(),
            (Any6 { v6only }, One(a)) | (One(a), Any6 { v6only }) => a.is_ipv6() || !v6only,
            (Any4, Any4) => true,
            (Any6 { .. }, Any6 { .. }) => true,
            (Any4, Any6 { v6only }) | (Any6 { v6only }, Any4) => !v6only,
        }
    }

    /// Whether the binding receives what is sent to `addr`.
    pub fn covers(self, addr: IpAddr) -> bool {
        self.overlaps(Cover::One(addr))
    }
}

/// A binding's identity, to release it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub struct BindId(u64);

#[derive(Clone, Debug)]
struct Bind {
    id: BindId,
    cover: Cover,
    reuse: bool,
    listening: bool,
}

/// The table.
#[derive(Default, Debug)]
pub struct Ports {
    map: BTreeMap<(Proto, u16), Vec<Bind>>,
    next_id: u64,
    cursor: u16,
}

/// Why a bind failed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum BindError {
    /// The port is held on an overlapping address.
    InUse,
    /// Every ephemeral port is taken.
    Exhausted,
}

impl Ports {
    /// An empty table.
    pub fn new() -> Ports {
        Ports::default()
    }

    fn conflicts(&self, proto: Proto, port: u16, cover: Cover, reuse: bool) -> bool {
        self.map.get(&(proto, port)).is_some_and(|v| {
            v.iter().any(|b| {
                b.cover.overlaps(cover)
                    && !(reuse && b.reuse && (proto == Proto::Udp || !b.listening))
            })
        })
    }

    fn insert(&mut self, proto: Proto, port: u16, cover: Cover, reuse: bool) -> BindId {
        self.next_id += 1;
        let id = BindId(self.next_id);
        self.map.entry((proto, port)).or_default().push(Bind {
            id,
            cover,
            reuse,
            listening: false,
        });
        id
    }

    /// Binds `port` (nonzero) on `cover`.
    pub fn bind(
        &mut self,
        proto: Proto,
        port: u16,
        cover: Cover,
        reuse: bool,
    ) -> Result<BindId, BindError> {
        if self.conflicts(proto, port, cover, reuse) {
            return Err(BindError::InUse);
        }
        Ok(self.insert(proto, port, cover, reuse))
    }

    /// Binds a free ephemeral port on `cover`; returns it. Ports are handed out in turn
    /// from a moving cursor, skipping any port with a binding at all, so a port just
    /// freed is not given again at once.
    pub fn bind_ephemeral(
        &mut self,
        proto: Proto,
        cover: Cover,
        reuse: bool,
    ) -> Result<(u16, BindId), BindError> {
        let (lo, hi) = (*EPHEMERAL.start(), *EPHEMERAL.end());
        let span = u32::from(hi - lo) + 1;
        for i in 0..span {
            let off = (u32::from(self.cursor) + i) % span;
            // `off < span <= 28232`, so this fits.
            let port = lo + off as u16;
            if !self.map.contains_key(&(proto, port)) {
                self.cursor = ((off + 1) % span) as u16;
                return Ok((port, self.insert(proto, port, cover, reuse)));
            }
        }
        Err(BindError::Exhausted)
    }

    /// Adds a binding without checking (a connection accepted on a listener's port).
    pub fn bind_accepted(&mut self, proto: Proto, port: u16, cover: Cover, reuse: bool) -> BindId {
        self.insert(proto, port, cover, reuse)
    }

    /// Marks a binding as listening (or not). `Err(InUse)` if another binding of the port
    /// now conflicts with it (both had `SO_REUSEADDR`: Linux refuses the `listen`).
    pub fn set_listening(
        &mut self,
        proto: Proto,
        port: u16,
        id: BindId,
        on: bool,
    ) -> Result<(), BindError> {
        let Some(v) = self.map.get_mut(&(proto, port)) else {
            return Ok(());
        };
        let Some(me) = v.iter().find(|b| b.id == id).cloned() else {
            return Ok(());
        };
        if on
            && v.iter()
                .any(|b| b.id != id && b.cover.overlaps(me.cover) && b.listening)
        {
            return Err(BindError::InUse);
        }
        for b in v.iter_mut().filter(|b| b.id == id) {
            b.listening = on;
        }
        Ok(())
    }

    /// Releases a binding.
    pub fn release(&mut self, proto: Proto, port: u16, id: BindId) {
        if let Some(v) = self.map.get_mut(&(proto, port)) {
            v.retain(|b| b.id != id);
            if v.is_empty() {
                self.map.remove(&(proto, port));
            }
        }
    }

    /// How many bindings exist (for leak checks).
    pub fn len(&self) -> usize {
        self.map.values().map(Vec::len).sum()
    }

    /// Whether no port is bound.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, Ipv6Addr};

    const LO4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
    const LO6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

    #[test]
    fn covers_follow_linux() {
        assert!(Cover::Any6 { v6only: false }.overlaps(Cover::One(LO4)));
        assert!(!Cover::Any6 { v6only: true }.overlaps(Cover::One(LO4)));
        assert!(Cover::Any6 { v6only: true }.overlaps(Cover::One(LO6)));
        assert!(!Cover::Any4.overlaps(Cover::One(LO6)));
        assert!(Cover::Any4.overlaps(Cover::Any6 { v6only: false }));
        assert!(!Cover::Any4.overlaps(Cover::Any6 { v6only: true }));
        assert!(!Cover::One(LO4).overlaps(Cover::One(LO6)));
    }

    #[test]
    fn reuseaddr_needs_both_and_no_listener() {
        let mut p = Ports::new();
        let a = p.bind(Proto::Tcp, 80, Cover::Any4, true).unwrap();
        assert_eq!(
            p.bind(Proto::Tcp, 80, Cover::One(LO4), false),
            Err(BindError::InUse)
        );
        let b = p.bind(Proto::Tcp, 80, Cover::One(LO4), true).unwrap();
        p.release(Proto::Tcp, 80, b);
        p.set_listening(Proto::Tcp, 80, a, true).unwrap();
        assert_eq!(
            p.bind(Proto::Tcp, 80, Cover::One(LO4), true),
            Err(BindError::InUse)
        );
        // Another protocol's port of the same number is another port.
        assert!(p.bind(Proto::Udp, 80, Cover::One(LO4), false).is_ok());
        // UDP: both reuse, listening or not.
        let mut p = Ports::new();
        p.bind(Proto::Udp, 53, Cover::Any4, true).unwrap();
        assert!(p.bind(Proto::Udp, 53, Cover::Any4, true).is_ok());
    }

    #[test]
    fn ephemeral_ports_rotate_and_run_out() {
        let mut p = Ports::new();
        let (a, ida) = p.bind_ephemeral(Proto::Tcp, Cover::Any4, false).unwrap();
        let (b, _) = p.bind_ephemeral(Proto::Tcp, Cover::Any4, false).unwrap();
        assert!(EPHEMERAL.contains(&a) && EPHEMERAL.contains(&b) && a != b);
        p.release(Proto::Tcp, a, ida);
        let (c, _) = p.bind_ephemeral(Proto::Tcp, Cover::Any4, false).unwrap();
        assert_ne!(c, a, "a port just freed is not handed out again at once");
        while p.bind_ephemeral(Proto::Tcp, Cover::Any4, false).is_ok() {}
        assert_eq!(p.len(), EPHEMERAL.count());
        assert_eq!(
            p.bind_ephemeral(Proto::Tcp, Cover::Any4, false),
            Err(BindError::Exhausted)
        );
    }
}
