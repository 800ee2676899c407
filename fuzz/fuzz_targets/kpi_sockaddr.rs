//! The kernel face's sockaddr conversions: any bytes, any storage. The properties are in
//! `crates/ksock-kpi/tests/props/sockaddr.rs`, shared with the stable property tests. Each
//! input may hold at most 64 KiB plus 64 bytes per input byte at once.
#![no_main]

#[path = "../../crates/ksock-kpi/tests/props/sockaddr.rs"]
mod sockaddr;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ksock_fuzz::bounded(data.len(), 64 << 10, 64, || {
        sockaddr::check_sockaddr(data);
    })
});
