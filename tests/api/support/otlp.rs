//! An OTLP/HTTP trace receiver on loopback: it accepts what an exporter sends to `/v1/traces`
//! as protobuf and keeps the spans.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;

/// A running receiver and the spans it has been sent.
pub(crate) struct OtlpReceiver {
    /// Where it listens: the exporter's `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub endpoint: String,
    spans: Arc<Mutex<Vec<Span>>>,
    server: tokio::task::JoinHandle<()>,
}

impl OtlpReceiver {
    /// Starts a receiver on a free loopback port.
    pub(crate) async fn start() -> Self {
        let spans = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new()
            .route("/v1/traces", post(receive))
            .with_state(Arc::clone(&spans));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port");
        let address: SocketAddr = listener.local_addr().expect("a bound address");
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("the receiver");
        });
        Self {
            endpoint: format!("http://{address}"),
            spans,
            server,
        }
    }

    /// Every span received so far.
    pub(crate) fn spans(&self) -> Vec<Span> {
        self.spans.lock().expect("the spans").clone()
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// `POST /v1/traces`: an `ExportTraceServiceRequest` in protobuf, as OTLP/HTTP sends it.
async fn receive(
    State(spans): State<Arc<Mutex<Vec<Span>>>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, [(header::HeaderName, &'static str); 1], Vec<u8>) {
    let protobuf = headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value == "application/x-protobuf");
    let request = protobuf
        .then(|| ExportTraceServiceRequest::decode(body).ok())
        .flatten();
    let Some(request) = request else {
        return (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "text/plain")],
            b"expected an ExportTraceServiceRequest in application/x-protobuf".to_vec(),
        );
    };
    let received = request
        .resource_spans
        .into_iter()
        .flat_map(|resource| resource.scope_spans)
        .flat_map(|scope| scope.spans);
    spans.lock().expect("the spans").extend(received);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/x-protobuf")],
        Vec::new(),
    )
}
