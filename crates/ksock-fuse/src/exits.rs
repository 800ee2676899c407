//! Process exits, as events: a socket lives as long as its creating process, so the mount
//! must learn when that process ends, and without looking at every process now and then.
//!
//! When a socket is created, its creator's process (the thread group of the requesting
//! thread: FUSE names a thread) gets a pidfd (`pidfd_open(2)`), once per process however
//! many sockets it creates. One thread waits on all of them with epoll. A pidfd opened
//! without `PIDFD_THREAD` becomes readable when the whole thread group has exited
//! (`pidfd_poll` in `kernel/pid.c` since Linux 6.9; before that, when its leader had and
//! the group was empty), not when the main thread calls `pthread_exit` while other threads
//! run, as a zombie leader in `/proc/<pid>/stat` would suggest. Then the namespace is told
//! ([`NetFs::process_exited`]; or whatever handler [`Exits::with_handler`] was given) and
//! the pidfd closed. Nothing wakes while no process ends.
//!
//! The system calls go through `rustix`'s safe wrappers: no unsafe code here.

use crate::procs;
use ksock_netfs::{NetFs, ProcId};
use parking_lot::Mutex;
use rustix::event::epoll::{self, Event, EventData, EventFlags};
use rustix::event::{EventfdFlags, eventfd};
use rustix::fd::OwnedFd;
use rustix::process::{Pid, PidfdFlags, pidfd_open};
use std::collections::HashMap;
use std::io;
use std::mem::MaybeUninit;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};

/// The epoll key of the stop event; pidfds get keys from 1 up.
const STOP: u64 = 0;

struct Watched {
    keys: HashMap<ProcId, u64>,
    fds: HashMap<u64, (ProcId, OwnedFd)>,
    next: u64,
}

impl Watched {
    fn new() -> Watched {
        Watched {
            keys: HashMap::new(),
            fds: HashMap::new(),
            next: STOP + 1,
        }
    }
}

/// The processes watched for their exit, and the thread that waits for them.
pub struct Exits {
    on_exit: Box<dyn Fn(ProcId) + Send + Sync>,
    epoll: OwnedFd,
    stop: OwnedFd,
    watched: Mutex<Watched>,
    warned: AtomicBool,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Exits {
    /// Starts the waiting thread for `netfs`: a process that exits is reported to it
    /// ([`NetFs::process_exited`]).
    pub fn start(netfs: NetFs) -> io::Result<Arc<Exits>> {
        Self::with_handler(move |p| netfs.process_exited(p))
    }

    /// Starts the waiting thread, which calls `on_exit` once with each watched process
    /// when it has exited. `on_exit` may also be called by [`watch`](Self::watch) itself,
    /// on the caller's thread, for a process that has already gone.
    pub fn with_handler(
        on_exit: impl Fn(ProcId) + Send + Sync + 'static,
    ) -> io::Result<Arc<Exits>> {
        let epoll = epoll::create(epoll::CreateFlags::CLOEXEC)?;
        let stop = eventfd(0, EventfdFlags::CLOEXEC)?;
        epoll::add(&epoll, &stop, EventData::new_u64(STOP), EventFlags::IN)?;
        let exits = Arc::new(Exits {
            on_exit: Box::new(on_exit),
            epoll,
            stop,
            watched: Mutex::new(Watched::new()),
            warned: AtomicBool::new(false),
            thread: Mutex::new(None),
        });
        let t = {
            let exits = exits.clone();
            thread::Builder::new()
                .name("ksock-exits".into())
                .spawn(move || exits.run())?
        };
        *exits.thread.lock() = Some(t);
        Ok(exits)
    }

    /// How many processes are watched.
    pub fn len(&self) -> usize {
        self.watched.lock().keys.len()
    }

    /// Watches the process of thread `tid`, which has just created a socket and waits for
    /// the answer (so the process has not ended: its pid cannot name another one yet). The
    /// process is named as [`crate::host_netfs`]'s resolver names it, with [`procs::resolve`].
    pub fn watch(&self, tid: u32) {
        // The namespace's resolver has just read the same files for the same thread, which is
        // still there (it waits for this answer): this cannot fail unless `/proc` does, and
        // then the namespace recorded no creator either.
        let Some(p) = procs::resolve(tid) else {
            return;
        };
        if self.watched.lock().keys.contains_key(&p) {
            return;
        }
        let fd = Pid::from_raw(p.pid as i32)
            .ok_or(rustix::io::Errno::SRCH)
            .and_then(|pid| pidfd_open(pid, PidfdFlags::empty()));
        let fd = match fd {
            Ok(fd) => fd,
            Err(rustix::io::Errno::SRCH) => return (self.on_exit)(p),
            Err(e) => {
                // Out of file descriptors, say: the sockets then outlive the process, until
                // they are hung up or the mount ends. Say so once.
                if !self.warned.swap(true, Ordering::Relaxed) {
                    eprintln!(
                        "ksock: cannot watch process {} for its exit ({e}); its sockets, and \
                         those of other such processes, end only with the mount",
                        p.pid
                    );
                }
                return;
            }
        };
        // The pidfd names whatever process had the pid when it was opened: make sure that
        // was `p` (a zombie still counts: it has not been reaped).
        if procs::start_of(p.pid) != Some(p.start) {
            return (self.on_exit)(p);
        }
        // Listed and added to epoll under one lock, so that the waiting thread, which looks
        // events up under it, never sees one it cannot find.
        let mut w = self.watched.lock();
        if w.keys.contains_key(&p) {
            // Another of its threads got here first.
            return;
        }
        let key = w.next;
        w.next += 1;
        if let Err(e) = epoll::add(&self.epoll, &fd, EventData::new_u64(key), EventFlags::IN) {
            drop(w);
            eprintln!("ksock: cannot watch process {} for its exit ({e})", p.pid);
            return;
        }
        w.keys.insert(p, key);
        w.fds.insert(key, (p, fd));
    }

    /// Whether no process is watched.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stops the waiting thread and closes every pidfd.
    pub fn stop(&self) {
        let _ = rustix::io::write(&self.stop, &1u64.to_ne_bytes());
        let t = self.thread.lock().take();
        if let Some(t) = t
            && t.thread().id() != thread::current().id()
        {
            let _ = t.join();
        }
        *self.watched.lock() = Watched::new();
    }

    fn run(&self) {
        let mut events = [MaybeUninit::<Event>::uninit(); 64];
        loop {
            let ready = match epoll::wait(&self.epoll, &mut events, None) {
                Ok((ready, _)) => ready,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => {
                    eprintln!("ksock: waiting for process exits failed ({e}); stopped");
                    return;
                }
            };
            for ev in ready.iter() {
                let key = ev.data.u64();
                if key == STOP {
                    return;
                }
                let gone = {
                    let mut w = self.watched.lock();
                    let gone = w.fds.remove(&key);
                    if let Some((p, fd)) = &gone {
                        w.keys.remove(p);
                        let _ = epoll::delete(&self.epoll, fd);
                    }
                    gone
                };
                if let Some((p, fd)) = gone {
                    drop(fd);
                    (self.on_exit)(p);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ksock_netfs::exec::block_on;
    use ksock_netfs::{Cred, OpenMode};
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    #[test]
    fn a_creator_that_exits_ends_its_sockets_and_is_forgotten() {
        let netfs = crate::host_netfs(ksock::Stack::new());
        let exits = Exits::start(netfs.clone()).unwrap();
        let mut child = Command::new("sh")
            .args(["-c", "read x"])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        let ino = netfs.resolve("/local/stream", &Cred::ROOT).unwrap().ino;
        let mut ids = Vec::new();
        for _ in 0..3 {
            let h = block_on(netfs.open(ino, OpenMode::RDWR, Cred::new(0, 0, pid))).unwrap();
            ids.push(h.id().unwrap());
            exits.watch(pid);
        }
        assert_eq!(exits.len(), 1, "one pidfd per process");
        // Closed, the sockets live on with their creator.
        let live = |id: &u64| netfs.stack().get(*id).is_some();
        assert!(ids.iter().all(live));
        drop(child.stdin.take());
        child.wait().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while ids.iter().any(live) || !exits.is_empty() {
            assert!(Instant::now() < deadline, "sockets outlived their creator");
            std::thread::sleep(Duration::from_millis(5));
        }
        exits.stop();
    }
}
