//! The supervised listener (`Supervisor`) under tokio: get-or-start, the
//! slot cleared however a task ends, panics reported, the idle policy.
//!
//! The linger tests run on tokio's paused clock (`start_paused`): time
//! moves only when every task waits, so "a join during the linger" is
//! exact, not a race with the machine's load.
//!
//! Known to catch: a get-or-start that tests and starts in two steps (two
//! tasks for one room); a task that does not clear its slot when it ends,
//! panics or is dropped (the next `start` gets `None`); a swallowed panic
//! (reported as `Ended`) or one that unwinds into the executor; an idle
//! policy that unloads before the linger, does not re-arm on a join during
//! it, or unloads a thread that still has a subscriber (`remove_thread`
//! instead of `remove_entry_if_idle`).

use futures::StreamExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use switchboard_async::prelude::*;
use switchboard_async::{
    Caps, Engine, ListenerStream, Reply, SupervisedTask, Supervisor, TaskEnd, ThreadEntry,
};
use tokio::time::{sleep, timeout, Instant};

enum Cmd {
    Count(Reply<u32>),
    Quit,
    Panic,
}

type E = Engine<u64, u64, (), Cmd>;
type Room = Arc<ThreadEntry<u64, (), Cmd>>;

/// Bounds every await on a task's end.
const LIMIT: Duration = Duration::from_secs(20);

/// Serves `Count` (answering how many it served), returns on `Quit`,
/// panics on `Panic`.
async fn serve(mut commands: ListenerStream<Cmd>, _room: Room) {
    let mut counted = 0;
    while let Some(cmd) = commands.next().await {
        match cmd {
            Cmd::Count(reply) => {
                counted += 1;
                reply.send(counted);
            }
            Cmd::Quit => return,
            Cmd::Panic => panic!("room handler failed"),
        }
    }
}

fn supervisor(engine: &Arc<E>) -> Supervisor<u64, u64, (), Cmd> {
    Supervisor::new(engine, serve)
}

fn idle_supervisor(engine: &Arc<E>, linger: Duration) -> Supervisor<u64, u64, (), Cmd> {
    supervisor(engine).unload_when_idle(linger, sleep)
}

async fn end_of(task: tokio::task::JoinHandle<TaskEnd>) -> TaskEnd {
    timeout(LIMIT, task)
        .await
        .expect("the task ended in time")
        .expect("the task did not unwind into the executor")
}

async fn count(room: &Room) -> u32 {
    room.request(Cmd::Count)
        .unwrap()
        .into_async()
        .await
        .unwrap()
}

#[tokio::test]
async fn smoke() {
    let engine = Arc::new(E::new());
    let rooms = supervisor(&engine);
    engine.connect(1, Caps::NONE);
    let room = engine.subscribe(7, 1).unwrap();
    let task = tokio::spawn(rooms.start(&room).expect("first start"));
    assert!(rooms.start(&room).is_none(), "already running");
    assert!(rooms.is_supervising(&room));
    assert_eq!(count(&room).await, 1);
    assert_eq!(count(&room).await, 2);
    room.send(Cmd::Quit).map_err(drop).unwrap();
    assert!(matches!(end_of(task).await, TaskEnd::Ended));
    assert!(!room.has_listener());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_concurrent_joiners_start_one_task() {
    const ROOMS: u64 = 20;
    const JOINERS: u64 = 16;
    let engine = Arc::new(E::new());
    let rooms = supervisor(&engine);
    for room in 0..ROOMS {
        let gate = Arc::new(tokio::sync::Barrier::new(JOINERS as usize));
        let joiners: Vec<_> = (0..JOINERS)
            .map(|j| {
                let (engine, rooms, gate) = (Arc::clone(&engine), rooms.clone(), Arc::clone(&gate));
                tokio::spawn(async move {
                    let conn = room * JOINERS + j;
                    engine.connect(conn, Caps::NONE);
                    gate.wait().await;
                    let entry = engine.subscribe(room, conn).unwrap();
                    rooms.start(&entry).map(tokio::spawn)
                })
            })
            .collect();
        let mut started = Vec::new();
        for j in joiners {
            if let Some(task) = timeout(LIMIT, j).await.unwrap().unwrap() {
                started.push(task);
            }
        }
        assert_eq!(
            started.len(),
            1,
            "room {room}: one task, not {}",
            started.len()
        );
        let entry = engine.get_thread(room).unwrap();
        assert_eq!(entry.generation(), 1);
        assert_eq!(count(&entry).await, 1);
        entry.send(Cmd::Quit).map_err(drop).unwrap();
        let task = started.pop().unwrap();
        assert!(matches!(end_of(task).await, TaskEnd::Ended));
    }
}

#[tokio::test]
async fn an_ended_task_frees_the_slot_for_the_next_caller() {
    let engine = Arc::new(E::new());
    let rooms = supervisor(&engine);
    let room = engine.thread(7);
    for generation in 1..=3 {
        let task = rooms.start(&room).expect("the slot is free");
        assert_eq!(task.generation(), generation);
        let task = tokio::spawn(task);
        assert!(rooms.start(&room).is_none());
        room.send(Cmd::Quit).map_err(drop).unwrap();
        assert!(matches!(end_of(task).await, TaskEnd::Ended));
        // Cleared before the end was reported.
        assert!(!room.has_listener());
    }
}

#[tokio::test]
async fn a_panicking_handler_is_reported_and_its_slot_cleared() {
    let engine = Arc::new(E::new());
    let rooms = supervisor(&engine);
    let room = engine.thread(7);
    let task = tokio::spawn(rooms.start(&room).unwrap());
    assert_eq!(count(&room).await, 1);
    room.send(Cmd::Panic).map_err(drop).unwrap();
    let end = end_of(task).await;
    assert!(end.is_panicked(), "{end:?}");
    assert_eq!(end.panic_message(), Some("room handler failed"));
    assert!(!room.has_listener());
    // A new task serves the room, from a fresh count.
    let task = tokio::spawn(rooms.start(&room).expect("slot cleared"));
    assert_eq!(count(&room).await, 1);
    room.clear_listener();
    assert!(matches!(end_of(task).await, TaskEnd::Ended));
}

#[tokio::test]
async fn a_panic_in_the_handler_call_itself_is_reported() {
    let engine = Arc::new(E::new());
    let rooms: Supervisor<u64, u64, (), Cmd> =
        Supervisor::new(&engine, |_commands, _room| -> futures::future::Ready<()> {
            panic!("no handler for this room")
        });
    let room = engine.thread(7);
    let end = end_of(tokio::spawn(rooms.start(&room).unwrap())).await;
    assert_eq!(end.panic_message(), Some("no handler for this room"));
    assert!(rooms.start(&room).is_some(), "slot cleared");
}

#[tokio::test]
async fn a_dropped_task_clears_its_slot_even_if_the_handler_kept_its_stream() {
    let engine = Arc::new(E::new());
    let kept: Arc<Mutex<Vec<ListenerStream<Cmd>>>> = Arc::default();
    let keep = Arc::clone(&kept);
    let rooms = Supervisor::new(&engine, move |commands, _room| {
        keep.lock().unwrap().push(commands); // leaks the stream
        futures::future::pending::<()>()
    });
    let room = engine.thread(7);
    let mut task = rooms.start(&room).unwrap();
    assert!(futures::poll!(&mut task).is_pending());
    assert_eq!(kept.lock().unwrap().len(), 1);
    assert!(room.has_listener());
    drop(task);
    assert!(!room.has_listener(), "the dropped task left its slot taken");
    assert!(kept.lock().unwrap()[0].is_cancelled());
    assert!(rooms.start(&room).is_some());
}

#[tokio::test]
async fn no_start_after_shutdown_or_once_the_engine_is_gone() {
    let engine = Arc::new(E::new());
    let rooms = supervisor(&engine);
    let room = engine.thread(7);
    let task = tokio::spawn(rooms.start(&room).unwrap());
    timeout(LIMIT, engine.shutdown_async()).await.unwrap();
    assert!(matches!(end_of(task).await, TaskEnd::Ended));
    assert!(rooms.start(&room).is_none());
    assert!(rooms.start(&engine.thread(8)).is_none());

    let engine = Arc::new(E::new());
    let rooms = supervisor(&engine);
    let room = engine.thread(7);
    drop(engine);
    assert!(rooms.start(&room).is_none());
}

#[tokio::test(start_paused = true)]
async fn an_idle_room_is_unloaded_after_the_linger() {
    const LINGER: Duration = Duration::from_secs(5);
    let engine = Arc::new(E::new());
    let rooms = idle_supervisor(&engine, LINGER);
    engine.connect(1, Caps::NONE);
    let room = engine.subscribe(7, 1).unwrap();
    let task = tokio::spawn(rooms.start(&room).unwrap());
    assert_eq!(count(&room).await, 1);

    // Subscribed: never unloaded, however long.
    sleep(LINGER * 3).await;
    assert!(engine.get_thread(7).is_some());
    assert!(!task.is_finished());

    let left = Instant::now();
    engine.disconnect(1);
    sleep(LINGER - Duration::from_millis(1)).await;
    assert!(engine.get_thread(7).is_some(), "unloaded before the linger");
    let end = end_of(task).await;
    assert!(matches!(end, TaskEnd::Unloaded), "{end:?}");
    assert!(left.elapsed() >= LINGER);
    assert!(engine.get_thread(7).is_none());
    assert!(!room.has_listener());
}

#[tokio::test(start_paused = true)]
async fn a_join_during_the_linger_rearms_it() {
    const LINGER: Duration = Duration::from_secs(5);
    let engine = Arc::new(E::new());
    let rooms = idle_supervisor(&engine, LINGER);
    engine.connect(1, Caps::NONE);
    engine.connect(2, Caps::NONE);
    let room = engine.subscribe(7, 1).unwrap();
    let task = tokio::spawn(rooms.start(&room).unwrap());

    engine.disconnect(1); // idle: the linger starts
    sleep(LINGER / 2).await;
    engine.subscribe(7, 2).unwrap(); // a join during the linger...
    sleep(Duration::from_secs(1)).await;
    engine.unsubscribe(7, 2); // ...and a leave: the linger starts again
    let left = Instant::now();

    sleep(LINGER - Duration::from_millis(1)).await;
    // The first linger ended long ago: re-armed, the room is still here.
    let now = engine.get_thread(7).expect("re-armed: not unloaded");
    assert!(Arc::ptr_eq(&now, &room));
    assert_eq!(count(&room).await, 1);

    let end = end_of(task).await;
    assert!(matches!(end, TaskEnd::Unloaded), "{end:?}");
    assert!(left.elapsed() >= LINGER);
    assert!(engine.get_thread(7).is_none());
}

#[tokio::test(start_paused = true)]
async fn a_member_who_stays_keeps_the_room() {
    const LINGER: Duration = Duration::from_secs(5);
    let engine = Arc::new(E::new());
    let rooms = idle_supervisor(&engine, LINGER);
    engine.connect(1, Caps::NONE);
    let room = engine.thread(7); // no subscriber yet: the linger runs
    let task = tokio::spawn(rooms.start(&room).unwrap());
    sleep(LINGER / 2).await;
    engine.subscribe(7, 1).unwrap();
    sleep(LINGER * 4).await;
    assert!(engine.get_thread(7).is_some());
    assert!(!task.is_finished());
    engine.disconnect(1);
    assert!(matches!(end_of(task).await, TaskEnd::Unloaded));
}

/// A join that lands as the linger ends (from inside the host's sleep, so
/// after the task stopped watching and before it unloads): the unload is
/// atomic against it, and the room stays loaded with its member.
#[tokio::test(start_paused = true)]
async fn a_join_as_the_linger_ends_keeps_the_room() {
    const LINGER: Duration = Duration::from_secs(5);
    let engine = Arc::new(E::new());
    engine.connect(1, Caps::NONE);
    engine.connect(2, Caps::NONE);
    let joined = Arc::new(AtomicUsize::new(0));
    let (e, j) = (Arc::clone(&engine), Arc::clone(&joined));
    let rooms = supervisor(&engine).unload_when_idle(LINGER, move |d| {
        let (e, j) = (Arc::clone(&e), Arc::clone(&j));
        async move {
            sleep(d).await;
            if j.fetch_add(1, Ordering::SeqCst) == 0 {
                e.subscribe(7, 2).unwrap(); // the first linger ends with a join
            }
        }
    });
    let room = engine.subscribe(7, 1).unwrap();
    let task = tokio::spawn(rooms.start(&room).unwrap());
    engine.disconnect(1);

    sleep(LINGER * 3).await;
    assert_eq!(
        joined.load(Ordering::SeqCst),
        1,
        "one linger ran, then a member"
    );
    let now = engine
        .get_thread(7)
        .expect("a room with a member was unloaded");
    assert!(Arc::ptr_eq(&now, &room));
    assert_eq!(engine.subscribers(7).to_vec(), [2]);
    assert_eq!(count(&room).await, 1);
    assert!(!task.is_finished());

    engine.disconnect(2);
    assert!(matches!(end_of(task).await, TaskEnd::Unloaded));
    assert_eq!(joined.load(Ordering::SeqCst), 2);
}

/// Joiners subscribe and start while the room's task unloads it on a zero
/// linger: a subscriber always holds the room's current entry (a racing
/// unload either loses, or came first and the subscribe made a new entry,
/// which the joiner then starts a task for).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_subscribe_racing_the_unload_never_loses_its_entry() {
    const JOINERS: u64 = 4;
    const ROUNDS: u64 = 300;
    let engine = Arc::new(E::new());
    let rooms = idle_supervisor(&engine, Duration::ZERO);
    let unloaded = Arc::new(AtomicUsize::new(0));
    let tasks: Arc<Mutex<Vec<tokio::task::JoinHandle<TaskEnd>>>> = Arc::default();
    let joiners: Vec<_> = (0..JOINERS)
        .map(|conn| {
            let (engine, rooms, tasks) = (Arc::clone(&engine), rooms.clone(), Arc::clone(&tasks));
            tokio::spawn(async move {
                engine.connect(conn, Caps::NONE);
                for _ in 0..ROUNDS {
                    let entry = engine.subscribe(7, conn).unwrap();
                    if let Some(task) = rooms.start(&entry) {
                        tasks.lock().unwrap().push(tokio::spawn(task));
                    }
                    tokio::task::yield_now().await;
                    // Still subscribed: the room is loaded, with our entry.
                    let current = engine.get_thread(7).expect("subscribed room unloaded");
                    assert!(
                        Arc::ptr_eq(&current, &entry),
                        "subscribed to a removed entry"
                    );
                    assert!(engine.subscribers(7).to_vec().contains(&conn));
                    assert!(engine.unsubscribe(7, conn));
                    tokio::task::yield_now().await;
                }
                engine.disconnect(conn);
            })
        })
        .collect();
    for j in joiners {
        timeout(LIMIT, j).await.unwrap().unwrap();
    }
    let tasks = std::mem::take(&mut *tasks.lock().unwrap());
    let started = tasks.len();
    for task in tasks {
        match end_of(task).await {
            TaskEnd::Unloaded => {
                unloaded.fetch_add(1, Ordering::Relaxed);
            }
            TaskEnd::Ended => {}
            other => panic!("{other:?}"),
        }
    }
    // The last room unloads once everyone left.
    assert!(engine.get_thread(7).is_none());
    assert!(unloaded.load(Ordering::Relaxed) >= 1);
    assert!(started >= 1);
    engine.snapshot().validate().unwrap();
}

#[tokio::test]
async fn supervised_tasks_are_fused() {
    use futures::future::FusedFuture;
    let engine = Arc::new(E::new());
    let rooms = supervisor(&engine);
    let room = engine.thread(7);
    let mut task: SupervisedTask = rooms.start(&room).unwrap();
    assert!(!task.is_terminated());
    room.clear_listener();
    assert!(matches!((&mut task).await, TaskEnd::Ended));
    assert!(task.is_terminated());
    assert!(futures::poll!(&mut task).is_pending(), "ready again");
}

/// A state with no `Default`: the supervisor, its idle policy and the
/// facade's waits serve it (the engine needs `Default` only where it makes
/// a state by itself; `subscribe_with` gives one).
#[tokio::test]
async fn a_state_without_default_is_supervised_and_unloaded() {
    struct Named(&'static str);
    let engine: Arc<Engine<u64, u64, Named, Cmd>> = Arc::new(Engine::new());
    let rooms = Supervisor::new(&engine, |mut commands, room| async move {
        assert_eq!(room.state().0, "lobby");
        while let Some(cmd) = commands.next().await {
            if let Cmd::Count(reply) = cmd {
                reply.send(1);
            }
        }
    })
    .unload_when_idle(Duration::from_millis(5), sleep);
    engine.connect(1, Caps::NONE);
    let room = engine.subscribe_with(7, 1, || Named("lobby")).unwrap();
    let task = tokio::spawn(rooms.start(&room).expect("starts"));
    let answer = room.request(Cmd::Count).unwrap().into_async().await;
    assert_eq!(answer.ok(), Some(1));
    let idle = engine.wait_idle(7);
    engine.disconnect(1);
    timeout(LIMIT, idle).await.expect("idle in time");
    assert!(matches!(end_of(task).await, TaskEnd::Unloaded));
    assert!(engine.get_thread(7).is_none());
}
