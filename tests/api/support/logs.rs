//! What the server logged during a test.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

use serde_json::Value;
use tracing::subscriber::{DefaultGuard, NoSubscriber};
use tracing::{Dispatch, Event, Level, Subscriber};
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
        ask_every_capture();
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

/// A subscriber registered for the whole run, beside the captures.
///
/// tracing decides whether a log call site is wanted when a thread first reaches it. While a
/// single subscriber is registered, it asks only the subscriber of that thread: a call site
/// first reached by the server of a test that captures nothing would stay unwanted by every
/// capture. With a second subscriber registered, it asks all of them, and each capture then
/// sees every event of its own thread.
static SECOND_SUBSCRIBER: LazyLock<Dispatch> = LazyLock::new(|| Dispatch::new(NoSubscriber::new()));

/// Makes every call site ask every capture, whichever thread reaches it first.
fn ask_every_capture() {
    LazyLock::force(&SECOND_SUBSCRIBER);
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
        ask_every_capture();
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
