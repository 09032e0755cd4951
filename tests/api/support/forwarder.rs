//! A loopback TCP forwarder to the test PostgreSQL server that a test can close and open: closed,
//! its port refuses connections as a server that is down does, and closing it cuts every
//! connection it carries, as a restart or a network failure would.

use std::net::SocketAddr;
use std::sync::Mutex;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

use crate::support::database;

/// A port on 127.0.0.1 that forwards to the test PostgreSQL server while open.
pub(crate) struct Forwarder {
    /// Where clients connect.
    address: SocketAddr,
    /// Where connections are forwarded to.
    upstream: SocketAddr,
    /// Accepts and carries connections while the forwarder is open; aborting it closes the port
    /// and cuts them all.
    running: Mutex<Option<JoinHandle<()>>>,
}

impl Forwarder {
    /// A forwarder on a port of its own, closed: connections are refused until [`Self::open`].
    pub(crate) fn closed() -> Self {
        // Binding port 0 and letting go of it leaves a port nothing else listens on.
        let address = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port");
        Self {
            address,
            upstream: database::server_address(),
            running: Mutex::new(None),
        }
    }

    /// A forwarder that is open from the start.
    pub(crate) async fn open() -> Self {
        let forwarder = Self::closed();
        forwarder.reopen().await;
        forwarder
    }

    /// Starts listening and forwarding again.
    pub(crate) async fn reopen(&self) {
        let listener = TcpListener::bind(self.address)
            .await
            .expect("the forwarder's port is still free");
        let upstream = self.upstream;
        let task = tokio::spawn(async move {
            // Dropped with this task when the forwarder closes, which aborts every connection.
            let mut connections = JoinSet::new();
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    break;
                };
                connections.spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                // Forget connections that ended, so the set holds the live ones only.
                while connections.try_join_next().is_some() {}
            }
        });
        let previous = self.running.lock().unwrap().replace(task);
        assert!(previous.is_none(), "the forwarder was open already");
    }

    /// Refuses new connections and cuts those it carries.
    pub(crate) async fn close(&self) {
        let task = self.running.lock().unwrap().take();
        if let Some(task) = task {
            task.abort();
            // Once the task is gone, its listener and every connection are closed.
            let _ = task.await;
        }
    }

    /// The URL of database `name` on the test server, through this forwarder.
    pub(crate) fn url_for(&self, name: &str) -> String {
        let mut url = url::Url::parse(&database::url_for(name)).expect("a database URL");
        url.set_host(Some("127.0.0.1")).expect("a host");
        url.set_port(Some(self.address.port())).expect("a port");
        url.to_string()
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        if let Some(task) = self
            .running
            .lock()
            .map(|mut running| running.take())
            .ok()
            .flatten()
        {
            task.abort();
        }
    }
}
