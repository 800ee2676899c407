//! The ctl grammar: any write to a `ctl` file. The properties are in
//! `crates/ksock-netfs/tests/props/ctl.rs`, shared with the stable property tests. Each
//! input may hold at most 64 KiB plus 64 bytes per input byte at once.
#![no_main]

#[path = "../../crates/ksock-netfs/tests/props/ctl.rs"]
mod ctl;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ksock_fuzz::bounded(data.len(), 64 << 10, 64, || {
        ctl::check_ctl(data);
    })
});
