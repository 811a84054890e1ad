//! Serving on loopback with an off switch, shared by every simulator: while
//! "down" the port is closed (connection refused) and open connections fail
//! on their next read or write, which is what a crashed or restarting server
//! looks like to a client.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A listener for `axum::serve` that closes its port while `down` is true
/// and rebinds the same address when it turns false.
pub(crate) struct OffSwitch {
    listener: Option<TcpListener>,
    addr: SocketAddr,
    down: watch::Receiver<bool>,
}

impl OffSwitch {
    /// Wrap a bound listener.
    pub(crate) fn new(listener: TcpListener, down: watch::Receiver<bool>) -> io::Result<Self> {
        let addr = listener.local_addr()?;
        Ok(OffSwitch { listener: Some(listener), addr, down })
    }
}

impl axum::serve::Listener for OffSwitch {
    type Io = Severable;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Severable, SocketAddr) {
        loop {
            if *self.down.borrow_and_update() {
                self.listener = None;
                if self.down.wait_for(|down| !*down).await.is_err() {
                    std::future::pending::<()>().await;
                }
                continue;
            }
            let Some(listener) = &self.listener else {
                match TcpListener::bind(self.addr).await {
                    Ok(l) => self.listener = Some(l),
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                }
                continue;
            };
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let _ = stream.set_nodelay(true);
                        return (Severable { stream, down: self.down.clone() }, peer);
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
pub(crate) struct Severable {
    stream: TcpStream,
    down: watch::Receiver<bool>,
}

impl Severable {
    fn alive(&self) -> io::Result<()> {
        if *self.down.borrow() {
            Err(io::Error::new(io::ErrorKind::ConnectionReset, "simulated server down"))
        } else {
            Ok(())
        }
    }
}

impl AsyncRead for Severable {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        self.alive()?;
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Severable {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.alive()?;
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.alive()?;
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
