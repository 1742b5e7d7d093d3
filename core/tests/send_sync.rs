//! Compile-time checks: `Send`/`Sync` of every public type, error traits, and
//! `Debug` that does not require `Debug` of `S`, `M` or `R`.
//!
//! These tests prove their point by compiling; their bodies are trivial.

#![allow(dead_code)]

use std::fmt::Debug;
use std::sync::Arc;

use switchboard_core::{
    CancelToken, Caps, Change, ChangeBatch, ChangeFeed, Config, Engine, InvariantViolation, Lagged,
    Listener, NoListener, NotConnected, PendingReply, PendingSend, QueueConfig, Reader, RecvError,
    RecvTimeoutError, Reply, ReplyError, ReplyTimeoutError, SendError, ShutdownReport,
    ShutdownWait, Snapshot, Stats, SubscriberWatch, Subscribers, ThreadEntry, TryRecvError,
    WatchError,
};

fn assert_send<T: Send>() {}
fn assert_sync<T: Sync>() {}
fn assert_send_sync<T: Send + Sync>() {}
fn assert_debug<T: Debug>() {}
fn assert_error<E: std::error::Error + Send + Sync + 'static>() {}

/// Deliberately neither `Debug` nor `Sync`-relevant: only `Default + Send`.
#[derive(Default)]
struct NotDebug;

/// Connection data that is not `Debug` (`Send + Sync`, as `D` must be).
struct NotDebugData;

type Eng = Engine<u64, u64, String, String>;

#[test]
fn smoke() {
    assert_send_sync::<Eng>();
    assert_send_sync::<Arc<Eng>>();
}

#[test]
fn engine_and_entry_are_send_sync() {
    assert_send_sync::<Engine<u64, u64, String, String>>();
    assert_send_sync::<Engine<u64, u64>>();
    assert_send_sync::<ThreadEntry<u64, String, String>>();
    assert_send_sync::<ThreadEntry<u64, (), ()>>();
    assert_send_sync::<Arc<ThreadEntry<u64, String, String>>>();
    // Connection data: D is Send + Sync (readers share it by reference).
    assert_send_sync::<Engine<u64, u64, (), (), Arc<String>>>();
    assert_send_sync::<Snapshot<u64, u64, Arc<String>>>();
}

#[test]
fn engine_is_send_sync_with_send_only_state_and_messages() {
    // S and M need only be Send: the engine guards them itself.
    type Cell = std::cell::Cell<u32>; // Send, !Sync
    assert_send_sync::<Engine<u64, u64, Cell, Cell>>();
    assert_send_sync::<ThreadEntry<u64, Cell, Cell>>();
}

#[test]
fn handles_are_send() {
    assert_send::<Listener<String>>();
    assert_send::<CancelToken>();
    assert_send::<Reply<String>>();
    assert_send::<PendingReply<String>>();
    assert_send::<SubscriberWatch>();
    assert_send::<Subscribers<u64>>();
    assert_send::<Snapshot<u64, u64>>();
    assert_send::<Reader<'static, u64, u64>>();
    assert_send::<Reader<'static, u64, u64, Arc<String>>>();
    assert_send_sync::<Caps>();
    assert_send_sync::<QueueConfig>();
    assert_send_sync::<ShutdownReport<u64>>();
    assert_send_sync::<ShutdownWait<u64>>();
    assert_send_sync::<PendingSend<String>>();
    assert_sync::<CancelToken>();
    assert_sync::<Listener<String>>();
    assert_send_sync::<ChangeFeed<u64, u64>>();
    assert_send_sync::<ChangeBatch<u64, u64>>();
    assert_send_sync::<Change<u64, u64>>();
    assert_send_sync::<Stats>();
    assert_send_sync::<Config>();
}

#[test]
fn handles_are_send_with_send_only_payloads() {
    type Cell = std::cell::Cell<u32>; // Send, !Sync
    assert_send::<Listener<Cell>>();
    assert_send::<Reply<Cell>>();
    assert_send::<PendingReply<Cell>>();
    assert_send::<PendingSend<Cell>>();
}

#[test]
fn errors_are_std_errors() {
    assert_error::<NotConnected>();
    assert_error::<NoListener<String>>();
    assert_error::<SendError<String>>();
    assert_error::<SendError<NotDebug>>();
    assert_error::<RecvError>();
    assert_error::<TryRecvError>();
    assert_error::<RecvTimeoutError>();
    assert_error::<ReplyError>();
    assert_error::<ReplyTimeoutError>();
    assert_error::<WatchError>();
    assert_error::<InvariantViolation>();
    assert_error::<Lagged>();
}

#[test]
fn debug_does_not_require_payload_debug() {
    assert_debug::<Engine<u64, u64, NotDebug, NotDebug>>();
    assert_debug::<Engine<u64, u64, NotDebug, NotDebug, NotDebugData>>();
    assert_debug::<Snapshot<u64, u64, NotDebugData>>();
    assert_debug::<Reader<'static, u64, u64, NotDebugData>>();
    assert_debug::<ThreadEntry<u64, NotDebug, NotDebug>>();
    assert_debug::<NoListener<NotDebug>>();
    assert_debug::<Listener<NotDebug>>();
    assert_debug::<Reply<NotDebug>>();
    assert_debug::<PendingReply<NotDebug>>();
}

#[test]
fn other_public_types_are_debug() {
    assert_debug::<Caps>();
    assert_debug::<NotConnected>();
    assert_debug::<CancelToken>();
    assert_debug::<SubscriberWatch>();
    assert_debug::<Subscribers<u64>>();
    assert_debug::<Snapshot<u64, u64>>();
    assert_debug::<Reader<'static, u64, u64>>();
    assert_debug::<ChangeFeed<u64, u64>>();
    assert_debug::<ChangeBatch<u64, u64>>();
    assert_debug::<Stats>();
    assert_debug::<Config>();
}

#[test]
fn debug_output_is_usable() {
    // Exercise the impls at runtime too, with payloads that are not Debug.
    let e: Engine<u64, u64, NotDebug, NotDebug> = Engine::new();
    e.connect(1, Caps(1));
    let t = e.subscribe(7, 1).unwrap();
    let owner = Arc::new(());
    let l = t.set_listener(&owner);
    assert!(!format!("{e:?}").is_empty());
    assert!(!format!("{t:?}").is_empty());
    assert!(!format!("{l:?}").is_empty());
    assert!(!format!("{:?}", l.token()).is_empty());
    assert!(!format!("{:?}", e.subscribers(7)).is_empty());
    assert!(!format!("{:?}", e.snapshot()).is_empty());
    assert!(!format!("{:?}", e.watch_subscribers(7).unwrap()).is_empty());
    let err = t.send(NotDebug);
    t.clear_listener();
    assert!(err.is_ok());
    let err = t.send(NotDebug).unwrap_err();
    assert!(!format!("{err:?}").is_empty());
    assert!(!err.to_string().is_empty());
    assert!(!NotConnected.to_string().is_empty());
    assert!(!format!("{:?}", e.changes()).is_empty());
    assert!(!Lagged.to_string().is_empty());
}
