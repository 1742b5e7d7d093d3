//! Thread listeners: the task that serves a thread, its command queue and
//! its cancellation token.
//!
//! A thread entry holds at most one [`ListenerHome`], allocated by the
//! first operation that needs one (see `entry.rs`): a [`ListenerSlot`](home::ListenerSlot) in a
//! [`WaitList`](crate::waiters::WaitList) (its mutex is the slot's lock; its waiters are the tasks
//! polling the slot's listeners), plus the tracker that reports to the
//! engine's listener registry (`shutdown.rs`). The slot's states:
//!
//! | state     | `generation` | `current`  | `send` does              |
//! |-----------|--------------|------------|--------------------------|
//! | never set | 0            | `None`     | gives the message back   |
//! | listening | g ≥ 1        | `Some`     | queues for listener g    |
//! | cleared   | g ≥ 1        | `None`     | gives the message back   |
//!
//! `set_listener` moves any state to "listening" with `g + 1`, first
//! cancelling and closing the previous listener (after shutdown it leaves
//! the slot as it is and hands back a listener already closed).
//! `set_listener_if_none` does the same only from "never set" or
//! "cleared", and leaves "listening" untouched: the test and the move are
//! one critical section, so racing callers start exactly one listener.
//! `clear_listener`, and dropping listener g while it is current, move
//! "listening" to "cleared". Generations are never reused. Every transition
//! and every queueing happens under the slot's mutex, so a command reaches
//! the listener current when `send` took the lock, and the per-sender FIFO
//! order of the queue carries over. A send that finds a bounded queue full
//! waits *outside* the lock, on the queue's event count (see `queue.rs`), so
//! a clear is never blocked by it; the clear moves the count, and the woken
//! send finds its listener gone and gets its command back. A listener
//! dropped while current clears the slot (its `Drop`), so a task that ends
//! in any way frees the slot for a new listener.
//!
//! Clearing fires the token *before* closing the queue: a listener that sees
//! its queue closed also sees itself cancelled.

//!
//! `home.rs` holds the slot and the send paths; `handle.rs` the
//! [`Listener`] a task holds, and the slot's transitions that open one.

mod handle;
mod home;

pub use handle::Listener;
pub(crate) use home::ListenerHome;
