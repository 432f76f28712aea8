//! The page's run queue: at most `limit` runs train at once (by default one per two cores, since each run already
//! uses every core); the others wait in the order they were started.

use std::collections::BTreeSet;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

pub struct RunQueue {
    limit: usize,
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    active: usize,
    /// Tickets are handed out in order; `next` is the first that has not started.
    issued: u64,
    next: u64,
    /// Tickets given up before their turn (a queued run stopped from the page).
    cancelled: BTreeSet<u64>,
}

/// A place in the queue, taken when a run is started from the page.
pub struct Ticket(u64);

/// What waiting for a turn came to.
pub enum Turn {
    /// The run may train; its place is freed when the slot is dropped, however the run ends.
    Started(#[allow(dead_code)] Slot),
    /// `give_up` said so before the turn came; the ticket is returned.
    GaveUp,
}

/// A place taken in the queue: dropping it hands the place to the next ticket (also when the run panics).
pub struct Slot(std::sync::Arc<RunQueue>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.done();
    }
}

impl RunQueue {
    pub fn new(limit: usize) -> RunQueue {
        RunQueue { limit: limit.max(1), state: Mutex::new(State::default()), changed: Condvar::new() }
    }

    /// The default limit: one run per two cores, at least one.
    pub fn default_limit() -> usize {
        (std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) / 2).max(1)
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn ticket(&self) -> Ticket {
        let mut s = self.lock();
        s.issued += 1;
        Ticket(s.issued - 1)
    }

    /// How many runs would start before this ticket's (0 when it could start now).
    #[cfg(test)]
    fn ahead(&self, ticket: &Ticket) -> usize {
        self.places_ahead(&self.lock(), ticket.0)
    }

    /// The waiting tickets before `ticket`, plus one if every place is taken.
    fn places_ahead(&self, s: &State, ticket: u64) -> usize {
        let waiting_before = (s.next..ticket).filter(|t| !s.cancelled.contains(t)).count();
        waiting_before + (s.active + 1).saturating_sub(self.limit)
    }

    /// Waits until it is this ticket's turn and a place is free, or until `give_up` returns true (asked every
    /// 100 ms and whenever the queue changes); `on_wait` is told how many runs are ahead whenever that changes.
    pub fn wait(
        self: &std::sync::Arc<Self>,
        ticket: Ticket,
        give_up: impl Fn() -> bool,
        on_wait: impl Fn(usize),
    ) -> Turn {
        let mut shown = None;
        let mut s = self.lock();
        loop {
            if s.next == ticket.0 && s.active < self.limit {
                s.active += 1;
                s.next += 1;
                Self::skip_cancelled(&mut s);
                self.changed.notify_all();
                return Turn::Started(Slot(self.clone()));
            }
            if give_up() {
                s.cancelled.insert(ticket.0);
                Self::skip_cancelled(&mut s);
                self.changed.notify_all();
                return Turn::GaveUp;
            }
            let ahead = self.places_ahead(&s, ticket.0);
            if shown != Some(ahead) {
                shown = Some(ahead);
                drop(s);
                on_wait(ahead);
                s = self.lock();
                continue;
            }
            s = self.changed.wait_timeout(s, Duration::from_millis(100)).unwrap_or_else(|p| p.into_inner()).0;
        }
    }

    /// A run that started has ended: its place goes to the next ticket.
    fn done(&self) {
        let mut s = self.lock();
        s.active = s.active.saturating_sub(1);
        self.changed.notify_all();
    }

    fn skip_cancelled(s: &mut State) {
        while s.cancelled.remove(&s.next) {
            s.next += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    #[test]
    fn runs_start_in_order_up_to_the_limit() {
        let q = Arc::new(RunQueue::new(1));
        let first = q.ticket();
        assert_eq!(q.ahead(&first), 0);
        let first_slot = q.wait(first, || false, |_| {});
        assert!(matches!(first_slot, Turn::Started(_)));
        let (second, third) = (q.ticket(), q.ticket());
        assert_eq!((q.ahead(&second), q.ahead(&third)), (1, 2));
        let order = Arc::new(Mutex::new(Vec::new()));
        let spawn = |ticket: Ticket, name: &'static str| {
            let (q, order) = (q.clone(), order.clone());
            std::thread::spawn(move || {
                let slot = q.wait(ticket, || false, |_| {});
                assert!(matches!(slot, Turn::Started(_)));
                order.lock().unwrap().push(name);
            })
        };
        // The third is waiting first, but the second goes first.
        let t3 = spawn(third, "third");
        std::thread::sleep(Duration::from_millis(50));
        let t2 = spawn(second, "second");
        std::thread::sleep(Duration::from_millis(50));
        assert!(order.lock().unwrap().is_empty(), "nothing starts while the first one trains");
        drop(first_slot);
        t2.join().unwrap();
        t3.join().unwrap();
        assert_eq!(*order.lock().unwrap(), ["second", "third"]);
    }

    #[test]
    fn a_run_stopped_while_queued_gives_up_its_place() {
        let q = Arc::new(RunQueue::new(1));
        let first = q.wait(q.ticket(), || false, |_| {});
        let (second, third) = (q.ticket(), q.ticket());
        let stop = Arc::new(AtomicBool::new(false));
        let waiter = {
            let (q, stop) = (q.clone(), stop.clone());
            std::thread::spawn(move || q.wait(second, || stop.load(Ordering::SeqCst), |_| {}))
        };
        stop.store(true, Ordering::SeqCst);
        assert!(matches!(waiter.join().unwrap(), Turn::GaveUp));
        assert_eq!(q.ahead(&third), 1, "only the running one is ahead now");
        // A run that panics drops its slot too.
        let panicked = std::thread::spawn(move || {
            let _slot = first;
            panic!("a run that fails");
        });
        assert!(panicked.join().is_err());
        assert!(matches!(q.wait(third, || false, |_| {}), Turn::Started(_)));
    }
}
