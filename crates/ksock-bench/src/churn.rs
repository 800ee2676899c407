//! Scale and churn: local stream connections opened and closed in waves (each wave held
//! open at once, then closed), through the Rust API and through the file face. After each
//! wave the socket table and the name table must be back to the listener alone, and after
//! the run back to empty; the memory a wave holds is measured per connection.
//!
//! The same functions back the `churn` rows of `ksock bench` (a million connections through
//! the Rust API, 100 000 through a real `ksock mount`) and a smaller test run in CI
//! (`tests/churn.rs`).

use crate::heap;
use crate::local::pair_vec;
use crate::row::{Measured, Row, Side};
use crate::stats::Unit;
use crate::sys;
use ksock::local::LocalFamily;
use ksock::{Domain, SockAddr, SockType, Socket, Stack};
use std::sync::Arc;
use std::time::Instant;

/// What a churn run measured.
#[derive(Clone, Debug)]
pub struct Churned {
    /// Connections opened and closed.
    pub conns: usize,
    /// Connections held at once.
    pub wave: usize,
    /// The whole run, in seconds.
    pub secs: f64,
    /// The most the resident set grew over its size before the run (bytes).
    pub peak_rss_growth: u64,
    /// Resident set growth per held connection at the first wave's peak (bytes).
    pub rss_per_conn: f64,
    /// Requested heap bytes the first wave held, per connection (with the counting
    /// allocator installed).
    pub heap_per_conn: Option<f64>,
}

impl Churned {
    /// As a benchmark value: nanoseconds per connection opened and closed, with the
    /// memory figures as extras.
    fn measured(&self) -> Measured {
        let mut extras = vec![
            ("run time (s)".to_string(), Unit::Nanos, self.secs * 1e9),
            (
                "peak resident set growth".to_string(),
                Unit::Bytes,
                self.peak_rss_growth as f64,
            ),
            (
                "resident set growth per held connection".to_string(),
                Unit::Bytes,
                self.rss_per_conn,
            ),
        ];
        if let Some(h) = self.heap_per_conn {
            extras.push((
                "requested heap bytes per held connection".to_string(),
                Unit::Bytes,
                h,
            ));
        }
        Measured {
            value: self.secs * 1e9 / self.conns as f64,
            extras,
            detail: Some(format!(
                "{} connections in waves of {} held at once: {:.2} s, peak resident set \
                 growth {:.1} MiB",
                self.conns,
                self.wave,
                self.secs,
                self.peak_rss_growth as f64 / (1 << 20) as f64
            )),
        }
    }
}

/// The listener's name.
const NAME: &str = "ksock-churn";

fn kerr(what: &'static str) -> impl Fn(ksock::Errno) -> String {
    move |e| format!("{what}: {e:?}")
}

/// Checks the socket table and the name table hold `sockets` sockets and `names` names.
fn expect_tables(
    st: &Stack,
    fam: &LocalFamily,
    sockets: usize,
    names: usize,
) -> Result<(), String> {
    if st.socket_count() != sockets || fam.name_count() != names {
        return Err(format!(
            "{} sockets and {} names, {sockets} and {names} expected",
            st.socket_count(),
            fam.name_count()
        ));
    }
    Ok(())
}

/// Opens and closes `total` connections (client and accepted socket) to one listener
/// through the Rust API, `wave` of them held at once.
pub fn local(total: usize, wave: usize) -> Result<Churned, String> {
    let st = Stack::empty();
    let fam = Arc::new(LocalFamily::new());
    st.register_family(fam.clone()).map_err(kerr("register"))?;
    let addr = SockAddr::local(NAME.as_bytes()).map_err(kerr("name"))?;
    let l = st
        .socket(Domain::LOCAL, SockType::STREAM, 0)
        .map_err(kerr("socket"))?;
    l.bind(&addr).map_err(kerr("bind"))?;
    l.listen(1).map_err(kerr("listen"))?;
    let mut held: Vec<(Socket, Socket)> = pair_vec(wave);
    heap::trim();
    let rss0 = sys::rss_bytes()?;
    let (mut peak, mut rss_per_conn, mut heap_per_conn) = (0u64, 0.0, None);
    let start = Instant::now();
    let mut done = 0;
    while done < total {
        let n = wave.min(total - done);
        let make = |held: &mut Vec<(Socket, Socket)>| -> Result<(), String> {
            for _ in 0..n {
                let c = st
                    .socket(Domain::LOCAL, SockType::STREAM, 0)
                    .map_err(kerr("socket"))?;
                c.connect(&addr).map_err(kerr("connect"))?;
                let (s, _) = l.try_accept().map_err(kerr("accept"))?;
                held.push((c, s));
            }
            Ok(())
        };
        if done == 0 {
            let (made, trace) = heap::trace(|| make(&mut held));
            made?;
            heap_per_conn = trace.map(|t| t.bytes as f64 / n as f64);
        } else {
            make(&mut held)?;
        }
        expect_tables(&st, &fam, 1 + 2 * n, 1)?;
        let rss = sys::rss_bytes()?.saturating_sub(rss0);
        if done == 0 {
            rss_per_conn = rss as f64 / n as f64;
        }
        peak = peak.max(rss);
        held.clear();
        expect_tables(&st, &fam, 1, 1)?;
        done += n;
    }
    let secs = start.elapsed().as_secs_f64();
    drop(l);
    expect_tables(&st, &fam, 0, 0)?;
    Ok(Churned {
        conns: total,
        wave,
        secs,
        peak_rss_growth: peak,
        rss_per_conn,
        heap_per_conn,
    })
}

/// The `churn` group: a million connections through the Rust API in waves of 100 000, and
/// 100 000 through a real `ksock mount` (see [`crate::file::churn`]); one sample each by
/// default (`--runs` for more).
pub fn rows(conns: usize, wave: usize, file_conns: usize, file_wave: usize) -> Vec<Row> {
    let mut rows = vec![
        Row::new(
            "churn",
            "churn.local",
            "local stream connections opened and closed (Rust API), per connection",
            Unit::Nanos,
            Side::value("ksock", move || local(conns, wave).map(|c| c.measured())),
        )
        .note(format!(
            "{conns} connections (connect, accept, close both) in waves of {wave} held at \
             once; the socket and name tables checked back to the listener after each wave \
             and to empty at the end"
        )),
    ];
    rows.push(
        Row::new(
            "churn",
            "churn.file",
            "local stream connections opened and closed through a ksock mount, per connection",
            Unit::Nanos,
            Side::value("ksock mount", move || {
                crate::file::churn(file_conns, file_wave).map(|c| c.measured())
            }),
        )
        .note(format!(
            "{file_conns} connections (open the factory, ctl connect, open the listener's \
             accept file, hangup, close both) in waves of up to {file_wave} (two open files \
             each: as many as the open-file limit allows)"
        )),
    );
    rows
}
