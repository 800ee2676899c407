//! Scale and churn in CI: connections opened and closed in waves through the Rust API and
//! through the file face, the socket and name tables back to empty after each wave, and the
//! memory a wave holds per connection within the benchmarks' figure (docs/BENCHMARKS.md:
//! under 512 B per idle connected pair). The full counts are the `churn` rows of
//! `ksock bench` (`--only churn`, run by hand in release); a debug build here does fewer.

use ksock_bench::churn;

#[global_allocator]
static ALLOC: ksock_bench::CountingAlloc = ksock_bench::CountingAlloc;

/// The benchmarks' memory figure for an idle connected pair.
const PAIR_BYTES: f64 = 512.0;

#[test]
fn local_connections_in_waves_leave_nothing_and_stay_small() {
    let c = churn::local(200_000, 50_000).expect("the churn");
    let per = c
        .heap_per_conn
        .expect("the counting allocator is installed");
    println!("{c:?}");
    assert!(
        per <= PAIR_BYTES,
        "{per:.0} requested bytes per held connection"
    );
}
