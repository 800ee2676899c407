//! Heap accounting: glibc's own counters, and an optional counting allocator that breaks a
//! structure's cost down by allocation size.
//!
//! The unsafe code of this crate is here: two calls into glibc and a `GlobalAlloc` that
//! forwards to the system allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

/// Bytes the C heap has handed out and not taken back (glibc `mallinfo2`: in-use bytes of
/// every arena, chunk headers included, plus mmapped blocks). `None` off glibc.
pub fn heap_in_use() -> Option<u64> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallinfo2 takes no arguments, reads the allocator's statistics under the
        // allocator's own locks and returns a plain struct by value.
        let m = unsafe { libc::mallinfo2() };
        Some((m.uordblks + m.hblkhd) as u64)
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        None
    }
}

/// Gives free heap memory back to the system (glibc `malloc_trim`), so that the next
/// measurement of resident memory starts from pages that are not yet touched.
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory of the allocator's arenas, under their
    // locks; it touches no memory the program holds.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The chunk glibc uses for a request of `size` bytes (8 bytes of header, 16-byte
/// alignment, 32 bytes at least).
pub fn glibc_chunk(size: usize) -> usize {
    ((size + 8 + 15) & !15).max(32)
}

const BUCKETS: usize = 257;
const STEP: usize = 8;

static ARMED: AtomicBool = AtomicBool::new(false);
static LIVE: [AtomicI64; BUCKETS] = [const { AtomicI64::new(0) }; BUCKETS];
static LIVE_BYTES: AtomicI64 = AtomicI64::new(0);
static LIVE_CHUNKS: AtomicI64 = AtomicI64::new(0);

/// A global allocator that forwards to [`System`] and, while a [`trace`] runs, counts the
/// blocks that stay allocated, by size. Install it in a binary to get the breakdown:
///
/// ```ignore
/// #[global_allocator]
/// static ALLOC: ksock_bench::CountingAlloc = ksock_bench::CountingAlloc;
/// ```
pub struct CountingAlloc;

fn bucket(size: usize) -> usize {
    (size.div_ceil(STEP)).min(BUCKETS - 1)
}

fn note(size: usize, sign: i64) {
    LIVE[bucket(size)].fetch_add(sign, Ordering::Relaxed);
    LIVE_BYTES.fetch_add(sign * size as i64, Ordering::Relaxed);
    LIVE_CHUNKS.fetch_add(sign * glibc_chunk(size) as i64, Ordering::Relaxed);
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the
// counting touches only atomics and never allocates.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if ARMED.load(Ordering::Relaxed) {
            note(layout.size(), 1);
        }
        // SAFETY: the caller's contract for `alloc` is passed on unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if ARMED.load(Ordering::Relaxed) {
            note(layout.size(), 1);
        }
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if ARMED.load(Ordering::Relaxed) {
            note(layout.size(), -1);
        }
        // SAFETY: `ptr` came from this allocator (that is, from `System`) with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if ARMED.load(Ordering::Relaxed) {
            note(layout.size(), -1);
            note(new_size, 1);
        }
        // SAFETY: as for `dealloc` and `alloc`; `System` keeps the block's contents.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Blocks that stayed allocated across a [`trace`], by requested size.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AllocTrace {
    /// (size rounded up to 8 bytes, blocks still live); the last bucket collects 2 KiB and
    /// more. Only sizes with a non-zero count.
    pub live: Vec<(usize, i64)>,
    /// Requested bytes still live.
    pub bytes: i64,
    /// Those bytes as glibc chunks (headers and rounding).
    pub chunk_bytes: i64,
}

impl AllocTrace {
    /// A one-line breakdown per `per` units (`2x104 B + 1x96 B`), largest share first.
    pub fn describe(&self, per: f64) -> String {
        let mut parts: Vec<(usize, f64)> = self
            .live
            .iter()
            .map(|&(size, n)| (size, n as f64 / per))
            .filter(|(_, n)| n.abs() >= 0.005)
            .collect();
        parts.sort_by(|a, b| (b.1 * b.0 as f64).total_cmp(&(a.1 * a.0 as f64)));
        let list: Vec<String> = parts
            .iter()
            .map(|(size, n)| {
                let size = if *size >= (BUCKETS - 1) * STEP {
                    format!(">={size}")
                } else {
                    size.to_string()
                };
                if (n - n.round()).abs() < 0.005 {
                    format!("{:.0}x{size} B", n)
                } else {
                    format!("{n:.2}x{size} B")
                }
            })
            .collect();
        list.join(" + ")
    }
}

/// A memory row's figure for `n` held `what`s ("pair", "connection"): resident growth per
/// item, with the heap's (mallinfo2) and the counting allocator's views as extras.
pub fn per_item(
    what: &str,
    n: usize,
    rss: (u64, u64),
    heap: (Option<u64>, Option<u64>),
    trace: Option<&AllocTrace>,
) -> crate::row::Measured {
    let per = |a: u64, b: u64| (b as f64 - a as f64) / n as f64;
    let mut m = crate::row::Measured {
        value: per(rss.0, rss.1),
        extras: Vec::new(),
        detail: None,
    };
    if let (Some(a), Some(b)) = heap {
        m.extras.push((
            format!("heap in use per {what} (mallinfo2)"),
            crate::stats::Unit::Bytes,
            per(a, b),
        ));
    }
    if let Some(t) = trace {
        m.extras.push((
            format!("requested bytes per {what}"),
            crate::stats::Unit::Bytes,
            t.bytes as f64 / n as f64,
        ));
        m.detail = Some(format!("live blocks per {what}: {}", t.describe(n as f64)));
    }
    m
}

/// Runs `f` with the counting allocator armed and returns what `f` left allocated. `None`
/// if [`CountingAlloc`] is not the global allocator. Allocations by other threads meanwhile
/// are counted too: run it while nothing else allocates.
pub fn trace<R>(f: impl FnOnce() -> R) -> (R, Option<AllocTrace>) {
    for b in &LIVE {
        b.store(0, Ordering::Relaxed);
    }
    LIVE_BYTES.store(0, Ordering::Relaxed);
    LIVE_CHUNKS.store(0, Ordering::Relaxed);
    ARMED.store(true, Ordering::SeqCst);
    let probe = std::hint::black_box(Box::new([0u8; 40]));
    let installed = LIVE[bucket(40)].load(Ordering::Relaxed) > 0;
    drop(probe);
    let r = f();
    ARMED.store(false, Ordering::SeqCst);
    if !installed {
        return (r, None);
    }
    let live = LIVE
        .iter()
        .enumerate()
        .map(|(i, n)| (i * STEP, n.load(Ordering::Relaxed)))
        .filter(|(_, n)| *n != 0)
        .collect();
    (
        r,
        Some(AllocTrace {
            live,
            bytes: LIVE_BYTES.load(Ordering::Relaxed),
            chunk_bytes: LIVE_CHUNKS.load(Ordering::Relaxed),
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glibc_chunk_sizes() {
        assert_eq!(glibc_chunk(1), 32);
        assert_eq!(glibc_chunk(24), 32);
        assert_eq!(glibc_chunk(25), 48);
        assert_eq!(glibc_chunk(96), 112);
        assert_eq!(glibc_chunk(104), 112);
    }

    #[test]
    fn breakdown_is_per_unit_and_sorted_by_share() {
        let t = AllocTrace {
            live: vec![(96, 100), (104, 200), (2048, 1), (16, 3)],
            bytes: 0,
            chunk_bytes: 0,
        };
        assert_eq!(
            t.describe(100.0),
            "2x104 B + 1x96 B + 0.01x>=2048 B + 0.03x16 B"
        );
    }

    #[test]
    fn trace_without_the_allocator_installed_says_so() {
        // The test binary uses the system allocator directly.
        let (v, t) = trace(|| vec![1u8; 100]);
        assert_eq!(v.len(), 100);
        assert_eq!(t, None);
    }
}
