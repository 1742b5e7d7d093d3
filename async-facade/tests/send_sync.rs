//! Compile-time `Send` checks on every facade future and stream (model:
//! tokio's `tests/async_send_sync.rs`). These tests pass by compiling.
//!
//! Payloads are `Cell<u32>`, which is `Send` but not `Sync`, so the checks
//! prove "`Send` when `M` and `R` are" without leaning on `Sync`; the
//! negative checks use `Rc`, which is neither.

use futures::StreamExt;
use std::cell::Cell;
use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;
use switchboard_async::prelude::*;
use switchboard_async::{
    Cancelled, ChangeStream, Changed, Engine, ListenerStream, QueueConfig, Reply, ReplyFuture,
    SendAsync, ShutdownFuture, SupervisedTask, Supervisor, TaskEnd, ThreadEntry, WaitIdle,
    WatchStream,
};

fn require_send<T: Send>(_: &T) {}
fn require_unpin<T: Unpin>(_: &T) {}
fn require_spawnable<F: Future + Send + 'static>(_: &F) {}

/// `some_item` is ambiguous, so a call fails to compile, exactly when `T: Send`.
trait AmbiguousIfSend<A> {
    fn some_item(&self) {}
}
impl<T: ?Sized> AmbiguousIfSend<()> for T {}
struct Invalid;
impl<T: ?Sized + Send> AmbiguousIfSend<Invalid> for T {}

/// Fails to compile if `$type` is `Send`.
macro_rules! assert_not_send {
    ($type:ty) => {
        #[allow(unreachable_code, unused_variables, clippy::diverging_sub_expression)]
        const _: fn() = || {
            let value: $type = todo!();
            AmbiguousIfSend::some_item(&value);
        };
    };
}

assert_not_send!(ListenerStream<Rc<u32>>);
assert_not_send!(ReplyFuture<Rc<u32>>);
assert_not_send!(SendAsync<'static, ThreadEntry<u64, (), Rc<u32>>, Rc<u32>>);

enum Cmd {
    Data(Cell<u32>),
    Ask(Reply<Cell<u32>>),
}

type E = Engine<u64, u64, Cell<u32>, Cmd>;

#[test]
fn smoke() {
    let e = E::new();
    require_send(&e.wait_idle(1));
}

#[test]
fn every_future_and_stream_is_send_and_unpin() {
    let e = E::new();
    let entry = e.thread(1);
    let listener = entry.set_listener(&Arc::new(()));

    let cancelled: Cancelled = listener.token().cancelled();
    require_send(&cancelled);
    require_unpin(&cancelled);

    let mut stream: ListenerStream<Cmd> = listener.into_stream();
    require_send(&stream);
    require_unpin(&stream);
    require_send(&stream.next());

    let reply: ReplyFuture<Cell<u32>> = entry.request(Cmd::Ask).unwrap().into_async();
    require_send(&reply);
    require_unpin(&reply);

    let mut watch = e.watch_subscribers(1).unwrap();
    {
        let changed: Changed<'_> = watch.changed();
        require_send(&changed);
        require_unpin(&changed);
    }

    let mut watch_stream: WatchStream = watch.into_stream();
    require_send(&watch_stream);
    require_unpin(&watch_stream);
    require_send(&watch_stream.next());

    let idle: WaitIdle = e.wait_idle(1);
    require_send(&idle);
    require_unpin(&idle);

    let send: SendAsync<'_, ThreadEntry<u64, Cell<u32>, Cmd>, Cmd> =
        entry.send_async(Cmd::Data(Cell::new(1)));
    require_send(&send);
    require_unpin(&send);

    let shutdown: ShutdownFuture<u64> = e.shutdown_async();
    require_send(&shutdown);
    require_unpin(&shutdown);
    require_spawnable(&shutdown);

    let mut changes: ChangeStream<u64, u64> = e.changes().into_stream();
    require_send(&changes);
    require_unpin(&changes);
    require_send(&changes.next());

    let entry_idle: WaitIdle = entry.wait_idle();
    require_send(&entry_idle);
    require_unpin(&entry_idle);
}

#[test]
fn a_supervisor_is_shared_and_its_tasks_are_spawnable() {
    fn require_sync<T: Sync>(_: &T) {}
    let e = Arc::new(E::new());
    let rooms = Supervisor::new(&e, |mut commands, room| async move {
        // A `Send` but not `Sync` payload, held across an await.
        while let Some(cmd) = commands.next().await {
            if let Cmd::Data(n) = cmd {
                *room.state() = n;
            }
        }
    })
    .queue(QueueConfig::bounded(4))
    .unload_when_idle(std::time::Duration::from_secs(1), |_| async {});
    require_send(&rooms);
    require_sync(&rooms);
    let task: SupervisedTask = rooms.start(&e.thread(1)).unwrap();
    require_send(&task);
    require_unpin(&task);
    require_spawnable(&task);
    let end = TaskEnd::Ended;
    require_send(&end);
}

#[test]
fn a_listener_task_is_spawnable() {
    // What a host hands to a multi-threaded executor: the whole task,
    // holding every facade type across awaits, must be `Send + 'static`.
    let e = Arc::new(E::new());
    let entry = e.thread(1);
    let listener = entry.set_listener(&Arc::new(()));
    let task = {
        let e = Arc::clone(&e);
        async move {
            let mut cancelled = listener.token().cancelled();
            let mut commands = listener.into_stream();
            let mut watch = e.watch_subscribers(1).unwrap();
            loop {
                futures::select! {
                    cmd = commands.next() => match cmd {
                        Some(Cmd::Ask(reply)) => reply.send(Cell::new(1)),
                        Some(Cmd::Data(n)) => { *entry.state() = n; }
                        None => break,
                    },
                    _ = watch.changed() => {}
                    () = cancelled => break,
                }
            }
            e.wait_idle(1).await;
        }
    };
    require_spawnable(&task);

    let requester = async move {
        let entry = e.thread(1);
        let answer = entry.request(Cmd::Ask).unwrap().into_async().await;
        let _ = entry
            .send_async(Cmd::Data(answer.unwrap_or_default()))
            .await;
        let _ = e
            .thread(2)
            .set_listener_with(&Arc::new(()), QueueConfig::bounded(1));
        let mut watch = e.watch_subscribers(1).unwrap().into_stream();
        while watch.next().await.is_some() {}
    };
    require_spawnable(&requester);
}
