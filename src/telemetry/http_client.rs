//! Outgoing HTTP calls (the mail API, webhooks): each request gets a CLIENT span following the HTTP
//! client conventions and carries the W3C `traceparent` of that span, so the receiver's trace
//! continues ours. Use [`TracedClient`] for every outgoing call; build requests with
//! [`TracedClient::request`] and send them with [`TracedClient::execute`].

use std::time::Duration;

use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::names;

/// A `reqwest` client whose requests are traced. Cheap to clone.
#[derive(Debug, Clone)]
pub struct TracedClient {
    inner: reqwest::Client,
}

impl TracedClient {
    /// A client with a whole-request `timeout` (connect, send, read).
    ///
    /// # Errors
    /// The TLS backend could not be initialised.
    pub fn new(timeout: Duration) -> reqwest::Result<TracedClient> {
        Ok(TracedClient { inner: reqwest::Client::builder().timeout(timeout).build()? })
    }

    /// Wraps a client configured elsewhere.
    pub fn from_client(inner: reqwest::Client) -> TracedClient {
        TracedClient { inner }
    }

    /// Starts a request; finish it with `.build()?` and pass it to [`TracedClient::execute`].
    pub fn request(&self, method: reqwest::Method, url: impl reqwest::IntoUrl) -> reqwest::RequestBuilder {
        self.inner.request(method, url)
    }

    /// Sends `request` inside a CLIENT span named after its method (`POST`), with
    /// `http.request.method`, `server.address`, `server.port`, `url.full` (without credentials or
    /// query), `http.response.status_code`; a status ≥ 400 or a transport error sets `error.type`
    /// and status ERROR.
    ///
    /// # Errors
    /// reqwest's, unchanged (a status ≥ 400 is not an error here: check `status()`).
    pub async fn execute(&self, mut request: reqwest::Request) -> reqwest::Result<reqwest::Response> {
        let url = request.url();
        let safe_url = format!(
            "{}://{}{}{}",
            url.scheme(),
            url.host_str().unwrap_or(""),
            url.port().map(|p| format!(":{p}")).unwrap_or_default(),
            url.path()
        );
        let span = tracing::info_span!(
            "http_client",
            otel.name = %request.method(),
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
            { names::HTTP_REQUEST_METHOD } = %request.method(),
            { names::SERVER_ADDRESS } = url.host_str().unwrap_or(""),
            { names::SERVER_PORT } = url.port_or_known_default().unwrap_or(0),
            { names::URL_FULL } = %safe_url,
            { names::HTTP_RESPONSE_STATUS_CODE } = tracing::field::Empty,
            { names::ERROR_TYPE } = tracing::field::Empty,
        );
        let context = span.context();
        opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.inject_context(&context, &mut opentelemetry_http::HeaderInjector(request.headers_mut()));
        });
        let result = self.inner.execute(request).instrument(span.clone()).await;
        match &result {
            Ok(response) => {
                let status = response.status().as_u16();
                span.record(names::HTTP_RESPONSE_STATUS_CODE, status);
                if status >= 400 {
                    span.record(names::ERROR_TYPE, status);
                    span.record("otel.status_code", "ERROR");
                }
            }
            Err(err) => {
                let kind = if err.is_timeout() {
                    "timeout"
                } else if err.is_connect() {
                    "connect"
                } else {
                    "request"
                };
                span.record(names::ERROR_TYPE, kind);
                // reqwest's message names the URL, query string included: keep only the safe form.
                let message = match err.url() {
                    Some(url) => err.to_string().replace(url.as_str(), &safe_url),
                    None => err.to_string(),
                };
                super::record_error(&span, kind, &message);
            }
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::SpanKind;

    use super::*;
    use crate::telemetry::testing;

    #[tokio::test(flavor = "current_thread")]
    async fn a_call_gets_a_client_span_and_carries_its_traceparent() {
        let app = axum::Router::new().route(
            "/echo",
            axum::routing::post(|headers: axum::http::HeaderMap| async move {
                headers.get("traceparent").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default()
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        opentelemetry::global::set_text_map_propagator(opentelemetry_sdk::propagation::TraceContextPropagator::new());

        let (subscriber, collected) = testing::subscriber();
        let guard = tracing::subscriber::set_default(subscriber);
        let client = TracedClient::new(Duration::from_secs(5)).unwrap();
        let request =
            client.request(reqwest::Method::POST, format!("http://{addr}/echo?token=secret")).build().unwrap();
        let response = client.execute(request).await.unwrap();
        let traceparent = response.text().await.unwrap();
        drop(guard);

        let spans = collected.0.lock().unwrap();
        let span = spans.iter().find(|s| s.span_kind == SpanKind::Client).expect("a CLIENT span");
        assert_eq!(span.name, "POST");
        let context = &span.span_context;
        assert_eq!(traceparent, format!("00-{}-{}-01", context.trace_id(), context.span_id()));
        let attr = |key: &str| span.attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| kv.value.to_string());
        assert_eq!(attr("url.full"), Some(format!("http://127.0.0.1:{}/echo", addr.port())), "no query string");
        assert_eq!(attr("http.response.status_code").as_deref(), Some("200"));
        assert_eq!(attr("server.port"), Some(addr.port().to_string()));
        assert_eq!(attr("http.request.method").as_deref(), Some("POST"));
    }
}
