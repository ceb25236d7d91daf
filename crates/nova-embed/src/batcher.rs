//! Dynamic batching: texts from concurrent callers are embedded together.
//!
//! Each replica thread takes the waiting requests (up to `max_batch` texts;
//! with a non-zero `max_wait` it also waits that long for more), then runs
//! them in batches formed by a token budget. An idle embedder thus adds no
//! latency to a lone query, and under load the requests that arrive during
//! one forward pass are batched into the next. Texts are sorted by length
//! so each batch pads little, and a batch holds as many texts as fit
//! `token_budget` padded tokens. A single long text then runs alone
//! instead of inflating a full batch.
//!
//! Requests come in two priorities. Interactive ones (a query) always go
//! first. Bulk ones (an ingest's chunks) are taken only when no
//! interactive request waits, run in smaller batches (`bulk_token_budget`),
//! and between two of those batches a replica serves any query that has
//! arrived. A query asked during a large ingest thus waits for at most one
//! small batch, not for the ingest.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokenizers::Encoding;
use tokio::sync::oneshot;

use super::EmbedError;
use super::kernels::Kernel;
use super::model::Model;

/// How the embedder runs: how its batcher groups work, on how many
/// threads, with which matrix product.
#[derive(Debug, Clone, Copy)]
pub struct BatchConfig {
    /// Most texts gathered before running.
    pub max_batch: usize,
    /// Longest a text waits for company when nothing else is queued; zero
    /// takes only what is already waiting.
    pub max_wait: Duration,
    /// Most padded tokens (texts × longest) in one forward pass.
    pub token_budget: usize,
    /// The same for bulk work: a query waits for at most one such pass.
    pub bulk_token_budget: usize,
    /// Threads running forward passes side by side, sharing the weights.
    pub replicas: usize,
    /// The encoder's matrix product.
    pub kernel: Kernel,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_batch: 64,
            max_wait: Duration::ZERO,
            token_budget: 2048,
            bulk_token_budget: 512,
            replicas: 1,
            kernel: Kernel::default(),
        }
    }
}

pub(super) struct Request {
    pub texts: Vec<String>,
    pub reply: oneshot::Sender<Result<Vec<Vec<f32>>, EmbedError>>,
}

/// How a request is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// Served first (queries).
    Interactive,
    /// Served when no interactive request waits (ingests).
    Bulk,
}

/// The requests waiting for a replica, by priority.
#[derive(Default)]
pub(super) struct Queue {
    state: Mutex<Waiting>,
    ready: Condvar,
}

#[derive(Default)]
struct Waiting {
    interactive: VecDeque<Request>,
    bulk: VecDeque<Request>,
    /// Every handle is gone: the replicas stop.
    closed: bool,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, Waiting> {
        // Requests are pushed and popped whole: a poisoned lock still holds
        // a consistent queue.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn push(&self, request: Request, priority: Priority) {
        let mut waiting = self.lock();
        match priority {
            Priority::Interactive => waiting.interactive.push_back(request),
            Priority::Bulk => waiting.bulk.push_back(request),
        }
        drop(waiting);
        self.ready.notify_one();
    }

    pub(super) fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }

    /// The next round's requests: the interactive ones waiting (up to
    /// `max_batch` texts, waiting up to `max_wait` for more), else bulk
    /// ones already queued (up to `max_batch` texts); none once closed and
    /// empty.
    fn next_round(&self, config: &BatchConfig) -> Option<(Priority, Vec<Request>)> {
        let mut waiting = self.lock();
        loop {
            if !waiting.interactive.is_empty() {
                break;
            }
            if !waiting.bulk.is_empty() {
                let mut pending = Vec::new();
                let mut texts = 0;
                while texts < config.max_batch
                    && let Some(request) = waiting.bulk.pop_front()
                {
                    texts += request.texts.len();
                    pending.push(request);
                }
                return Some((Priority::Bulk, pending));
            }
            if waiting.closed {
                return None;
            }
            waiting = self.ready.wait(waiting).unwrap_or_else(|p| p.into_inner());
        }
        Some((Priority::Interactive, self.interactive(waiting, config)))
    }

    /// The interactive requests waiting now, if any (up to `max_batch`
    /// texts, not waiting for more): what a replica serves between two
    /// bulk batches.
    fn urgent(&self, config: &BatchConfig) -> Option<Vec<Request>> {
        let waiting = self.lock();
        if waiting.interactive.is_empty() {
            return None;
        }
        let config = BatchConfig {
            max_wait: Duration::ZERO,
            ..*config
        };
        Some(self.interactive(waiting, &config))
    }

    /// Takes interactive requests, up to `max_batch` texts, waiting up to
    /// `max_wait` for more.
    fn interactive(
        &self,
        mut waiting: MutexGuard<'_, Waiting>,
        config: &BatchConfig,
    ) -> Vec<Request> {
        let mut pending = Vec::new();
        let mut texts = 0;
        let deadline = Instant::now() + config.max_wait;
        loop {
            while texts < config.max_batch
                && let Some(request) = waiting.interactive.pop_front()
            {
                texts += request.texts.len();
                pending.push(request);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if texts >= config.max_batch || left.is_zero() || waiting.closed {
                return pending;
            }
            waiting = self
                .ready
                .wait_timeout(waiting, left)
                .map(|(w, _)| w)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }
}

/// Runs until the queue is closed and empty.
pub(super) fn run(model: Arc<Model>, config: BatchConfig, queue: Arc<Queue>) {
    while let Some((priority, pending)) = queue.next_round(&config) {
        match priority {
            Priority::Interactive => {
                serve(&model, &config, config.token_budget, pending, &mut || {})
            }
            Priority::Bulk => {
                serve(
                    &model,
                    &config,
                    config.bulk_token_budget,
                    pending,
                    &mut || {
                        // Between two bulk batches: the queries that came.
                        while let Some(urgent) = queue.urgent(&config) {
                            serve(&model, &config, config.token_budget, urgent, &mut || {});
                        }
                    },
                )
            }
        }
    }
}

/// Embeds one round's requests in batches of at most `budget` padded
/// tokens, calling `between` after each batch.
fn serve(
    model: &Model,
    config: &BatchConfig,
    budget: usize,
    pending: Vec<Request>,
    between: &mut dyn FnMut(),
) {
    // A bug in the model code must not take the embedder down for every
    // later caller: report it to this round's callers instead.
    let mut round = Round::new(pending);
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
        embed_all(model, config, budget, &mut round, between)
    }));
    if outcome.is_err() {
        tracing::error!("the embedding model panicked; failing this batch");
        round.fail_rest(EmbedError::Model("the model panicked".into()));
    }
}

/// The requests of one round, each answered as soon as all its texts are
/// embedded: a short query sorted into the first batch does not wait for
/// the long texts of an ingest gathered in the same round.
struct Round {
    requests: Vec<Option<Request>>,
    results: Vec<Vec<Vec<f32>>>,
    left: Vec<usize>,
}

impl Round {
    fn new(pending: Vec<Request>) -> Self {
        let results = pending
            .iter()
            .map(|r| vec![Vec::new(); r.texts.len()])
            .collect();
        let left = pending.iter().map(|r| r.texts.len()).collect();
        Round {
            requests: pending.into_iter().map(Some).collect(),
            results,
            left,
        }
    }

    fn text(&self, r: usize, t: usize) -> Option<&str> {
        self.requests[r].as_ref().map(|req| req.texts[t].as_str())
    }

    fn done(&mut self, r: usize, t: usize, vector: Vec<f32>) {
        if self.requests[r].is_none() {
            return;
        }
        self.results[r][t] = vector;
        self.left[r] -= 1;
        if self.left[r] == 0
            && let Some(request) = self.requests[r].take()
        {
            let _ = request.reply.send(Ok(std::mem::take(&mut self.results[r])));
        }
    }

    fn fail(&mut self, r: usize, error: EmbedError) {
        if let Some(request) = self.requests[r].take() {
            let _ = request.reply.send(Err(error));
        }
    }

    fn fail_rest(&mut self, error: EmbedError) {
        for r in 0..self.requests.len() {
            self.fail(r, error.clone());
        }
    }
}

/// Embeds every text of the round, answering requests as they complete.
fn embed_all(
    model: &Model,
    config: &BatchConfig,
    budget: usize,
    round: &mut Round,
    between: &mut dyn FnMut(),
) {
    // (request, text, encoding) for every text that tokenized.
    let mut items: Vec<(usize, usize, Encoding)> = Vec::new();
    for r in 0..round.requests.len() {
        let count = round.left[r];
        for t in 0..count {
            let Some(text) = round.text(r, t) else { break };
            match model.tokenize(text) {
                Ok(encoding) => items.push((r, t, encoding)),
                Err(e) => {
                    round.fail(r, e);
                    break;
                }
            }
        }
    }
    items.retain(|(r, _, _)| round.requests[*r].is_some());
    items.sort_by_key(|(_, _, e)| e.len());

    for (i, batch) in batches(&items, config.max_batch, budget).enumerate() {
        if i > 0 {
            between();
        }
        let encodings: Vec<&Encoding> = batch.iter().map(|(_, _, e)| e).collect();
        let start = Instant::now();
        match model.embed(&encodings) {
            Ok(vectors) => {
                crate::observe_batch(encodings.len(), start.elapsed());
                for ((r, t, _), vector) in batch.iter().zip(vectors) {
                    round.done(*r, *t, vector);
                }
            }
            Err(e) => {
                for (r, _, _) in batch {
                    round.fail(*r, e.clone());
                }
            }
        }
    }
    // Requests with no texts (none are sent, but be safe) are done too.
    round.fail_rest(EmbedError::Stopped);
}

/// Splits length-sorted items into batches of at most `max_batch` items
/// and `budget` padded tokens.
fn batches<T>(
    items: &[(usize, usize, T)],
    max_batch: usize,
    budget: usize,
) -> impl Iterator<Item = &[(usize, usize, T)]>
where
    T: Tokens,
{
    let mut start = 0;
    std::iter::from_fn(move || {
        if start >= items.len() {
            return None;
        }
        let mut end = start + 1;
        while end < items.len() && end - start < max_batch {
            // Sorted ascending: the newest item is the longest so far.
            let padded = (end - start + 1) * items[end].2.tokens();
            if padded > budget {
                break;
            }
            end += 1;
        }
        let batch = &items[start..end];
        start = end;
        Some(batch)
    })
}

/// A tokenized text's length; a trait so batching is testable without a
/// tokenizer.
trait Tokens {
    fn tokens(&self) -> usize;
}

impl Tokens for Encoding {
    fn tokens(&self) -> usize {
        self.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Tokens for usize {
        fn tokens(&self) -> usize {
            *self
        }
    }

    fn sizes(lengths: &[usize], config: &BatchConfig) -> Vec<usize> {
        let items: Vec<(usize, usize, usize)> = lengths
            .iter()
            .enumerate()
            .map(|(i, &n)| (0, i, n))
            .collect();
        batches(&items, config.max_batch, config.token_budget)
            .map(|b| b.len())
            .collect()
    }

    type Answer = oneshot::Receiver<Result<Vec<Vec<f32>>, EmbedError>>;

    fn request(n: usize) -> (Request, Answer) {
        let (reply, answer) = oneshot::channel();
        let texts = (0..n).map(|i| i.to_string()).collect();
        (Request { texts, reply }, answer)
    }

    #[test]
    fn interactive_requests_go_before_bulk_ones() {
        let queue = Queue::default();
        let config = BatchConfig::default();
        let (b1, _) = request(16);
        let (b2, _) = request(16);
        queue.push(b1, Priority::Bulk);
        queue.push(b2, Priority::Bulk);
        let (q1, _) = request(1);
        let (q2, _) = request(1);
        queue.push(q1, Priority::Interactive);
        queue.push(q2, Priority::Interactive);
        let texts = |round: &[Request]| round.iter().map(|r| r.texts.len()).collect::<Vec<_>>();
        // Both queries together, then the bulk requests, up to max_batch.
        let (priority, round) = queue.next_round(&config).unwrap();
        assert_eq!(
            (priority, texts(&round)),
            (Priority::Interactive, vec![1, 1])
        );
        assert!(queue.urgent(&config).is_none());
        let (q3, _) = request(1);
        queue.push(q3, Priority::Interactive);
        // Between two bulk batches, the query that came.
        assert_eq!(texts(&queue.urgent(&config).unwrap()), [1]);
        let (priority, round) = queue.next_round(&config).unwrap();
        assert_eq!((priority, texts(&round)), (Priority::Bulk, vec![16, 16]));
        queue.close();
        assert!(queue.next_round(&config).is_none());
    }

    #[test]
    fn batches_respect_the_token_budget_and_the_size_cap() {
        let config = BatchConfig {
            max_batch: 4,
            max_wait: Duration::ZERO,
            token_budget: 100,
            bulk_token_budget: 100,
            replicas: 1,
            kernel: Kernel::default(),
        };
        // 10 short texts: capped at 4 a batch.
        assert_eq!(sizes(&[10; 10], &config), vec![4, 4, 2]);
        // Growing lengths: each batch stops where padding would pass 100.
        assert_eq!(sizes(&[10, 20, 30, 40, 60, 90], &config), vec![3, 1, 1, 1]);
        assert_eq!(sizes(&[10, 20, 25, 25, 45], &config), vec![4, 1]);
        // A text longer than the budget still runs, alone.
        assert_eq!(sizes(&[300], &config), vec![1]);
        assert_eq!(sizes(&[], &config), Vec::<usize>::new());
    }
}
