//! What the benchmarks read from the system: `/proc` files (parsed by small functions that
//! are unit-tested), resource limits and the machine's description.

use crate::report::Machine;
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use std::fs;

/// A `/proc/meminfo` line's value in bytes (`Slab:   66644 kB` gives 66644 * 1024).
pub fn parse_meminfo(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, rest) = l.split_once(':')?;
        if k.trim() != key {
            return None;
        }
        let mut it = rest.split_whitespace();
        let v: u64 = it.next()?.parse().ok()?;
        match it.next() {
            Some("kB") => Some(v * 1024),
            None => Some(v),
            Some(_) => None,
        }
    })
}

/// The kernel's slab memory now (the `Slab` line of `/proc/meminfo`), in bytes.
pub fn slab_bytes() -> Result<u64, String> {
    let text =
        fs::read_to_string("/proc/meminfo").map_err(|e| format!("reading /proc/meminfo: {e}"))?;
    parse_meminfo(&text, "Slab").ok_or_else(|| "/proc/meminfo has no Slab line".into())
}

/// Resident pages from `/proc/self/statm` (its second field).
pub fn parse_statm_resident(text: &str) -> Option<u64> {
    text.split_whitespace().nth(1)?.parse().ok()
}

/// This process's resident set size in bytes.
pub fn rss_bytes() -> Result<u64, String> {
    let text = fs::read_to_string("/proc/self/statm")
        .map_err(|e| format!("reading /proc/self/statm: {e}"))?;
    let pages = parse_statm_resident(&text)
        .ok_or_else(|| format!("unexpected /proc/self/statm: {text}"))?;
    Ok(pages * page_size())
}

/// The page size.
pub fn page_size() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .map_or(4096, |v| v as u64)
}

/// One slab cache from `/proc/slabinfo`: name, objects in use, object size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlabCache {
    /// The cache's name (`UNIX`, `filp`, `dentry`, ...).
    pub name: String,
    /// Objects allocated.
    pub active: u64,
    /// Bytes per object (with the allocator's own padding).
    pub objsize: u64,
}

/// Parses `/proc/slabinfo` (version 2.1): the header lines are skipped.
pub fn parse_slabinfo(text: &str) -> Vec<SlabCache> {
    text.lines()
        .filter(|l| !l.starts_with("slabinfo") && !l.starts_with('#'))
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let name = it.next()?.to_string();
            let active = it.next()?.parse().ok()?;
            let _num = it.next()?;
            let objsize = it.next()?.parse().ok()?;
            Some(SlabCache {
                name,
                active,
                objsize,
            })
        })
        .collect()
}

/// The slab caches now (needs root), or `None` if `/proc/slabinfo` cannot be read.
pub fn slabinfo() -> Option<Vec<SlabCache>> {
    fs::read_to_string("/proc/slabinfo")
        .ok()
        .map(|t| parse_slabinfo(&t))
}

/// The caches that grew between two snapshots, as (name, bytes added), largest first.
pub fn slab_growth(before: &[SlabCache], after: &[SlabCache]) -> Vec<(String, i64)> {
    let mut out: Vec<(String, i64)> = after
        .iter()
        .map(|a| {
            let b = before
                .iter()
                .find(|b| b.name == a.name)
                .map_or(0, |b| b.active);
            (
                a.name.clone(),
                (a.active as i64 - b as i64) * a.objsize as i64,
            )
        })
        .filter(|(_, d)| *d > 0)
        .collect();
    out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    out
}

/// The 1-minute load average from `/proc/loadavg`.
pub fn parse_loadavg(text: &str) -> Option<f64> {
    text.split_whitespace().next()?.parse().ok()
}

/// The 1-minute load average now (0 if unknown).
pub fn loadavg() -> f64 {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|t| parse_loadavg(&t))
        .unwrap_or(0.0)
}

/// The CPU model from `/proc/cpuinfo`.
pub fn parse_cpu_model(text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == "model name").then(|| v.trim().to_string())
    })
}

/// Describes this machine.
pub fn machine() -> Machine {
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| parse_cpu_model(&t))
        .unwrap_or_else(|| "unknown CPU".into());
    let kernel = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let memory = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| parse_meminfo(&t, "MemTotal"))
        .unwrap_or(0);
    Machine {
        cpu,
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        kernel,
        memory,
        load_start: loadavg(),
        load_end: 0.0,
    }
}

/// Raises the open-file limit to at least `want` descriptors if it is lower (raising the
/// hard limit needs root). Returns the soft limit now in force.
pub fn raise_nofile(want: u64) -> Result<u64, String> {
    let (soft, hard) =
        getrlimit(Resource::RLIMIT_NOFILE).map_err(|e| format!("getrlimit(NOFILE): {e}"))?;
    if soft >= want {
        return Ok(soft);
    }
    let new_hard = hard.max(want);
    if setrlimit(Resource::RLIMIT_NOFILE, want, new_hard).is_ok() {
        return Ok(want);
    }
    // Without the right to raise the hard limit, take what it allows.
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard)
        .map_err(|e| format!("setrlimit(NOFILE, {hard}): {e}"))?;
    Ok(hard)
}

/// Whether the process runs as root.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MEMINFO: &str = "MemTotal:       24683444 kB\nMemFree:        23240112 kB\n\
                           Slab:              66644 kB\nSReclaimable:      31000 kB\nHugePages_Total:       0\n";

    #[test]
    fn meminfo_lines_in_bytes() {
        assert_eq!(parse_meminfo(MEMINFO, "Slab"), Some(66644 * 1024));
        assert_eq!(parse_meminfo(MEMINFO, "MemTotal"), Some(24683444 * 1024));
        assert_eq!(parse_meminfo(MEMINFO, "HugePages_Total"), Some(0));
        assert_eq!(
            parse_meminfo(MEMINFO, "Sla"),
            None,
            "a prefix is not the key"
        );
        assert_eq!(parse_meminfo("Slab: lots kB\n", "Slab"), None);
        assert_eq!(parse_meminfo("Slab: 3 MB\n", "Slab"), None, "unknown unit");
    }

    #[test]
    fn statm_second_field_is_resident() {
        assert_eq!(
            parse_statm_resident("5000 1234 300 10 0 800 0\n"),
            Some(1234)
        );
        assert_eq!(parse_statm_resident("5000"), None);
        assert_eq!(parse_statm_resident("5000 x"), None);
    }

    const SLABINFO: &str = "slabinfo - version: 2.1\n\
# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>\n\
UNIX                 200    210   1088   30    8 : tunables    0    0    0 : slabdata      7      7      0\n\
filp                1000   1024    256   32    2 : tunables    0    0    0 : slabdata     32     32      0\n\
dentry               500    504    192   21    1 : tunables    0    0    0 : slabdata     24     24      0\n";

    #[test]
    fn slabinfo_parses_and_growth_is_sorted() {
        let before = parse_slabinfo(SLABINFO);
        assert_eq!(before.len(), 3);
        assert_eq!(
            before[0],
            SlabCache {
                name: "UNIX".into(),
                active: 200,
                objsize: 1088
            }
        );
        let mut after = before.clone();
        after[0].active += 2;
        after[1].active += 2;
        after[2].active -= 1;
        let g = slab_growth(&before, &after);
        assert_eq!(g, vec![("UNIX".into(), 2176), ("filp".into(), 512)]);
    }

    #[test]
    fn loadavg_and_cpu_model() {
        assert_eq!(parse_loadavg("1.52 0.80 0.40 3/200 1234\n"), Some(1.52));
        assert_eq!(parse_loadavg(""), None);
        assert_eq!(
            parse_cpu_model("processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags: x\n"),
            Some("AMD EPYC 7B13".into())
        );
        assert_eq!(parse_cpu_model("processor: 0\n"), None);
    }
}
