//! The POSIX face's sockaddr handling (bind, connect, sendto, getsockname, getpeername,
//! accept, recvfrom) on a fresh stack with both families. The properties are in
//! `crates/ksock-posix/tests/props/addr.rs`, shared with the stable property tests. Each
//! input may hold at most 8 MiB at once (the stack's socket buffers included).
#![no_main]

#[path = "../../crates/ksock-posix/tests/props/addr.rs"]
mod addr;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ksock_fuzz::bounded(data.len(), 8 << 20, 0, || {
        addr::check_posix(data);
    })
});
