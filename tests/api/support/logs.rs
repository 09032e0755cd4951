//! What the server logged during a test.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;
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

/// Every event logged on this thread while it lives, at every level, as the JSON lines
/// production writes.
pub(crate) struct JsonLog {
    lines: Arc<Mutex<Vec<u8>>>,
    _guard: DefaultGuard,
}

impl JsonLog {
    /// Starts capturing.
    pub(crate) fn capture() -> Self {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let writer = Arc::clone(&lines);
        let subscriber = tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_span_list(false)
            .with_max_level(Level::TRACE)
            .with_writer(move || SharedBuffer(Arc::clone(&writer)))
            .finish();
        Self {
            lines,
            _guard: tracing::subscriber::set_default(subscriber),
        }
    }

    /// The lines logged so far, parsed.
    pub(crate) fn lines(&self) -> Vec<Value> {
        let bytes = self.lines.lock().unwrap().clone();
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }
}

struct SharedBuffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for SharedBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
