//! A TCP proxy on loopback that a test can cut, to play a network that fails between two
//! processes.
//!
//! A cut behaves like a pulled cable, not like a refused connection: open connections stop
//! carrying bytes (nothing is closed, so the peers notice only through their own timeouts)
//! and new connections are accepted but go nowhere. Restoring closes the dead connections and
//! forwards new ones again.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A loopback TCP proxy in front of one address.
pub struct TcpProxy {
    addr: SocketAddr,
    cut: Arc<AtomicBool>,
    generation: watch::Sender<u64>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl TcpProxy {
    /// Starts forwarding from a free loopback port to `target`, on a thread of its own.
    pub fn start(target: SocketAddr) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let cut = Arc::new(AtomicBool::new(false));
        let (generation, _) = watch::channel(0u64);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (cut_flag, generations) = (cut.clone(), generation.clone());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = TcpListener::from_std(listener).unwrap();
                let accept = async {
                    loop {
                        let Ok((client, _)) = listener.accept().await else {
                            continue;
                        };
                        tokio::spawn(connection(
                            client,
                            target,
                            cut_flag.clone(),
                            generations.subscribe(),
                        ));
                    }
                };
                tokio::select! {
                    _ = accept => {}
                    _ = stopped => {}
                }
            });
        });
        TcpProxy {
            addr,
            cut,
            generation,
            stop: Some(stop),
        }
    }

    /// The address to connect to instead of the target.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Cuts the network: bytes stop flowing both ways, on open and new connections.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
    }

    /// Restores the network: the connections that lived through the cut are closed (as a
    /// peer's timeout would have ended them), new ones are forwarded.
    pub fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn connection(
    client: TcpStream,
    target: SocketAddr,
    cut: Arc<AtomicBool>,
    mut generation: watch::Receiver<u64>,
) {
    let born_cut = cut.load(Ordering::SeqCst);
    let upstream = if born_cut {
        None
    } else {
        TcpStream::connect(target).await.ok()
    };
    let Some(upstream) = upstream else {
        // Accepted during a cut (or the target is down): hold it, silent, until restored.
        let _ = generation.changed().await;
        return;
    };
    let (mut client_read, mut client_write) = client.into_split();
    let (mut upstream_read, mut upstream_write) = upstream.into_split();
    let pump = async {
        tokio::join!(
            pump(&mut client_read, &mut upstream_write, &cut),
            pump(&mut upstream_read, &mut client_write, &cut),
        )
    };
    tokio::select! {
        _ = pump => {}
        _ = generation.changed() => {}
    }
    let _ = client_write.shutdown().await;
    let _ = upstream_write.shutdown().await;
}

/// Copies bytes while the network is up; during a cut, what arrives is swallowed.
async fn pump(
    from: &mut tokio::net::tcp::OwnedReadHalf,
    to: &mut tokio::net::tcp::OwnedWriteHalf,
    cut: &AtomicBool,
) {
    use tokio::io::AsyncReadExt;
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if cut.load(Ordering::SeqCst) {
            continue;
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}
