//! Logging and tracing: human-readable lines on a developer machine, JSON lines in production,
//! colours only on a terminal, and spans exported over OTLP/HTTP when an endpoint is set.

use std::io::IsTerminal as _;
use std::sync::{Mutex, OnceLock, PoisonError};

use opentelemetry::propagation::{Extractor, TextMapPropagator as _};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{SpanExporter, WithHttpConfig as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

use crate::config::{AppEnv, ConfigError};

/// The log filter when `RUST_LOG` is unset.
const DEFAULT_FILTER: &str = "festapi=info,tower_http=info,warn";

/// The tracer provider exporting spans, when an OTLP endpoint is set.
static TRACER_PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// The most log lines waiting for the writer thread; past it a request waits for room rather
/// than lose a line.
const BUFFERED_LINES: usize = 16_384;

/// Keeps the log writer thread running; taken and dropped at [`shutdown`], which writes out
/// whatever is still queued.
static LOG_WRITER: Mutex<Option<WorkerGuard>> = Mutex::new(None);

/// Installs the global log subscriber, filtered by `RUST_LOG` when it is set, and with
/// `otlp_endpoint` a layer exporting spans there.
///
/// Call it within the Tokio runtime: spans are exported on it.
pub fn init(env: AppEnv, otlp_endpoint: Option<&url::Url>) -> Result<(), ConfigError> {
    let directives = std::env::var("RUST_LOG")
        .ok()
        .filter(|value| !value.trim().is_empty());
    let filter =
        EnvFilter::try_new(directives.as_deref().unwrap_or(DEFAULT_FILTER)).map_err(|error| {
            ConfigError {
                variable: "RUST_LOG",
                problem: format!("{error}; expected directives such as {DEFAULT_FILTER}"),
            }
        })?;
    // Requests format their lines; a thread of its own writes them, so no request waits on a
    // slow or blocked standard error.
    let (writer, guard) = NonBlockingBuilder::default()
        .buffered_lines_limit(BUFFERED_LINES)
        .lossy(false)
        .thread_name("festapi-log")
        .finish(std::io::stderr());
    let lines = tracing_subscriber::fmt::layer()
        .with_ansi(colours_wanted())
        .with_writer(writer);
    let lines = if env.is_production() {
        lines
            .json()
            .flatten_event(true)
            .with_span_list(false)
            .boxed()
    } else {
        lines.compact().boxed()
    };
    let traces = otlp_endpoint
        .map(span_exporter)
        .transpose()?
        .map(|exporter| {
            let provider = SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .build();
            let tracer = provider.tracer("festapi");
            // A provider installed earlier in this process (by a test harness) stays in place.
            let _ = TRACER_PROVIDER.set(provider);
            tracing_opentelemetry::layer().with_tracer(tracer)
        });
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(lines)
        .with(traces)
        .try_init();
    // A subscriber installed earlier (by a test harness, say) stays in place, and so does its
    // writer.
    if installed.is_ok() {
        *LOG_WRITER.lock().unwrap_or_else(PoisonError::into_inner) = Some(guard);
    }
    Ok(())
}

/// The OTLP/HTTP protobuf exporter. The endpoint, headers and timeout come from the standard
/// `OTEL_EXPORTER_OTLP_*` variables, which the exporter reads itself.
fn span_exporter(endpoint: &url::Url) -> Result<SpanExporter, ConfigError> {
    SpanExporter::builder()
        .with_http()
        .with_http_client(ExportClient::new())
        .build()
        .map_err(|error| ConfigError {
            variable: "OTEL_EXPORTER_OTLP_ENDPOINT",
            problem: format!("cannot export traces to {endpoint}: {error}"),
        })
}

/// Sends what is still buffered, stops exporting and writes out the queued log lines; call it
/// before the process exits.
pub async fn shutdown() {
    if let Some(provider) = TRACER_PROVIDER.get() {
        let provider = provider.clone();
        // Shutting down waits for the last export, which runs on this runtime.
        let flushed = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        if let Ok(Err(error)) = flushed {
            tracing::warn!(%error, "the last traces could not be exported");
        }
    }
    let writer = LOG_WRITER
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    // Dropping the guard waits for the writer thread to write every queued line.
    drop(writer);
}

/// Makes the span of a request a child of the trace its W3C `traceparent` header names, read
/// through `headers`, when traces are exported.
pub fn continue_trace(span: &tracing::Span, headers: &dyn Extractor) {
    if TRACER_PROVIDER.get().is_none() {
        return;
    }
    let parent = TraceContextPropagator::new().extract(headers);
    // Fails only when the span is disabled, and then there is nothing to continue.
    let _ = span.set_parent(parent);
}

/// The exporter's HTTP client: our reqwest, with the request run on the Tokio runtime, since
/// the exporter calls it from a thread of its own.
#[derive(Debug)]
struct ExportClient {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

impl ExportClient {
    fn new() -> Self {
        crate::auth::providers::install_tls_crypto_provider();
        Self {
            client: reqwest::Client::new(),
            runtime: tokio::runtime::Handle::current(),
        }
    }
}

#[async_trait::async_trait]
impl HttpClient for ExportClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let request = reqwest::Request::try_from(request)?;
        let client = self.client.clone();
        let response = self
            .runtime
            .spawn(async move {
                let response = client.execute(request).await?;
                let mut answer = Response::builder().status(response.status());
                if let Some(headers) = answer.headers_mut() {
                    *headers = response.headers().clone();
                }
                let body = response.bytes().await?;
                Ok::<_, HttpError>(answer.body(body)?)
            })
            .await??;
        Ok(response)
    }
}

/// Whether log lines may carry ANSI colours: only when standard error is a terminal, and never
/// with `NO_COLOR` set (<https://no-color.org>).
fn colours_wanted() -> bool {
    std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty())
}

/// Reports the error that stops the process, in the form of its logs: a JSON line in
/// production, so log pipelines parse it like any other, and `error: …` elsewhere.
///
/// It works before logging is set up, when the configuration itself is what failed, so it
/// decides by `APP_ENV` alone.
pub fn report_fatal(error: &anyhow::Error) {
    let message = format!("{error:#}");
    let production = std::env::var("APP_ENV")
        .ok()
        .and_then(|value| value.trim().parse::<AppEnv>().ok())
        .is_some_and(AppEnv::is_production);
    if production {
        let line = serde_json::json!({
            "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "level": "ERROR",
            "message": message,
            "target": "festapi",
        });
        eprintln!("{line}");
    } else {
        eprintln!("error: {message}");
    }
}
