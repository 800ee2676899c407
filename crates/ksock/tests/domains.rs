//! A family may serve several domains (an inet family serves `AF_INET` and `AF_INET6`):
//! the stack finds it for each, it makes sockets in the domain asked for, and no other
//! family may take one of its domains.

use ksock::buf::{RecvSink, SendBuf};
use ksock::family::{Accepted, OpCtx, Progress, Protocol, SockRef};
use ksock::opt::Options;
use ksock::stack::StackRef;
use ksock::*;
use std::sync::Arc;

/// Sockets that do nothing, of whichever of the two inet domains they were made in.
struct Both;

struct Idle;

impl Protocol for Idle {
    fn bind(&mut self, _: &mut OpCtx<'_>, _: &SockAddr) -> Result<()> {
        Ok(())
    }
    fn listen(&mut self, _: &mut OpCtx<'_>, _: usize) -> Result<()> {
        Ok(())
    }
    fn connect(&mut self, _: &mut OpCtx<'_>, _: &SockAddr) -> Result<Progress> {
        Err(Errno::ECONNREFUSED)
    }
    fn accept(&mut self, _: &mut OpCtx<'_>) -> Result<Accepted> {
        Err(Errno::EAGAIN)
    }
    fn send(
        &mut self,
        _: &mut OpCtx<'_>,
        _: SendBuf<'_>,
        _: Option<&SockAddr>,
        _: MsgFlags,
    ) -> Result<usize> {
        Err(Errno::ENOTCONN)
    }
    fn recv(&mut self, _: &mut OpCtx<'_>, _: &mut dyn RecvSink, _: MsgFlags) -> Result<RecvInfo> {
        Err(Errno::ENOTCONN)
    }
    fn shutdown(&mut self, _: &mut OpCtx<'_>, _: Shutdown) -> Result<()> {
        Err(Errno::ENOTCONN)
    }
    fn close(&mut self, _: &mut OpCtx<'_>) {}
    fn readiness(&self, _: &Options) -> Events {
        Events::OUT
    }
    fn local_addr(&self) -> SockAddr {
        SockAddr::Unnamed
    }
    fn peer_addr(&self) -> Option<SockAddr> {
        None
    }
    fn take_error(&mut self) -> Option<Errno> {
        None
    }
    fn has_error(&self) -> bool {
        false
    }
    fn queues(&self) -> Queues {
        Queues::default()
    }
    fn nread(&self) -> usize {
        0
    }
}

impl Family for Both {
    fn domain(&self) -> Domain {
        Domain::INET
    }
    fn domains(&self) -> &[Domain] {
        &[Domain::INET, Domain::INET6]
    }
    fn name(&self) -> &'static str {
        "both"
    }
    fn types(&self) -> &'static [SockType] {
        &[SockType::STREAM]
    }
    fn create(&self, stack: &StackRef, ty: SockType, protocol: i32) -> Result<SockRef> {
        self.create_in(stack, Domain::INET, ty, protocol)
    }
    fn create_in(&self, stack: &StackRef, domain: Domain, ty: SockType, _: i32) -> Result<SockRef> {
        assert!(self.serves(domain), "the stack asks only for its domains");
        Ok(SocketCore::new(stack, domain, ty, 0, Idle))
    }
    fn parse_addr(&self, _: &[u8]) -> Result<SockAddr> {
        Err(Errno::EINVAL)
    }
    fn listening(&self) -> Vec<SockAddr> {
        Vec::new()
    }
}

/// A family of one domain that says nothing about `domains`.
struct Six;

impl Family for Six {
    fn domain(&self) -> Domain {
        Domain::INET6
    }
    fn name(&self) -> &'static str {
        "six"
    }
    fn types(&self) -> &'static [SockType] {
        &[SockType::STREAM]
    }
    fn create(&self, stack: &StackRef, ty: SockType, _: i32) -> Result<SockRef> {
        Ok(SocketCore::new(stack, Domain::INET6, ty, 0, Idle))
    }
    fn parse_addr(&self, _: &[u8]) -> Result<SockAddr> {
        Err(Errno::EINVAL)
    }
    fn listening(&self) -> Vec<SockAddr> {
        Vec::new()
    }
}

#[test]
fn one_family_serves_both_domains() {
    let st = Stack::new();
    st.register_family(Arc::new(Both)).unwrap();
    for d in [Domain::INET, Domain::INET6] {
        assert_eq!(st.family(d).map(|f| f.name()), Some("both"));
        let s = st.socket(d, SockType::STREAM, 0).unwrap();
        assert_eq!(s.domain(), d, "made in the domain asked for");
    }
    assert_eq!(st.family(Domain::LOCAL).map(|f| f.name()), Some("local"));
    assert!(st.family(Domain::from_raw(40)).is_none());
    assert_eq!(
        st.socket(Domain::from_raw(40), SockType::STREAM, 0).err(),
        Some(Errno::EAFNOSUPPORT)
    );
    assert_eq!(st.socket_count(), 0);
}

#[test]
fn a_domain_is_served_by_one_family() {
    // The second domain of a family conflicts as its first does, whichever comes first.
    let st = Stack::empty();
    st.register_family(Arc::new(Both)).unwrap();
    assert_eq!(st.register_family(Arc::new(Six)), Err(Errno::EEXIST));
    let st = Stack::empty();
    st.register_family(Arc::new(Six)).unwrap();
    assert_eq!(st.register_family(Arc::new(Both)), Err(Errno::EEXIST));
    assert_eq!(st.family(Domain::INET6).map(|f| f.name()), Some("six"));
    assert!(st.family(Domain::INET).is_none());
    // A family of one domain serves exactly that one.
    assert!(Six.serves(Domain::INET6) && !Six.serves(Domain::INET));
    assert!(Both.serves(Domain::INET) && Both.serves(Domain::INET6));
    assert!(!Both.serves(Domain::LOCAL));
}
