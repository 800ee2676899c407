//! memcpy bandwidth: the physical limit of any transfer that copies its bytes.
//!
//! A send through a socket copies each byte in (from the sender's buffer) and a receive
//! copies it out (to the receiver's). With the sender and the receiver on two CPUs the two
//! copies run side by side, so one CPU's memcpy rate bounds bulk bandwidth from above; on
//! one CPU the bound is half of it.

use crate::row::{Row, Side};
use crate::stats::Unit;
use std::hint::black_box;
use std::time::Instant;

fn copy_row(id: &str, title: &str, size: usize) -> Row {
    let src = vec![0x5au8; size];
    let mut dst = vec![0u8; size];
    Row::new(
        "memcpy",
        id,
        title,
        Unit::BytesPerSec,
        Side::timed("memcpy", move |n| {
            let t0 = Instant::now();
            for _ in 0..n {
                dst.copy_from_slice(black_box(&src));
                black_box(&mut dst);
            }
            Ok(t0.elapsed())
        }),
    )
    .per_iter(size as f64)
}

/// The `memcpy` group: 64 KiB blocks (as the bulk rows write; stays in cache) and 64 MiB
/// (from and to main memory).
pub fn rows() -> Vec<Row> {
    vec![
        copy_row("memcpy.64k", "copy 64 KiB (cache-resident)", 64 << 10),
        copy_row("memcpy.64m", "copy 64 MiB (main memory)", 64 << 20).first_iters(1),
    ]
}
