//! HTTP request metrics: a latency histogram per route template (axum's
//! [`MatchedPath`], never the raw path, so host ids and names make no series), method
//! and status class, and the requests in flight. [`track`] wraps the whole app.
//!
//! The time is taken until the response's head is ready (a streamed body, such as a
//! release artifact, is not waited for).

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::text::{Histogram, Kind, LATENCY_BUCKETS, Text};
use crate::AppState;

/// The route label of a request no route matched (the 404 fallback).
const UNMATCHED: &str = "unmatched";

/// The series key: route template, method, status class.
type Key = (String, &'static str, &'static str);

/// The HTTP metrics of this process.
#[derive(Debug, Default)]
pub struct HttpMetrics {
    in_flight: AtomicI64,
    latency: Mutex<HashMap<Key, Arc<Histogram>>>,
}

/// Decrements the in-flight gauge when the request ends, answered or dropped.
struct InFlight<'a>(&'a AtomicI64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The method label: the standard methods by name, anything else `other` (a client
/// cannot make series at will).
fn method_label(m: &axum::http::Method) -> &'static str {
    match m.as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

/// `2xx`, `4xx`, ...
fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

impl HttpMetrics {
    /// Records one request.
    pub fn observe(&self, route: &str, method: &'static str, status: u16, seconds: f64) {
        let key = (route.to_owned(), method, status_class(status));
        let h = {
            let mut map = self.latency.lock().unwrap_or_else(|e| e.into_inner());
            Arc::clone(
                map.entry(key)
                    .or_insert_with(|| Arc::new(Histogram::new(LATENCY_BUCKETS))),
            )
        };
        h.observe(seconds);
    }

    /// Writes the families.
    pub fn encode(&self, t: &mut Text) {
        t.family(
            "patchctl_http_requests_in_flight",
            Kind::Gauge,
            "HTTP requests being answered by this process.",
        );
        t.sample(
            "patchctl_http_requests_in_flight",
            &[],
            self.in_flight.load(Ordering::Relaxed) as f64,
        );
        let mut series: Vec<(Key, Arc<Histogram>)> = {
            let map = self.latency.lock().unwrap_or_else(|e| e.into_inner());
            map.iter()
                .map(|(k, h)| (k.clone(), Arc::clone(h)))
                .collect()
        };
        series.sort_by(|a, b| a.0.cmp(&b.0));
        t.family(
            "patchctl_http_request_duration_seconds",
            Kind::Histogram,
            "Time to answer an HTTP request (until the response head), by route template, method and status class.",
        );
        for ((route, method, class), h) in &series {
            t.histogram(
                "patchctl_http_request_duration_seconds",
                &[("route", route), ("method", method), ("status", class)],
                h,
            );
        }
    }
}

/// Middleware over the whole app: counts the request in flight and observes its
/// latency under its route template.
pub async fn track(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let m = &st.metrics.http;
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| UNMATCHED.to_owned(), |p| p.as_str().to_owned());
    let method = method_label(req.method());
    m.in_flight.fetch_add(1, Ordering::Relaxed);
    let guard = InFlight(&m.in_flight);
    let started = Instant::now();
    let resp = next.run(req).await;
    drop(guard);
    m.observe(
        &route,
        method,
        resp.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_methods_and_statuses_make_no_new_series() {
        let m = axum::http::Method::from_bytes(b"FROB").unwrap();
        assert_eq!(method_label(&m), "other");
        assert_eq!(method_label(&axum::http::Method::GET), "GET");
        assert_eq!(status_class(204), "2xx");
        assert_eq!(status_class(503), "5xx");
        assert_eq!(status_class(999), "5xx");
    }
}
