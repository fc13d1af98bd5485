//! The bounded outgoing queue between the pipeline and the MQTT client, and the messages handed
//! to the client that the broker has not acknowledged yet.
//!
//! The pipeline only ever pushes (a short lock, never a wait); past `capacity` the oldest
//! message goes and is counted. The publisher takes messages while connected, up to a window in
//! flight; when the connection drops, what was in flight goes back to the front of the queue, in
//! order, and is sent again after the reconnection: at least once, and a message whose PUBACK
//! was lost with the connection arrives twice.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Messages in flight (handed to the client, not yet acknowledged) at most.
pub const WINDOW: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Recognition,
    /// Health and status are about now: not sent again after a reconnection.
    Health,
    Status,
}

#[derive(Debug, Clone)]
pub struct Message {
    pub topic: String,
    pub payload: Vec<u8>,
    pub retain: bool,
    pub kind: Kind,
}

struct InFlight {
    /// The packet id the client gave it (None until it went out; 0 at QoS 0).
    pkid: Option<u16>,
    message: Message,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Message>,
    in_flight: VecDeque<InFlight>,
    connected: bool,
    /// No more messages will be pushed; the publisher ends once the queue is empty.
    closing: bool,
    dropped: u64,
    published: u64,
}

/// What [`Outbox::take`] gives the publisher.
pub enum Take {
    Send(Message),
    /// Closing, and nothing is left to send.
    Done,
}

pub struct Outbox {
    state: Mutex<State>,
    changed: Condvar,
    capacity: Mutex<usize>,
}

/// What went where, for the health message and the metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub queued: usize,
    pub in_flight: usize,
    pub dropped: u64,
    pub published: u64,
    pub connected: bool,
}

impl Outbox {
    pub fn new(capacity: usize) -> Self {
        Outbox { state: Mutex::new(State::default()), changed: Condvar::new(), capacity: Mutex::new(capacity.max(1)) }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves consistent data (every change is one
        // push or pop): go on with it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set_capacity(&self, capacity: usize) {
        *self.capacity.lock().unwrap_or_else(|p| p.into_inner()) = capacity.max(1);
    }

    /// Queues a message; returns how many old ones it pushed out (0 or more).
    pub fn push(&self, message: Message) -> u64 {
        let capacity = *self.capacity.lock().unwrap_or_else(|p| p.into_inner());
        let mut s = self.lock();
        s.queue.push_back(message);
        let mut dropped = 0;
        while s.queue.len() > capacity {
            s.queue.pop_front();
            dropped += 1;
        }
        s.dropped += dropped;
        drop(s);
        self.changed.notify_all();
        dropped
    }

    /// Queues a message ahead of everything (status).
    pub fn push_front(&self, message: Message) {
        self.lock().queue.push_front(message);
        self.changed.notify_all();
    }

    /// Waits (at most `wait`) for a message to send: connected, with room in the window.
    pub fn take(&self, wait: Duration) -> Option<Take> {
        let deadline = Instant::now() + wait;
        let mut s = self.lock();
        loop {
            if s.connected && s.in_flight.len() < WINDOW {
                if let Some(message) = s.queue.pop_front() {
                    s.in_flight.push_back(InFlight { pkid: None, message: message.clone() });
                    return Some(Take::Send(message));
                }
            }
            if s.closing && s.queue.is_empty() && s.in_flight.is_empty() {
                return Some(Take::Done);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            s = self.changed.wait_timeout(s, left).map_or_else(|p| p.into_inner().0, |r| r.0);
        }
    }

    /// The client could not take the message just taken: it goes back to the front.
    pub fn untake(&self) {
        let mut s = self.lock();
        if let Some(f) = s.in_flight.pop_back() {
            s.queue.push_front(f.message);
        }
    }

    /// The client wrote a publish with this packet id (0 at QoS 0, which is then done).
    pub fn sent(&self, pkid: u16) {
        let mut s = self.lock();
        if pkid == 0 {
            if let Some(i) = s.in_flight.iter().position(|f| f.pkid.is_none()) {
                s.in_flight.remove(i);
                s.published += 1;
            }
        } else if let Some(f) = s.in_flight.iter_mut().find(|f| f.pkid.is_none()) {
            f.pkid = Some(pkid);
        }
        drop(s);
        self.changed.notify_all();
    }

    /// The broker acknowledged this packet id.
    pub fn acked(&self, pkid: u16) {
        let mut s = self.lock();
        if let Some(i) = s.in_flight.iter().position(|f| f.pkid == Some(pkid)) {
            s.in_flight.remove(i);
            s.published += 1;
        }
        drop(s);
        self.changed.notify_all();
    }

    pub fn connected(&self) {
        self.lock().connected = true;
        self.changed.notify_all();
    }

    /// The connection dropped: what was in flight goes back to the front of the queue, in order
    /// (status and health, which are about then, are dropped).
    pub fn disconnected(&self) {
        let mut s = self.lock();
        s.connected = false;
        let back: Vec<Message> =
            s.in_flight.drain(..).map(|f| f.message).filter(|m| m.kind == Kind::Recognition).collect();
        for m in back.into_iter().rev() {
            s.queue.push_front(m);
        }
        drop(s);
        self.changed.notify_all();
    }

    pub fn close(&self) {
        self.lock().closing = true;
        self.changed.notify_all();
    }

    /// Waits until nothing is queued or in flight, or `deadline`; true when empty.
    pub fn drained(&self, deadline: Instant) -> bool {
        let mut s = self.lock();
        loop {
            if s.queue.is_empty() && s.in_flight.is_empty() {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            s = self.changed.wait_timeout(s, left).map_or_else(|p| p.into_inner().0, |r| r.0);
        }
    }

    pub fn counts(&self) -> Counts {
        let s = self.lock();
        Counts {
            queued: s.queue.len(),
            in_flight: s.in_flight.len(),
            dropped: s.dropped,
            published: s.published,
            connected: s.connected,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(n: u8) -> Message {
        Message { topic: "t".into(), payload: vec![n], retain: false, kind: Kind::Recognition }
    }

    fn send(o: &Outbox) -> u8 {
        match o.take(Duration::ZERO) {
            Some(Take::Send(m)) => m.payload[0],
            _ => panic!("nothing to send"),
        }
    }

    #[test]
    fn the_oldest_go_when_full_and_unacknowledged_ones_are_sent_again_in_order() {
        let o = Outbox::new(3);
        for n in 0..5 {
            o.push(msg(n));
        }
        assert_eq!(o.counts().dropped, 2);
        assert!(o.take(Duration::ZERO).is_none(), "nothing goes out before the connection");
        o.connected();
        assert_eq!((send(&o), send(&o)), (2, 3));
        o.sent(7);
        o.sent(8);
        o.acked(7);
        assert_eq!(o.counts().published, 1);
        o.disconnected();
        let status = Message { kind: Kind::Status, ..msg(9) };
        o.push_front(status);
        o.connected();
        assert_eq!((send(&o), send(&o), send(&o)), (9, 3, 4), "status first, then 3 again, then 4");
        o.sent(0);
        assert_eq!(o.counts().published, 2, "QoS 0 is done when written");
        o.disconnected();
        assert_eq!(o.counts().queued, 2, "the status is not sent again; 3 and 4 are");
        o.close();
        assert!(o.take(Duration::ZERO).is_none(), "closing, but two are still to go");
    }
}
