//! Ctrl-C (SIGINT) on one cluster node hands its rooms over: its
//! websockets close with 1012, its leases are released (a new owner answers
//! well before a lease could expire), it exits cleanly, and every say acked
//! before the signal reaches the surviving members exactly once.

use super::*;

/// Every lease key (rooms, sessions, node id prefixes) held by `node`.
fn leases_of(port: u16, node: &str) -> Vec<String> {
    let mut held = Vec::new();
    for pattern in ["wsgw.o.*", "wsgw.c.o.*"] {
        for key in redis_cli(port, &["--scan", "--pattern", pattern]).lines() {
            if redis_cli(port, &["hget", key, "n"]).trim() == node {
                held.push(key.to_owned());
            }
        }
    }
    held
}

/// `room`'s owner, as an ask from `c` names it (asked until answered).
async fn owner(c: &mut Client, room: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let a = c.request(json!({"op": "ask", "room": room})).await.unwrap();
        if a["op"] == "count" {
            return a["owner"].as_str().unwrap().to_owned();
        }
        assert!(Instant::now() < deadline, "no owner for {room}: {a}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Sends SIGINT (Ctrl-C) to `proc`.
fn sigint(proc: &Proc) {
    let pid = proc.0.id().to_string();
    let status = Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill");
    assert!(status.success(), "kill -INT {pid}");
}

/// Ctrl-C on one of two nodes: every websocket it holds is closed with
/// 1012 (after its room leases were released), the process exits, its rooms are owned anew on the other node
/// well before its leases could have expired (so they were released), no
/// lease of it is left in Redis, and every say acked before the signal
/// reached each member on the other node exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_hands_rooms_over() {
    // Long enough that an expiry (at least 3/4 of it after the signal: the
    // lease is renewed every quarter) cannot pass for a release.
    const LEASE: u64 = 4000;
    let Some((_redis, port)) = redis_server() else {
        return;
    };
    let started = Instant::now();
    let (n1, a1) = gateway_with_lease(port, "n1", LEASE);
    let (_n2, a2) = gateway_with_lease(port, "n2", LEASE);
    let rooms: Vec<String> = ["sig-a", "sig-b", "sig-c"].map(String::from).into();
    // Three websockets on each node, one of each resuming a session (a
    // session lease), all in every room; n1 owns sig-a and sig-b, n2 sig-c.
    let mut on1 = vec![resumed(a1, "sig-s1", &rooms[..2]).await.unwrap()];
    on1.push(Client::connect(a1).await);
    on1.push(Client::connect(a1).await);
    let mut on2 = vec![resumed(a2, "sig-s2", &rooms[2..]).await.unwrap()];
    on2.push(Client::connect(a2).await);
    on2.push(Client::connect(a2).await);
    for room in &rooms[..2] {
        assert_eq!(owner(&mut on1[0], room).await, "n1");
    }
    assert_eq!(owner(&mut on2[0], &rooms[2]).await, "n2");
    for c in on1.iter_mut().chain(on2.iter_mut()) {
        for room in &rooms {
            let j = c
                .request(json!({"op": "join", "room": room}))
                .await
                .unwrap();
            assert_eq!(j["op"], "joined", "{j}");
        }
    }
    // Says from every websocket, in every room; the acked ones recorded.
    let mut acked: Vec<(String, u64)> = Vec::new();
    for k in 0..4 {
        for c in on1.iter_mut().chain(on2.iter_mut()) {
            let room = &rooms[k % rooms.len()];
            let text = format!("{}-{k}", c.conn);
            let said = c
                .request(json!({"op": "say", "room": room, "text": text}))
                .await
                .unwrap();
            assert_eq!(said["op"], "said", "{said}");
            acked.push((room.clone(), c.sent.last().unwrap().id));
        }
    }
    assert_eq!(
        leases_of(port, "n1").len(),
        4,
        "2 rooms, 1 session, 1 id prefix"
    );

    // Ctrl-C on n1.
    let signalled = Instant::now();
    sigint(&n1);
    let closes: Vec<_> = on1
        .into_iter()
        .map(|mut c| {
            tokio::spawn(async move {
                let code = tokio::time::timeout(Duration::from_secs(5), c.until_closed())
                    .await
                    .expect("closed in time");
                // Told to reconnect only once its rooms were handed over.
                let rooms_held = tokio::task::spawn_blocking(move || {
                    let held = leases_of(port, "n1");
                    held.into_iter()
                        .filter(|k| k.starts_with("wsgw.o."))
                        .collect::<Vec<_>>()
                });
                let rooms_held = rooms_held.await.unwrap();
                assert!(
                    rooms_held.is_empty(),
                    "1012 while n1 still held {rooms_held:?}"
                );
                (code, signalled.elapsed())
            })
        })
        .collect();
    // n1's rooms, owned anew through n2 (a member there claims them). A
    // lease renewed at most a quarter before the signal lives 3/4 of its
    // length after it: owned anew well before, it was released.
    let bound = Duration::from_millis(LEASE / 2);
    let mut taken_over = Duration::ZERO;
    for room in &rooms[..2] {
        loop {
            let a = on2[1]
                .request(json!({"op": "ask", "room": room}))
                .await
                .unwrap();
            if a["op"] == "count" && a["owner"] != "n1" {
                assert_eq!(a["owner"], "n2", "{a}");
                break;
            }
            assert!(
                signalled.elapsed() < bound,
                "{room} not owned anew {bound:?} after SIGINT (lease {LEASE} ms): {a}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        taken_over = signalled.elapsed();
    }
    let mut closed_after = Duration::ZERO;
    for close in closes {
        let (code, after) = close.await.unwrap();
        assert_eq!(code, 1012, "n1's websockets are closed as a restart");
        closed_after = closed_after.max(after);
    }
    // The process exits, by itself.
    let mut n1 = n1;
    let exit = loop {
        if let Some(status) = n1.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(10),
            "n1 did not exit"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let exited_after = signalled.elapsed();
    assert!(exit.success(), "n1 exited with {exit}");
    let left = leases_of(port, "n1");
    assert!(
        left.is_empty(),
        "n1's leases left after it exited: {left:?}"
    );

    // Every say acked before the signal reached each n2 member once: a
    // marker said through the new owners comes after them in every room.
    let mut markers = Vec::new();
    for room in &rooms {
        let r = on2[0]
            .request(json!({"op": "say", "room": room, "text": "marker"}))
            .await
            .unwrap();
        assert_eq!(r["op"], "said", "{r}");
        markers.push(on2[0].sent.last().unwrap().id);
    }
    for c in on2.iter_mut() {
        let seen = |c: &Client, mid: u64| {
            c.frames
                .iter()
                .filter(|(_, f)| f["op"] == "msg" && f["mid"] == mid)
                .count()
        };
        while !markers.iter().all(|&m| seen(c, m) == 1) {
            c.next().await.expect("open");
        }
        for (room, mid) in &acked {
            let got: Vec<_> = c
                .frames
                .iter()
                .filter(|(_, f)| f["op"] == "msg" && f["mid"] == *mid)
                .collect();
            assert_eq!(
                got.len(),
                1,
                "conn {} got say {mid} {} times",
                c.conn,
                got.len()
            );
            assert_eq!(got[0].1["room"], room.as_str());
        }
        c.close().await;
    }
    println!(
        "sigint run: {} says acked before Ctrl-C; n1's websockets closed (1012) within {closed_after:?}, \
         its rooms owned anew after {taken_over:?} (lease {LEASE} ms), exited after {exited_after:?}; \
         {:?} in all",
        acked.len(),
        started.elapsed(),
    );
}
