//! Serving the LLM simulator on loopback, with the crate's off switch
//! (`crate::offswitch`) for `set_down`.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};

use axum::Router;
use tokio::net::TcpListener;
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

pub(crate) async fn serve(router: Router, down: watch::Receiver<bool>, port: u16) -> io::Result<SimServer> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let listener = crate::offswitch::OffSwitch::new(listener, down)?;
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok(SimServer { addr, task })
}
