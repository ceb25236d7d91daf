//! Prometheus metrics: one process-global registry, rendered by `GET /metrics`.
//!
//! This module is the registry and the functions that record into it; what
//! feeds it from outside a call path lives beside it: the HTTP middleware
//! ([`http`]) and the task that polls the store and the queue
//! ([`gauges`]). The plugin host and the embedder report through the
//! observer hooks `server` sets ([`plugin_call`], [`embed_batch`]).
//!
//! The registry is global (as in every Prometheus client) so that the hot
//! paths — plugin calls, embedding batches, cache look-ups — count with an
//! atomic add and no handle has to be threaded through their constructors.
//! Families are keyed by small label structs; label values are bounded sets
//! (routes are templates, plugin names are the installed plugins).

pub mod gauges;
pub mod http;

use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: String,
    method: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
    method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginCallLabels {
    plugin: String,
    kind: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginLabels {
    plugin: String,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutboundLabels {
    plugin: String,
    host: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutboundHostLabels {
    plugin: String,
    host: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

struct Metrics {
    registry: Registry,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: HistogramFamily<RouteLabels>,
    plugin_calls: Family<PluginCallLabels, Counter>,
    plugin_duration: HistogramFamily<PluginLabels>,
    queue_depth: Gauge,
    runs: Family<StatusLabels, Gauge>,
    steps: Family<OutcomeLabels, Counter>,
    ingest_runs: Counter,
    ingest_files: Family<OutcomeLabels, Counter>,
    ingest_chunks: Counter,
    embed_texts: Counter,
    embed_batch_size: Histogram,
    embed_batch_duration: Histogram,
    cache_hits: Counter,
    cache_misses: Counter,
    body_refusals: Counter,
    outbound_requests: Family<OutboundLabels, Counter>,
    outbound_duration: HistogramFamily<OutboundHostLabels>,
    outbound_bytes: Family<OutboundHostLabels, Counter>,
}

/// Request latencies: 1 ms to about 33 s.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("nova");
        let m = Metrics {
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(latency_histogram),
            plugin_calls: Family::default(),
            plugin_duration: Family::new_with_constructor(latency_histogram),
            queue_depth: Gauge::default(),
            runs: Family::default(),
            steps: Family::default(),
            ingest_runs: Counter::default(),
            ingest_files: Family::default(),
            ingest_chunks: Counter::default(),
            embed_texts: Counter::default(),
            // Texts per batch: 1 to 1024.
            embed_batch_size: Histogram::new(exponential_buckets(1.0, 2.0, 11)),
            embed_batch_duration: latency_histogram(),
            cache_hits: Counter::default(),
            cache_misses: Counter::default(),
            body_refusals: Counter::default(),
            outbound_requests: Family::default(),
            outbound_duration: Family::new_with_constructor(latency_histogram),
            outbound_bytes: Family::default(),
            registry: Registry::default(),
        };
        // Counters get their `_total` suffix from the encoder.
        registry.register(
            "http_requests",
            "HTTP requests served, by route template, method and status",
            m.http_requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency, by route template and method",
            m.http_duration.clone(),
        );
        registry.register(
            "plugin_calls",
            "Plugin calls by plugin, kind and outcome (ok, or the failure class; busy: never got an instance slot)",
            m.plugin_calls.clone(),
        );
        registry.register(
            "plugin_call_duration_seconds",
            "Plugin call duration (calls that ran), by plugin and kind",
            m.plugin_duration.clone(),
        );
        registry.register(
            "queue_depth",
            "Work-queue entries waiting or unacknowledged",
            m.queue_depth.clone(),
        );
        registry.register(
            "workflow_runs",
            "Workflow runs in the store, by status",
            m.runs.clone(),
        );
        registry.register(
            "workflow_steps",
            "Workflow step attempts by outcome (succeeded, failed, retried, busy)",
            m.steps.clone(),
        );
        registry.register(
            "ingest_runs",
            "Knowledge ingests run",
            m.ingest_runs.clone(),
        );
        registry.register(
            "ingest_files",
            "Files seen by ingests, by outcome (added, updated, removed, unchanged, failed)",
            m.ingest_files.clone(),
        );
        registry.register(
            "ingest_chunks_embedded",
            "Chunks embedded and indexed by ingests",
            m.ingest_chunks.clone(),
        );
        registry.register("embed_texts", "Texts embedded", m.embed_texts.clone());
        registry.register(
            "embed_batch_size",
            "Texts per embedding batch",
            m.embed_batch_size.clone(),
        );
        registry.register(
            "embed_batch_duration_seconds",
            "Embedding batch latency",
            m.embed_batch_duration.clone(),
        );
        registry.register(
            "query_cache_hits",
            "Knowledge query cache hits",
            m.cache_hits.clone(),
        );
        registry.register(
            "query_cache_misses",
            "Knowledge query cache misses",
            m.cache_misses.clone(),
        );
        registry.register(
            "http_memory_budget_refusals",
            "Requests answered 503 because the bodies in flight were at their limit",
            m.body_refusals.clone(),
        );
        registry.register(
            "plugin_outbound_requests",
            "Plugins' outbound HTTP requests, by plugin, allowed host (as the manifest names it) \
             and status (the HTTP status, or refused, timeout, error)",
            m.outbound_requests.clone(),
        );
        registry.register(
            "plugin_outbound_duration_seconds",
            "Plugins' outbound HTTP requests, until the response head, by plugin and host",
            m.outbound_duration.clone(),
        );
        registry.register(
            "plugin_outbound_response_bytes",
            "Response body bytes plugins received, by plugin and host",
            m.outbound_bytes.clone(),
        );
        Metrics { registry, ..m }
    }
}

/// The whole registry in Prometheus' text exposition format 0.0.4 (what
/// `GET /metrics` declares), which every scraper reads.
pub fn render() -> String {
    let mut open_metrics = String::new();
    // Writing to a String cannot fail; a metric's own encoder could only
    // fail on a bug, and then a partial page beats none.
    if let Err(e) = prometheus_client::encoding::text::encode(&mut open_metrics, &METRICS.registry)
    {
        tracing::warn!(error = %e, "encoding metrics failed");
    }
    to_text_format(&open_metrics)
}

/// The client encodes OpenMetrics; the classic format differs only in
/// comments: no `# EOF` or `# UNIT`, and a counter's HELP and TYPE name the
/// sample (`x_total`), not the family (`x`).
fn to_text_format(open_metrics: &str) -> String {
    let mut out = String::with_capacity(open_metrics.len());
    let mut help: Option<&str> = None;
    for line in open_metrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if line.starts_with("# HELP ") {
            // Held until the TYPE line says whether it is a counter.
            if let Some(h) = help.replace(line) {
                push_line(&mut out, h);
            }
            continue;
        }
        if let Some(name) = line
            .strip_prefix("# TYPE ")
            .and_then(|t| t.strip_suffix(" counter"))
        {
            if let Some(h) = help.take() {
                let text = h.strip_prefix("# HELP ").and_then(|h| h.strip_prefix(name));
                match text {
                    Some(text) => out.push_str(&format!("# HELP {name}_total{text}\n")),
                    None => push_line(&mut out, h),
                }
            }
            out.push_str(&format!("# TYPE {name}_total counter\n"));
            continue;
        }
        if let Some(h) = help.take() {
            push_line(&mut out, h);
        }
        push_line(&mut out, line);
    }
    if let Some(h) = help {
        push_line(&mut out, h);
    }
    out
}

fn push_line(out: &mut String, line: &str) {
    out.push_str(line);
    out.push('\n');
}

/// One HTTP request: its route template, method and status, and how long
/// it took.
pub fn http_request(route: String, method: &'static str, status: u16, took: Duration) {
    let m = &*METRICS;
    m.http_duration
        .get_or_create(&RouteLabels {
            route: route.clone(),
            method,
        })
        .observe(took.as_secs_f64());
    m.http_requests
        .get_or_create(&HttpLabels {
            route,
            method,
            status,
        })
        .inc();
}

/// A plugin call: `outcome` is `ok` or a failure class; `ran` is the time
/// it took, `None` for a call that never got an instance slot.
pub fn plugin_call(plugin: &str, kind: &'static str, outcome: &'static str, ran: Option<Duration>) {
    let m = &*METRICS;
    m.plugin_calls
        .get_or_create(&PluginCallLabels {
            plugin: plugin.to_owned(),
            kind,
            outcome,
        })
        .inc();
    if let Some(ran) = ran {
        m.plugin_duration
            .get_or_create(&PluginLabels {
                plugin: plugin.to_owned(),
                kind,
            })
            .observe(ran.as_secs_f64());
    }
}

/// How a workflow step attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepOutcome {
    Succeeded,
    /// Failed for good: the run fails.
    Failed,
    /// Failed and will be tried again.
    Retried,
    /// Found no free plugin instance, and will be tried again.
    Busy,
}

pub fn step_outcome(outcome: StepOutcome) {
    let outcome = match outcome {
        StepOutcome::Succeeded => "succeeded",
        StepOutcome::Failed => "failed",
        StepOutcome::Retried => "retried",
        StepOutcome::Busy => "busy",
    };
    METRICS
        .steps
        .get_or_create(&OutcomeLabels { outcome })
        .inc();
}

/// Sets the queue-depth gauge.
pub fn set_queue_depth(depth: u64) {
    METRICS
        .queue_depth
        .set(i64::try_from(depth).unwrap_or(i64::MAX));
}

/// Sets the runs-by-status gauge for one status.
pub fn set_runs(status: &'static str, count: u64) {
    METRICS
        .runs
        .get_or_create(&StatusLabels { status })
        .set(i64::try_from(count).unwrap_or(i64::MAX));
}

/// What an ingest did with one file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileOutcome {
    Added,
    Updated,
    Removed,
    Unchanged,
    Failed,
}

/// A request refused for lack of room among the bodies in flight.
pub fn memory_budget_refused() {
    METRICS.body_refusals.inc();
}

pub fn ingest_run() {
    METRICS.ingest_runs.inc();
}

pub fn ingest_files(outcome: FileOutcome, count: u64) {
    if count == 0 {
        return;
    }
    let outcome = match outcome {
        FileOutcome::Added => "added",
        FileOutcome::Updated => "updated",
        FileOutcome::Removed => "removed",
        FileOutcome::Unchanged => "unchanged",
        FileOutcome::Failed => "failed",
    };
    METRICS
        .ingest_files
        .get_or_create(&OutcomeLabels { outcome })
        .inc_by(count);
}

pub fn ingest_chunks_embedded(count: u64) {
    METRICS.ingest_chunks.inc_by(count);
}

/// One embedding batch of `texts` texts that took `took`.
pub fn embed_batch(texts: usize, took: Duration) {
    let m = &*METRICS;
    m.embed_texts.inc_by(texts as u64);
    m.embed_batch_size.observe(texts as f64);
    m.embed_batch_duration.observe(took.as_secs_f64());
}

/// One outbound request of `plugin` to `host` (a bounded label: the
/// manifest's entry) ended with `status`; `took` until its head, if it came.
pub fn outbound_request(plugin: &str, host: &str, status: &str, took: Option<Duration>) {
    let m = &*METRICS;
    m.outbound_requests
        .get_or_create(&OutboundLabels {
            plugin: plugin.to_owned(),
            host: host.to_owned(),
            status: status.to_owned(),
        })
        .inc();
    if let Some(took) = took {
        m.outbound_duration
            .get_or_create(&OutboundHostLabels {
                plugin: plugin.to_owned(),
                host: host.to_owned(),
            })
            .observe(took.as_secs_f64());
    }
}

/// `bytes` of a response body `plugin` received from `host`.
pub fn outbound_bytes(plugin: &str, host: &str, bytes: u64) {
    METRICS
        .outbound_bytes
        .get_or_create(&OutboundHostLabels {
            plugin: plugin.to_owned(),
            host: host.to_owned(),
        })
        .inc_by(bytes);
}

pub fn query_cache(hit: bool) {
    if hit {
        METRICS.cache_hits.inc();
    } else {
        METRICS.cache_misses.inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of the sample `name` whose label set contains every one of
    /// `labels` (`k="v"`), from a rendered page.
    fn sample(page: &str, name: &str, labels: &[&str]) -> Option<f64> {
        page.lines().find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (n, rest) = series.split_once('{').unwrap_or((series, "}"));
            (n == name && labels.iter().all(|l| rest.contains(l))).then(|| value.parse().ok())?
        })
    }

    /// Every sample line is `name{labels} value`, with a metric name, a
    /// well-formed label set and a float value.
    #[test]
    fn render_is_well_formed() {
        query_cache(true);
        step_outcome(StepOutcome::Retried);
        plugin_call("well-formed", "step", "ok", Some(Duration::from_millis(3)));
        let page = render();
        assert!(!page.contains("# EOF"), "{page}");
        assert!(
            page.contains("# TYPE nova_query_cache_hits_total counter\n"),
            "{page}"
        );
        let mut samples = 0;
        for line in page.lines().filter(|l| !l.starts_with('#')) {
            let (series, value) = line.rsplit_once(' ').expect(line);
            value.parse::<f64>().expect(line);
            let name = match series.split_once('{') {
                Some((name, labels)) => {
                    let labels = labels.strip_suffix('}').expect(line);
                    for pair in labels.split("\",").filter(|p| !p.is_empty()) {
                        let (k, v) = pair.split_once("=\"").expect(line);
                        assert!(
                            k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                            "{line}"
                        );
                        assert!(!v.contains('\n'), "{line}");
                    }
                    name
                }
                None => series,
            };
            assert!(name.starts_with("nova_"), "{line}");
            assert!(
                name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "{line}"
            );
            samples += 1;
        }
        assert!(samples > 10, "{page}");
    }

    #[test]
    fn counters_move() {
        let before = render();
        let hits = sample(&before, "nova_query_cache_hits_total", &[]).unwrap();
        let ok = sample(
            &before,
            "nova_plugin_calls_total",
            &[r#"plugin="counted""#, r#"outcome="ok""#],
        )
        .unwrap_or(0.0);
        query_cache(true);
        plugin_call("counted", "step", "ok", Some(Duration::from_millis(5)));
        plugin_call("counted", "step", "busy", None);
        embed_batch(8, Duration::from_millis(20));
        ingest_files(FileOutcome::Added, 2);
        let after = render();
        assert_eq!(
            sample(&after, "nova_query_cache_hits_total", &[]),
            Some(hits + 1.0)
        );
        assert_eq!(
            sample(
                &after,
                "nova_plugin_calls_total",
                &[r#"plugin="counted""#, r#"outcome="ok""#]
            ),
            Some(ok + 1.0)
        );
        // The busy call never ran: one duration observation, not two.
        assert_eq!(
            sample(
                &after,
                "nova_plugin_call_duration_seconds_count",
                &[r#"plugin="counted""#]
            ),
            Some(1.0)
        );
        assert!(sample(&after, "nova_embed_texts_total", &[]).unwrap() >= 8.0);
        assert!(sample(&after, "nova_ingest_files_total", &[r#"outcome="added""#]).unwrap() >= 2.0);
    }
}
