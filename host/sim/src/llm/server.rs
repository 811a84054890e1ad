//! Serving on loopback with an off switch: while "down" the port is closed
//! (connection refused) and open connections fail on their next read or
//! write (a dropped stream), which is what a crashed or restarting server
//! looks like to a client.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A simulator being served in the background; dropping it stops accepting
/// connections.
#[derive(Debug)]
pub struct SimServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl SimServer {
    /// The bound address (loopback, with the real port when 0 was asked).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Base URL, e.g. `http://127.0.0.1:11434`; the OpenAI API is under `/v1`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub(crate) async fn serve(
    router: Router,
    down: watch::Receiver<bool>,
    port: u16,
) -> io::Result<SimServer> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let listener = Switchable {
        inner: Some(listener),
        addr,
        down,
    };
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok(SimServer { addr, task })
}

/// A TCP listener that closes its port while down and rebinds it when up.
struct Switchable {
    inner: Option<TcpListener>,
    addr: SocketAddr,
    down: watch::Receiver<bool>,
}

impl axum::serve::Listener for Switchable {
    type Io = Cuttable;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Cuttable, SocketAddr) {
        loop {
            if *self.down.borrow_and_update() {
                self.inner = None;
                if self.down.wait_for(|down| !*down).await.is_err() {
                    std::future::pending::<()>().await;
                }
                continue;
            }
            let Some(listener) = &self.inner else {
                match TcpListener::bind(self.addr).await {
                    Ok(l) => self.inner = Some(l),
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                }
                continue;
            };
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let _ = stream.set_nodelay(true);
                        return (Cuttable { stream, down: self.down.clone() }, peer);
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
                },
                _ = self.down.changed() => {}
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.addr)
    }
}

/// A connection that fails as soon as the server goes down.
struct Cuttable {
    stream: TcpStream,
    down: watch::Receiver<bool>,
}

impl Cuttable {
    fn check(&self) -> io::Result<()> {
        if *self.down.borrow() {
            Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "simulated server down",
            ))
        } else {
            Ok(())
        }
    }
}

impl AsyncRead for Cuttable {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.check()?;
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Cuttable {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.check()?;
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.check()?;
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
