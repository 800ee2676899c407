//! The counting allocator installed as the global allocator: every kind of call forwards
//! to the system allocator with its layout, and a trace counts what stays allocated. Small
//! enough to run under Miri (`cargo +nightly miri test -p ksock-bench --test alloc`), which
//! checks the `GlobalAlloc` forwarding in `src/heap.rs`.

use ksock_bench::heap;

#[global_allocator]
static ALLOC: ksock_bench::CountingAlloc = ksock_bench::CountingAlloc;

#[test]
fn a_trace_counts_what_stays_allocated() {
    let (kept, t) = heap::trace(|| {
        // alloc and dealloc
        let gone = Box::new([1u8; 100]);
        drop(gone);
        // alloc_zeroed, then realloc up and down
        let mut v = vec![0u8; 24];
        v.extend_from_slice(&[7u8; 200]);
        v.shrink_to_fit();
        // over-aligned blocks
        #[repr(align(64))]
        struct Aligned([u8; 64]);
        let a = Box::new(Aligned([3; 64]));
        assert_eq!(&*a as *const Aligned as usize % 64, 0);
        (v, a)
    });
    let t = t.expect("installed");
    assert_eq!(kept.0.len(), 224);
    assert!(kept.0[..24].iter().all(|&b| b == 0) && kept.0[24..].iter().all(|&b| b == 7));
    assert_eq!(kept.1.0, [3; 64]);
    // What stayed: the vector's 224 bytes and the 64-byte block.
    assert_eq!(t.bytes, 224 + 64, "{t:?}");
    assert_eq!(t.live, vec![(64, 1), (224, 1)]);
}
