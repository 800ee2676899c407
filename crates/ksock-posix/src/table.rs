//! The descriptor table: lowest-free numbering, reservations, close-on-exec.
//!
//! A descriptor refers to an open file description ([`File`]); `dup` makes two descriptors
//! share one description (and so its status flags), as on Linux. Close-on-exec belongs to
//! the descriptor.

use crate::consts::*;
use ksock::{Errno, Result, Socket};
use parking_lot::Mutex;
use std::any::Any;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};

/// An open file description.
pub(crate) struct File {
    pub(crate) kind: Kind,
    /// Status flags kept by the description itself (`O_APPEND`, `O_NOATIME`, and
    /// `O_NONBLOCK` for non-socket files; a socket's `O_NONBLOCK` is the socket's own flag).
    pub(crate) status: AtomicI32,
}

pub(crate) enum Kind {
    Socket(Socket),
    Other(Arc<dyn Any + Send + Sync>),
}

impl File {
    pub(crate) fn socket(sock: Socket) -> File {
        File {
            kind: Kind::Socket(sock),
            status: AtomicI32::new(0),
        }
    }

    /// The socket, or `ENOTSOCK`.
    pub(crate) fn sock(&self) -> Result<&Socket> {
        match &self.kind {
            Kind::Socket(s) => Ok(s),
            Kind::Other(_) => Err(Errno::ENOTSOCK),
        }
    }

    pub(crate) fn is_nonblocking(&self) -> bool {
        match &self.kind {
            Kind::Socket(s) => s.is_nonblocking(),
            Kind::Other(_) => self.status.load(Ordering::Acquire) & O_NONBLOCK != 0,
        }
    }

    pub(crate) fn set_nonblocking(&self, on: bool) -> Result<()> {
        match &self.kind {
            Kind::Socket(s) => s.set_nonblocking(on),
            Kind::Other(_) => {
                if on {
                    self.status.fetch_or(O_NONBLOCK, Ordering::AcqRel);
                } else {
                    self.status.fetch_and(!O_NONBLOCK, Ordering::AcqRel);
                }
                Ok(())
            }
        }
    }
}

#[derive(Clone)]
pub(crate) struct Entry {
    pub(crate) file: Arc<File>,
    pub(crate) cloexec: bool,
}

enum Slot {
    Free,
    /// Taken by a call that has not finished (`accept4` between steps 3 and 8).
    Reserved,
    Open(Entry),
}

pub(crate) struct Table {
    slots: Mutex<Vec<Slot>>,
    limit: usize,
}

impl Table {
    pub(crate) fn new(limit: usize) -> Table {
        Table {
            slots: Mutex::new(Vec::new()),
            limit,
        }
    }

    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    pub(crate) fn get(&self, fd: i32) -> Result<Entry> {
        let slots = self.slots.lock();
        match usize::try_from(fd).ok().and_then(|i| slots.get(i)) {
            Some(Slot::Open(e)) => Ok(e.clone()),
            _ => Err(Errno::EBADF),
        }
    }

    pub(crate) fn set_cloexec(&self, fd: i32, on: bool) -> Result<()> {
        let mut slots = self.slots.lock();
        match usize::try_from(fd).ok().and_then(|i| slots.get_mut(i)) {
            Some(Slot::Open(e)) => {
                e.cloexec = on;
                Ok(())
            }
            _ => Err(Errno::EBADF),
        }
    }

    /// Reserves the lowest free descriptor at or above `min`; `EMFILE` when there is none.
    pub(crate) fn reserve(&self, min: usize) -> Result<Reservation<'_>> {
        let mut slots = self.slots.lock();
        let found = slots
            .iter()
            .enumerate()
            .skip(min)
            .find(|(_, s)| matches!(s, Slot::Free))
            .map(|(i, _)| i);
        let i = match found {
            Some(i) => i,
            None => {
                let i = slots.len().max(min);
                if i >= self.limit {
                    return Err(Errno::EMFILE);
                }
                slots.resize_with(i + 1, || Slot::Free);
                i
            }
        };
        slots[i] = Slot::Reserved;
        Ok(Reservation {
            table: self,
            fd: i,
            done: false,
        })
    }

    /// Takes a descriptor out; its description is returned so the caller drops it (and
    /// perhaps closes the socket) with no lock held.
    pub(crate) fn remove(&self, fd: i32) -> Result<Entry> {
        let mut slots = self.slots.lock();
        let slot = usize::try_from(fd)
            .ok()
            .and_then(|i| slots.get_mut(i))
            .ok_or(Errno::EBADF)?;
        if !matches!(slot, Slot::Open(_)) {
            return Err(Errno::EBADF);
        }
        let Slot::Open(e) = std::mem::replace(slot, Slot::Free) else {
            return Err(Errno::EBADF);
        };
        Self::trim(&mut slots);
        Ok(e)
    }

    /// Takes out every close-on-exec descriptor.
    pub(crate) fn remove_cloexec(&self) -> Vec<Entry> {
        let mut slots = self.slots.lock();
        let mut out = Vec::new();
        for s in slots.iter_mut() {
            if matches!(s, Slot::Open(e) if e.cloexec)
                && let Slot::Open(e) = std::mem::replace(s, Slot::Free)
            {
                out.push(e);
            }
        }
        Self::trim(&mut slots);
        out
    }

    /// Takes out every descriptor.
    pub(crate) fn remove_all(&self) -> Vec<Entry> {
        let mut slots = self.slots.lock();
        let mut out = Vec::new();
        for s in slots.iter_mut() {
            if matches!(s, Slot::Open(_))
                && let Slot::Open(e) = std::mem::replace(s, Slot::Free)
            {
                out.push(e);
            }
        }
        Self::trim(&mut slots);
        out
    }

    fn trim(slots: &mut Vec<Slot>) {
        while matches!(slots.last(), Some(Slot::Free)) {
            slots.pop();
        }
    }

    /// The open descriptors, in increasing order.
    pub(crate) fn open_fds(&self) -> Vec<i32> {
        self.slots
            .lock()
            .iter()
            .enumerate()
            .filter(|(_, s)| matches!(s, Slot::Open(_)))
            .map(|(i, _)| i as i32)
            .collect()
    }

    fn release(&self, fd: usize, entry: Option<Entry>) {
        let mut slots = self.slots.lock();
        if let Some(s) = slots.get_mut(fd) {
            *s = match entry {
                Some(e) => Slot::Open(e),
                None => Slot::Free,
            };
        }
        Self::trim(&mut slots);
    }
}

/// A reserved descriptor: installed with [`install`](Reservation::install), freed if dropped.
pub(crate) struct Reservation<'a> {
    table: &'a Table,
    fd: usize,
    done: bool,
}

impl Reservation<'_> {
    pub(crate) fn install(mut self, file: Arc<File>, cloexec: bool) -> i32 {
        self.done = true;
        self.table.release(self.fd, Some(Entry { file, cloexec }));
        self.fd as i32
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.table.release(self.fd, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn other() -> Arc<File> {
        Arc::new(File {
            kind: Kind::Other(Arc::new(())),
            status: AtomicI32::new(0),
        })
    }

    #[test]
    fn lowest_free_reservations_and_limit() {
        let t = Table::new(3);
        let a = t.reserve(0).unwrap().install(other(), false);
        let r = t.reserve(0).unwrap();
        let c = t.reserve(0).unwrap().install(other(), true);
        assert_eq!((a, c), (0, 2));
        assert_eq!(t.reserve(0).err(), Some(Errno::EMFILE));
        assert_eq!(t.get(1).err(), Some(Errno::EBADF), "reserved is not open");
        assert_eq!(t.remove(1).err(), Some(Errno::EBADF));
        drop(r);
        assert_eq!(t.open_fds(), vec![0, 2]);
        assert_eq!(t.reserve(0).unwrap().install(other(), false), 1);
        assert_eq!(t.remove_cloexec().len(), 1);
        assert_eq!(t.open_fds(), vec![0, 1]);
        assert_eq!(t.reserve(2).unwrap().install(other(), false), 2);
        assert_eq!(t.reserve(5).err(), Some(Errno::EMFILE));
        assert_eq!(t.remove_all().len(), 3);
        assert!(t.open_fds().is_empty());
        assert_eq!(t.get(-1).err(), Some(Errno::EBADF));
    }
}
