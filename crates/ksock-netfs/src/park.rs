//! Parked requests: a file-face transport (FUSE, 9P) answers each request that may wait
//! without holding a thread while it waits.
//!
//! Each request that may wait becomes a [`Task`]: a namespace future (an open, a read, a
//! write of a [`Handle`](crate::Handle)) plus the callback that answers the request
//! (a FUSE reply, a 9P `R` message). [`Exec::spawn`] polls it once on the calling thread;
//! if it is not ready the task is parked (it holds nothing but memory) and the thread goes
//! back to its transport. The core wakes the task through its waker when the socket
//! changes; the waker only queues the task for the driver thread, which polls it again and,
//! once it is ready, answers. A task can also be cancelled: its caller was interrupted
//! (FUSE's `FUSE_INTERRUPT`, 9P's `Tflush`: [`Exec::interrupt`]), or the transport is going
//! away ([`Exec::cancel_all`]); it is then answered with an error at once, and the future is
//! dropped, which leaves no effect behind (a dropped accept future dequeues nothing).
//!
//! Tasks are known by the transport's request id (FUSE's unique id, a 9P connection's tag
//! made unique), which is how an interrupt names its request. Requests may run on several
//! threads, so an interrupt can be handled before the thread that read its request has
//! parked it; it is then remembered (a bounded list, [`EARLY`]) and the task is cancelled
//! as it parks. A request answered before its interrupt is simply answered; its remembered
//! id is harmless as long as the transport never reuses an id while it may be remembered
//! (FUSE never reuses one on a connection).
//!
//! The task's state machine makes wake-ups impossible to lose: a wake while the task is
//! being polled marks it to be polled again.
//!
//! A task woken while a thread drives another task is answered by that thread, right after
//! the task it drives: a write that fills a waiting reader's socket answers that read too,
//! after its own reply, without a thread switch (and nothing recurses: woken tasks are
//! collected first). Tasks woken anywhere else (a file closing, a process exiting, the
//! transport going away) go to the driver thread, so no waker runs a reply under another
//! part's lock.

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};
use ksock::{Errno, Result};
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Weak};
use std::task::Wake;
use std::thread::{self, JoinHandle};

/// Something to poll until done, that can be told to give up.
pub(crate) trait Job: Send {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()>;
    fn cancel(self: Box<Self>, e: Errno);
}

/// A future and what to do with its result (answer the transport's request).
struct ReplyJob<F, D> {
    fut: Pin<Box<F>>,
    done: Option<D>,
}

impl<T, F, D> Job for ReplyJob<F, D>
where
    F: Future<Output = Result<T>> + Send,
    D: FnOnce(Result<T>) + Send,
{
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match self.fut.as_mut().poll(cx) {
            Poll::Ready(r) => {
                if let Some(d) = self.done.take() {
                    d(r);
                }
                Poll::Ready(())
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn cancel(mut self: Box<Self>, e: Errno) {
        if let Some(d) = self.done.take() {
            d(Err(e));
        }
    }
}

enum State {
    /// Waiting for a wake-up.
    Idle(Box<dyn Job>),
    /// Woken, queued for the driver.
    Queued(Box<dyn Job>),
    /// Being polled; `again` if woken meanwhile, `cancel` if cancelled meanwhile.
    Running { again: bool, cancel: Option<Errno> },
    /// Answered.
    Done,
}

/// How many interrupts that found no parked request are remembered. One is needed only
/// for the moment between a thread reading a request and parking it, so the list
/// holds mostly interrupts of requests answered meanwhile; the oldest go first.
pub const EARLY: usize = 1024;

/// One parked request: its future and its answer, known by its request id.
pub struct Task {
    /// The transport's request id.
    id: u64,
    exec: Weak<Exec>,
    state: Mutex<State>,
    registered: AtomicBool,
}

impl Task {
    /// Its request id.
    #[cfg(test)]
    pub fn id(&self) -> u64 {
        self.id
    }

    fn drive(self: &Arc<Self>, mut job: Box<dyn Job>) {
        let waker = Waker::from(self.clone());
        loop {
            let mut cx = Context::from_waker(&waker);
            if job.poll(&mut cx).is_ready() {
                *self.state.lock() = State::Done;
                self.unregister();
                return;
            }
            let mut st = self.state.lock();
            match &mut *st {
                State::Running {
                    cancel: Some(e), ..
                } => {
                    let e = *e;
                    *st = State::Done;
                    drop(st);
                    job.cancel(e);
                    self.unregister();
                    return;
                }
                State::Running { again, .. } if *again => {
                    *again = false;
                }
                _ => {
                    *st = State::Idle(job);
                    drop(st);
                    self.register();
                    return;
                }
            }
        }
    }

    /// Drives this queued task here, and then whatever it wakes (see the module doc).
    fn run_here(self: &Arc<Self>) {
        driving(|| self.run_queued());
    }

    fn run_queued(self: &Arc<Self>) {
        let job = {
            let mut st = self.state.lock();
            match core::mem::replace(&mut *st, State::Done) {
                State::Queued(job) => {
                    *st = State::Running {
                        again: false,
                        cancel: None,
                    };
                    job
                }
                other => {
                    *st = other;
                    return;
                }
            }
        };
        self.drive(job);
    }

    /// Gives up: the reply is answered with `e` now, or as soon as a running poll ends.
    pub fn cancel(self: &Arc<Self>, e: Errno) {
        let mut st = self.state.lock();
        match core::mem::replace(&mut *st, State::Done) {
            State::Idle(job) | State::Queued(job) => {
                drop(st);
                job.cancel(e);
                self.unregister();
            }
            State::Running { again, .. } => {
                *st = State::Running {
                    again,
                    cancel: Some(e),
                };
            }
            State::Done => {}
        }
    }

    fn register(self: &Arc<Self>) {
        if self.registered.swap(true, Ordering::AcqRel) {
            return;
        }
        let Some(exec) = self.exec.upgrade() else {
            return;
        };
        let interrupted = {
            let mut p = exec.parked.lock();
            let early = p.early_remove(self.id);
            if !early {
                p.tasks.insert(self.id, self.clone());
            }
            early
        };
        if interrupted {
            exec.interrupts.fetch_add(1, Ordering::Relaxed);
            return self.cancel(Errno::EINTR);
        }
        // The task may have finished on the driver before it was listed here.
        if matches!(*self.state.lock(), State::Done) {
            exec.parked.lock().tasks.remove(&self.id);
        }
    }

    fn unregister(&self) {
        if self.registered.load(Ordering::Acquire)
            && let Some(exec) = self.exec.upgrade()
        {
            let gone = exec.parked.lock().tasks.remove(&self.id);
            drop(gone);
        }
    }
}

impl Wake for Task {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let mut st = self.state.lock();
        match core::mem::replace(&mut *st, State::Done) {
            State::Idle(job) => {
                *st = State::Queued(job);
                drop(st);
                let deferred = WOKEN.with(|w| match w.borrow_mut().as_mut() {
                    Some(list) => {
                        list.push(self.clone());
                        true
                    }
                    None => false,
                });
                if !deferred && let Some(exec) = self.exec.upgrade() {
                    let _ = exec.tx.send(Msg::Run(self.clone()));
                }
            }
            State::Running { cancel, .. } => {
                *st = State::Running {
                    again: true,
                    cancel,
                };
            }
            other => *st = other,
        }
    }
}

enum Msg {
    Run(Arc<Task>),
    Stop,
}

std::thread_local! {
    /// While this thread drives a task: the tasks woken meanwhile, to drive next.
    static WOKEN: std::cell::RefCell<Option<Vec<Arc<Task>>>> = const { std::cell::RefCell::new(None) };
}

/// Runs `f` as this thread's drive: tasks woken meanwhile are driven here afterwards (and
/// what they wake, and so on). Nested drives only collect.
fn driving(f: impl FnOnce()) {
    let outermost = WOKEN.with(|w| {
        let mut w = w.borrow_mut();
        if w.is_some() {
            false
        } else {
            *w = Some(Vec::new());
            true
        }
    });
    f();
    if !outermost {
        return;
    }
    loop {
        let next = WOKEN.with(|w| w.borrow_mut().as_mut().and_then(|l| l.pop()));
        match next {
            Some(t) => t.run_queued(),
            None => break,
        }
    }
    WOKEN.with(|w| *w.borrow_mut() = None);
}

/// The parked tasks, and the interrupts that came before their task was parked.
#[derive(Default)]
struct Parked {
    tasks: HashMap<u64, Arc<Task>>,
    early: HashSet<u64>,
    early_order: VecDeque<u64>,
}

impl Parked {
    fn early_insert(&mut self, id: u64) {
        if !self.early.insert(id) {
            return;
        }
        self.early_order.push_back(id);
        while self.early_order.len() > EARLY {
            if let Some(old) = self.early_order.pop_front() {
                self.early.remove(&old);
            }
        }
    }

    fn early_remove(&mut self, id: u64) -> bool {
        if !self.early.remove(&id) {
            return false;
        }
        self.early_order.retain(|&i| i != id);
        true
    }
}

/// The parked tasks and the thread that drives them when woken.
pub struct Exec {
    tx: Sender<Msg>,
    parked: Mutex<Parked>,
    interrupts: AtomicU64,
    driver: Mutex<Option<JoinHandle<()>>>,
}

impl Exec {
    /// Starts an executor and its driver thread (which ends with [`stop`](Exec::stop)).
    pub fn start() -> std::io::Result<Arc<Exec>> {
        let (tx, rx) = channel();
        let exec = Arc::new(Exec {
            tx,
            parked: Mutex::new(Parked::default()),
            interrupts: AtomicU64::new(0),
            driver: Mutex::new(None),
        });
        let t = thread::Builder::new()
            .name("ksock-driver".into())
            .spawn(move || drive(rx))?;
        *exec.driver.lock() = Some(t);
        Ok(exec)
    }

    /// Runs `fut` for the request `unique`; `done` gets its result, or the error it is
    /// cancelled with. The first poll happens here. Returns whether the request had to
    /// wait (it is parked: `done` runs later).
    pub fn spawn<T, F, D>(self: &Arc<Self>, unique: u64, fut: F, done: D) -> bool
    where
        T: 'static,
        F: Future<Output = Result<T>> + Send + 'static,
        D: FnOnce(Result<T>) + Send + 'static,
    {
        let task = Arc::new(Task {
            id: unique,
            exec: Arc::downgrade(self),
            state: Mutex::new(State::Running {
                again: false,
                cancel: None,
            }),
            registered: AtomicBool::new(false),
        });
        let job = Box::new(ReplyJob {
            fut: Box::pin(fut),
            done: Some(done),
        });
        driving(|| task.drive(job));
        !matches!(*task.state.lock(), State::Done)
    }

    /// The tasks waiting now.
    pub fn parked(&self) -> Vec<Arc<Task>> {
        self.parked.lock().tasks.values().cloned().collect()
    }

    /// How many tasks wait.
    pub fn parked_count(&self) -> usize {
        self.parked.lock().tasks.len()
    }

    /// The transport interrupts the request `unique` (FUSE's `FUSE_INTERRUPT`: its caller
    /// got a signal; 9P's `Tflush`): a parked task is answered with `EINTR` now and its
    /// future dropped, one not parked yet as it parks.
    pub fn interrupt(&self, unique: u64) {
        tracing::debug!(target: "ksock", request = unique, "request interrupted");
        let task = {
            let mut p = self.parked.lock();
            let task = p.tasks.get(&unique).cloned();
            if task.is_none() {
                p.early_insert(unique);
            }
            task
        };
        if let Some(t) = task {
            self.interrupts.fetch_add(1, Ordering::Relaxed);
            t.cancel(Errno::EINTR);
        }
    }

    /// How many parked requests were interrupted.
    pub fn interrupts(&self) -> u64 {
        self.interrupts.load(Ordering::Relaxed)
    }

    /// Cancels every waiting task with `e`.
    pub fn cancel_all(&self, e: Errno) {
        for t in self.parked() {
            t.cancel(e);
        }
    }

    /// Stops the driver thread (after it has run what is queued).
    pub fn stop(&self) {
        let _ = self.tx.send(Msg::Stop);
        let t = self.driver.lock().take();
        if let Some(t) = t
            && t.thread().id() != thread::current().id()
        {
            let _ = t.join();
        }
    }
}

fn drive(rx: Receiver<Msg>) {
    for msg in rx {
        match msg {
            Msg::Run(task) => task.run_here(),
            Msg::Stop => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    /// A future that is ready once `flag` is set, and records its waker.
    struct Gate {
        open: Arc<AtomicBool>,
        waker: Arc<Mutex<Option<Waker>>>,
    }

    impl Future for Gate {
        type Output = Result<u32>;
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<u32>> {
            *self.waker.lock() = Some(cx.waker().clone());
            if self.open.load(Ordering::Acquire) {
                Poll::Ready(Ok(7))
            } else {
                Poll::Pending
            }
        }
    }

    fn gate() -> (Gate, Arc<AtomicBool>, Arc<Mutex<Option<Waker>>>) {
        let open = Arc::new(AtomicBool::new(false));
        let waker = Arc::new(Mutex::new(None));
        (
            Gate {
                open: open.clone(),
                waker: waker.clone(),
            },
            open,
            waker,
        )
    }

    #[test]
    fn ready_at_once_answers_inline_and_parks_nothing() {
        let exec = Exec::start().unwrap();
        let (g, open, _) = gate();
        open.store(true, Ordering::Release);
        let (tx, rx) = mpsc::channel();
        exec.spawn(1, g, move |r| tx.send(r).unwrap());
        assert_eq!(rx.try_recv().unwrap(), Ok(7));
        assert_eq!(exec.parked_count(), 0);
        exec.stop();
    }

    #[test]
    fn parked_tasks_finish_on_wake_from_another_thread() {
        let exec = Exec::start().unwrap();
        let (tx, rx) = mpsc::channel();
        let mut gates = Vec::new();
        for i in 0..1000 {
            let (g, open, waker) = gate();
            let tx = tx.clone();
            exec.spawn(i, g, move |r| tx.send(r).unwrap());
            gates.push((open, waker));
        }
        assert_eq!(exec.parked_count(), 1000);
        assert!(rx.try_recv().is_err());
        let t = thread::spawn(move || {
            for (open, waker) in gates {
                open.store(true, Ordering::Release);
                if let Some(w) = waker.lock().take() {
                    w.wake();
                }
            }
        });
        for _ in 0..1000 {
            assert_eq!(rx.recv().unwrap(), Ok(7));
        }
        t.join().unwrap();
        // Every finished task leaves the list (a late listing removes itself).
        let deadline = Instant::now() + Duration::from_secs(10);
        while exec.parked_count() != 0 {
            assert!(Instant::now() < deadline, "tasks left parked");
            thread::yield_now();
        }
        exec.stop();
    }

    #[test]
    fn cancel_answers_with_the_error_once() {
        let exec = Exec::start().unwrap();
        let (g, open, waker) = gate();
        let calls = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = mpsc::channel();
        let c = calls.clone();
        exec.spawn(9, g, move |r| {
            c.fetch_add(1, Ordering::SeqCst);
            tx.send(r).unwrap();
        });
        let parked = exec.parked();
        assert_eq!(parked.len(), 1);
        assert_eq!(parked[0].id(), 9);
        parked[0].cancel(Errno::EINTR);
        assert_eq!(rx.recv().unwrap(), Err(Errno::EINTR));
        // A late wake-up finds nothing to do.
        open.store(true, Ordering::Release);
        if let Some(w) = waker.lock().take() {
            w.wake();
        }
        parked[0].cancel(Errno::EIO);
        exec.stop();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(exec.parked_count(), 0);
    }

    #[test]
    fn a_wake_during_the_first_poll_is_not_lost() {
        /// Wakes itself while being polled the first time, ready the second time.
        struct SelfWake(u32);
        impl Future for SelfWake {
            type Output = Result<u32>;
            fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<u32>> {
                self.0 += 1;
                if self.0 == 1 {
                    cx.waker().wake_by_ref();
                    Poll::Pending
                } else {
                    Poll::Ready(Ok(self.0))
                }
            }
        }
        let exec = Exec::start().unwrap();
        let (tx, rx) = mpsc::channel();
        exec.spawn(1, SelfWake(0), move |r| tx.send(r).unwrap());
        assert_eq!(rx.try_recv().unwrap(), Ok(2), "polled again inline");
        exec.stop();
    }

    #[test]
    fn an_interrupt_answers_a_parked_task_with_eintr() {
        let exec = Exec::start().unwrap();
        let (tx, rx) = mpsc::channel();
        let (g, _open, _w) = gate();
        let tx2 = tx.clone();
        exec.spawn(4, g, move |r| tx2.send((4, r)).unwrap());
        let (g, _open2, _w2) = gate();
        exec.spawn(6, g, move |r| tx.send((6, r)).unwrap());
        exec.interrupt(6);
        assert_eq!(rx.recv().unwrap(), (6, Err(Errno::EINTR)));
        assert!(rx.try_recv().is_err(), "the other request waits on");
        assert_eq!(exec.parked_count(), 1);
        assert_eq!(exec.interrupts(), 1);
        exec.cancel_all(Errno::EINTR);
        exec.stop();
    }

    #[test]
    fn an_interrupt_that_comes_first_cancels_the_task_as_it_parks() {
        let exec = Exec::start().unwrap();
        exec.interrupt(8);
        assert_eq!(exec.interrupts(), 0);
        // Ready at once: answered as usual.
        let (g, open, _w) = gate();
        open.store(true, Ordering::Release);
        let (tx, rx) = mpsc::channel();
        let tx2 = tx.clone();
        exec.interrupt(10);
        exec.spawn(10, g, move |r| tx2.send(r).unwrap());
        assert_eq!(rx.try_recv().unwrap(), Ok(7));
        // Would wait: cancelled instead of parked.
        let (g, _open, _w) = gate();
        exec.spawn(8, g, move |r| tx.send(r).unwrap());
        assert_eq!(rx.recv().unwrap(), Err(Errno::EINTR));
        assert_eq!(exec.parked_count(), 0);
        assert_eq!(exec.interrupts(), 1);
        exec.stop();
    }

    #[test]
    fn remembered_interrupts_are_bounded() {
        let exec = Exec::start().unwrap();
        for id in 0..(EARLY as u64 * 3) {
            exec.interrupt(id);
        }
        let p = exec.parked.lock();
        assert_eq!(p.early.len(), EARLY);
        assert_eq!(p.early_order.len(), EARLY);
        assert!(p.early.contains(&(EARLY as u64 * 3 - 1)) && !p.early.contains(&0));
        drop(p);
        exec.stop();
    }
}
