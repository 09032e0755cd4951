//! Where an instance is in its life: waiting for PostgreSQL, migrating, serving or stopping.
//!
//! [`crate::server`] moves the instance from one phase to the next; `/readyz` reports the phase,
//! and requests that need the database are refused until the instance serves.

use tokio::sync::watch;

/// One phase of an instance's life, in the order they come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Listening, but PostgreSQL has not answered yet.
    WaitingForDatabase,
    /// PostgreSQL answers; the database is being created or migrated.
    Migrating,
    /// Serving requests.
    Serving,
    /// SIGTERM arrived: still serving requests, but reporting itself not ready so that load
    /// balancers send no new ones.
    Stopping,
}

impl Phase {
    /// Whether requests that need the database may run.
    pub fn has_started(self) -> bool {
        matches!(self, Self::Serving | Self::Stopping)
    }
}

/// The phase of this instance, shared by the server and its request handlers.
#[derive(Debug)]
pub struct Lifecycle(watch::Sender<Phase>);

impl Lifecycle {
    /// An instance in `phase`.
    pub fn new(phase: Phase) -> Self {
        Self(watch::Sender::new(phase))
    }

    /// The phase now.
    pub fn phase(&self) -> Phase {
        *self.0.borrow()
    }

    /// Moves the instance to `phase`.
    pub fn enter(&self, phase: Phase) {
        self.0.send_replace(phase);
    }
}

impl Default for Lifecycle {
    /// An instance that has just started listening.
    fn default() -> Self {
        Self::new(Phase::WaitingForDatabase)
    }
}
