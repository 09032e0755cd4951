//! What the server logged during a test.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tracing::subscriber::DefaultGuard;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};

/// Counts the ERROR events logged on this thread while it lives. A `#[tokio::test]` runs its
/// server on its own single thread, so that is everything the server logs for the test.
pub(crate) struct ErrorLog {
    errors: Arc<AtomicUsize>,
    _guard: DefaultGuard,
}

impl ErrorLog {
    /// Starts counting.
    pub(crate) fn capture() -> Self {
        let errors = Arc::new(AtomicUsize::new(0));
        let subscriber = tracing_subscriber::registry().with(ErrorCounter(Arc::clone(&errors)));
        Self {
            errors,
            _guard: tracing::subscriber::set_default(subscriber),
        }
    }

    /// How many ERROR events were logged so far.
    pub(crate) fn count(&self) -> usize {
        self.errors.load(Ordering::Relaxed)
    }
}

struct ErrorCounter(Arc<AtomicUsize>);

impl<S: Subscriber> Layer<S> for ErrorCounter {
    fn on_event(&self, event: &Event<'_>, _context: Context<'_, S>) {
        if *event.metadata().level() == Level::ERROR {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}
