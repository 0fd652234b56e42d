//! Who polls the HTTP/2 connection: its own task, or the caller that has
//! just queued a request.
//!
//! h2 queues a request's frames in memory and wakes the task that polls
//! the connection; only that poll writes them to the socket. When the
//! caller runs outside the worker threads (the body of `#[tokio::main]`
//! does) or on another worker, that wake costs a thread wake-up and a
//! context switch before the request even leaves, on every call. So a
//! caller that has queued frames polls the connection once itself, right
//! away, if nobody else is polling it.
//!
//! Every poll, whoever makes it, uses one waker: the [`Notifier`]. The
//! connection's registrations (socket readiness, h2's "frames queued")
//! therefore always lead back to the connection task, and the task stays
//! the one that reads responses and keeps the connection going while no
//! call is being made. While callers are between queuing and their own
//! poll, the notifier holds wake-ups back; the last of them passes on any
//! it could not take care of itself.

use futures::task::AtomicWaker;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

/// The h2 connection future, its I/O type erased.
pub(super) type ConnFuture = Pin<Box<dyn Future<Output = Result<(), h2::Error>> + Send>>;

/// The connection and the waker every poll of it uses.
pub(super) struct Driver {
    slot: Mutex<Slot>,
    notifier: Arc<Notifier>,
    waker: Waker,
}

enum Slot {
    Running(ConnFuture),
    /// A caller's poll saw the connection end; the task reports it.
    Ended(Option<h2::Error>),
    /// Reported, or closed: the connection (and its socket) is dropped.
    Done,
}

/// The waker handed to the connection: wakes the connection task unless a
/// caller is about to poll the connection anyway.
struct Notifier {
    /// Callers between queuing frames and their own poll.
    inline: AtomicUsize,
    /// A wake-up arrived while `inline` was non-zero.
    held: AtomicBool,
    task: AtomicWaker,
    /// How many times the task was woken (tests count them).
    #[cfg(test)]
    task_wakes: AtomicUsize,
}

impl Notifier {
    fn wake_task(&self) {
        #[cfg(test)]
        self.task_wakes.fetch_add(1, SeqCst);
        self.task.wake();
    }
}

impl Wake for Notifier {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.inline.load(SeqCst) > 0 {
            self.held.store(true, SeqCst);
            // Checked again after `held` is set: a caller that left in
            // between has already looked at `held`.
            if self.inline.load(SeqCst) > 0 {
                return;
            }
        }
        self.wake_task();
    }
}

impl Driver {
    pub(super) fn new(conn: ConnFuture) -> Driver {
        let notifier = Arc::new(Notifier {
            inline: AtomicUsize::new(0),
            held: AtomicBool::new(false),
            task: AtomicWaker::new(),
            #[cfg(test)]
            task_wakes: AtomicUsize::new(0),
        });
        Driver {
            slot: Mutex::new(Slot::Running(conn)),
            waker: Waker::from(notifier.clone()),
            notifier,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Polls the connection with the notifier's waker; true when this
    /// poll saw it end.
    fn poll_slot(&self, slot: &mut Slot) -> bool {
        if let Slot::Running(conn) = slot
            && let Poll::Ready(ended) = conn.as_mut().poll(&mut Context::from_waker(&self.waker))
        {
            *slot = Slot::Ended(ended.err());
            return true;
        }
        false
    }

    /// The connection task's poll: `Ready` with the error that ended the
    /// connection, if any, once it has ended.
    pub(super) fn poll_task(&self, cx: &mut Context<'_>) -> Poll<Option<h2::Error>> {
        self.notifier.task.register(cx.waker());
        let mut slot = self.lock();
        self.poll_slot(&mut slot);
        match &mut *slot {
            Slot::Running(_) => Poll::Pending,
            Slot::Ended(err) => {
                let err = err.take();
                *slot = Slot::Done;
                Poll::Ready(err)
            }
            Slot::Done => Poll::Ready(None),
        }
    }

    /// Drops the connection, which closes its socket; open streams fail.
    /// The drop happens after the lock is released.
    pub(super) fn close(&self) {
        let conn = std::mem::replace(&mut *self.lock(), Slot::Done);
        drop(conn);
    }

    /// How many times the connection task has been woken.
    #[cfg(test)]
    pub(super) fn task_wakes(&self) -> usize {
        self.notifier.task_wakes.load(SeqCst)
    }

    /// Returns once nobody is polling the connection.
    #[cfg(test)]
    pub(super) fn wait_idle(&self) {
        drop(self.lock());
    }

    /// Marks the start of queuing frames; the returned guard polls the
    /// connection when dropped. Hold it only across code that does not
    /// wait: wake-ups of the connection task are held back meanwhile.
    pub(super) fn inline(&self) -> Inline<'_> {
        self.notifier.inline.fetch_add(1, SeqCst);
        Inline { driver: self }
    }
}

/// A caller between queuing frames and polling the connection itself.
pub(super) struct Inline<'a> {
    driver: &'a Driver,
}

impl Drop for Inline<'_> {
    fn drop(&mut self) {
        let driver = self.driver;
        let notifier = &driver.notifier;
        // Busy means the task (or another caller) is polling right now; it
        // may have passed the point of writing our frames, so the wake-up
        // is passed on below.
        if let Ok(mut slot) = driver.slot.try_lock() {
            notifier.held.store(false, SeqCst);
            if driver.poll_slot(&mut slot) {
                // The task reports the end; it is not polling, so wake it.
                notifier.wake_task();
            }
        }
        if notifier.inline.fetch_sub(1, SeqCst) == 1 && notifier.held.swap(false, SeqCst) {
            notifier.wake_task();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts its wake-ups.
    #[derive(Default)]
    struct Counter(AtomicUsize);

    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, SeqCst);
        }
    }

    /// A connection that never ends: counts its polls and, when asked,
    /// wakes its waker from inside a poll (as h2 does to yield).
    #[derive(Default)]
    struct FakeConn {
        polls: AtomicUsize,
        wake_inside: AtomicBool,
    }

    fn driver(fake: &Arc<FakeConn>) -> Driver {
        let fake = fake.clone();
        Driver::new(Box::pin(std::future::poll_fn(move |cx| {
            fake.polls.fetch_add(1, SeqCst);
            if fake.wake_inside.swap(false, SeqCst) {
                cx.waker().wake_by_ref();
            }
            Poll::Pending
        })))
    }

    /// A driver whose task has polled once, and the task's wake count.
    fn started() -> (Driver, Arc<FakeConn>, Arc<Counter>) {
        let fake = Arc::new(FakeConn::default());
        let driver = driver(&fake);
        let task = Arc::new(Counter::default());
        let waker = Waker::from(task.clone());
        assert!(
            driver
                .poll_task(&mut Context::from_waker(&waker))
                .is_pending()
        );
        (driver, fake, task)
    }

    #[test]
    fn a_wake_without_a_caller_reaches_the_task() {
        let (driver, fake, task) = started();
        driver.waker.wake_by_ref();
        assert_eq!(task.0.load(SeqCst), 1);
        assert_eq!(fake.polls.load(SeqCst), 1);
    }

    #[test]
    fn a_caller_that_polls_itself_spares_the_task_its_wake() {
        let (driver, fake, task) = started();
        let inline = driver.inline();
        // What h2 does when a request is queued.
        driver.waker.wake_by_ref();
        drop(inline);
        assert_eq!(fake.polls.load(SeqCst), 2, "the caller polled");
        assert_eq!(task.0.load(SeqCst), 0, "the task was not woken");
    }

    #[test]
    fn a_caller_that_cannot_poll_passes_the_wake_on() {
        let (driver, fake, task) = started();
        let busy = driver.lock();
        let inline = driver.inline();
        driver.waker.wake_by_ref();
        drop(inline);
        drop(busy);
        assert_eq!(fake.polls.load(SeqCst), 1, "nobody else polled");
        assert_eq!(task.0.load(SeqCst), 1, "the task was woken");
    }

    #[test]
    fn a_wake_during_the_callers_poll_reaches_the_task() {
        let (driver, fake, task) = started();
        fake.wake_inside.store(true, SeqCst);
        drop(driver.inline());
        assert_eq!(fake.polls.load(SeqCst), 2);
        assert_eq!(task.0.load(SeqCst), 1);
    }

    #[test]
    fn the_last_of_several_callers_passes_the_wake_on() {
        let (driver, _fake, task) = started();
        let busy = driver.lock();
        let first = driver.inline();
        let second = driver.inline();
        driver.waker.wake_by_ref();
        drop(first);
        assert_eq!(task.0.load(SeqCst), 0, "held while a caller is inside");
        drop(second);
        drop(busy);
        assert_eq!(task.0.load(SeqCst), 1);
    }

    #[test]
    fn an_end_seen_by_a_caller_is_reported_by_the_task() {
        let driver = Driver::new(Box::pin(std::future::ready(Ok(()))));
        let task = Arc::new(Counter::default());
        drop(driver.inline());
        assert_eq!(
            driver
                .poll_task(&mut Context::from_waker(&Waker::from(task)))
                .map(|err| err.is_none()),
            Poll::Ready(true)
        );
    }
}
