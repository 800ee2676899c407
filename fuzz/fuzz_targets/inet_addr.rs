//! The inet address text (`ksock_inet::addr::parse`). The properties are in
//! `crates/ksock-inet/tests/props/addr.rs`, shared with the stable property tests. Each
//! input may hold at most 64 KiB plus 64 bytes per input byte at once.
#![no_main]

#[path = "../../crates/ksock-inet/tests/props/addr.rs"]
mod addr;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ksock_fuzz::bounded(data.len(), 64 << 10, 64, || {
        addr::check_inet_addr(data);
    })
});
