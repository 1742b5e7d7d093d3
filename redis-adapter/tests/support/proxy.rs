//! A loopback TCP proxy in front of a redis-server that can make the
//! subscription connections that exist now go silent: still up, still
//! accepting commands, but nothing from Redis reaches the client; or cut
//! every connection through it (a partition: bytes stop both ways, the
//! sockets stay open, and what was sent meanwhile arrives once healed).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Default)]
struct Link {
    /// The client sent SUBSCRIBE on it.
    pubsub: AtomicBool,
    /// Redis's bytes are dropped instead of forwarded.
    silent: AtomicBool,
}

pub struct Proxy {
    pub port: u16,
    links: Arc<Mutex<Vec<Arc<Link>>>>,
    /// While set, nothing is forwarded either way (held, not dropped).
    cut: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    pub async fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let port = listener.local_addr().unwrap().port();
        let links: Arc<Mutex<Vec<Arc<Link>>>> = Arc::default();
        let l = Arc::clone(&links);
        let cut: Arc<AtomicBool> = Arc::default();
        let c = Arc::clone(&cut);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                    continue;
                };
                let link = Arc::new(Link::default());
                l.lock().unwrap().push(Arc::clone(&link));
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let up = Arc::clone(&link);
                let (cut_up, cut_down) = (Arc::clone(&c), Arc::clone(&c));
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 16 * 1024];
                    while let Ok(n) = cr.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        hold(&cut_up).await;
                        if buf[..n]
                            .windows(9)
                            .any(|w| w.eq_ignore_ascii_case(b"SUBSCRIBE"))
                        {
                            up.pubsub.store(true, Ordering::SeqCst);
                        }
                        if sw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 16 * 1024];
                    while let Ok(n) = sr.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        hold(&cut_down).await;
                        if link.silent.load(Ordering::SeqCst) {
                            continue;
                        }
                        if cw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        Proxy {
            port,
            links,
            cut,
            task,
        }
    }

    /// Cuts every connection through the proxy until `heal`: bytes stop
    /// both ways (held, not dropped), sockets stay open.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
    }

    /// Ends a `cut`: held bytes flow on, in order.
    pub fn heal(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Silences every subscription connection open now; returns how many.
    pub fn silence_pubsub(&self) -> usize {
        let links = self.links.lock().unwrap();
        let mut n = 0;
        for link in links.iter().filter(|l| l.pubsub.load(Ordering::SeqCst)) {
            link.silent.store(true, Ordering::SeqCst);
            n += 1;
        }
        n
    }
}

/// Waits while the proxy is cut (bounded: a test heals within seconds).
async fn hold(cut: &AtomicBool) {
    for _ in 0..6000 {
        if !cut.load(Ordering::SeqCst) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}
