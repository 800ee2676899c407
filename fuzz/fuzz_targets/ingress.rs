//! Frames fed to the inet family's ingress: a program of injected frames (TCP, UDP, ICMP,
//! raw; IPv4 and IPv6), data and time, on a stack with listeners, a connection and UDP
//! sockets. The properties are in `crates/ksock-inet/tests/props/ingress.rs`, shared with
//! the stable property tests. Each input may hold at most 16 MiB at once (the stack's
//! socket buffers included).
#![no_main]

#[path = "../../crates/ksock-inet/tests/props/ingress.rs"]
mod ingress;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ksock_fuzz::bounded(data.len(), 16 << 20, 0, || {
        ingress::check_ingress(data);
    })
});
