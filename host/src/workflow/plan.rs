//! A workflow's shape, checked once: step ids, the DAG their `needs` make,
//! and the expressions of `input`, `if`, `for_each` and `output`, parsed.
//!
//! A step without `needs` follows the step before it (so a plain list of
//! steps runs in order, each taking the previous output, as in v1);
//! `needs: []` makes it a root. A step's expressions may read only the run
//! input and steps it (transitively) needs: those are sure to be finished.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use nova_client::types::StepRetry;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::expr::{ExprError, Query, Template};

/// Most steps one workflow may have.
pub const MAX_STEPS: usize = 64;
/// Default bound on the steps of one run that run at once.
pub const DEFAULT_MAX_PARALLEL: u32 = 8;
/// Highest `max_parallel` or `concurrency`.
pub const MAX_PARALLEL: u32 = 64;
/// Default bound on the elements of a `for_each` that run at once.
pub const DEFAULT_CONCURRENCY: u32 = 4;

/// A workflow's data flow as written: what a run keeps of it (its `plan`
/// column), checked into a [`Plan`] when the run executes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Flow {
    pub steps: Vec<StepFlow>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_parallel: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

/// One step's part of a [`Flow`]: the wire step's fields that are not
/// about its plugin call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StepFlow {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needs: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
    #[serde(default, rename = "if", skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_each: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    /// The retry policy's delays and error kinds (its `max` is the step's
    /// `retries`, kept with the step).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<StepRetry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sleep: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sleep_until: Option<String>,
}

impl Flow {
    /// A plain list of `steps` steps, each taking the previous output.
    pub fn linear(steps: usize) -> Flow {
        Flow {
            steps: vec![StepFlow::default(); steps],
            ..Flow::default()
        }
    }

    /// Whether it says nothing a plain list of steps does not: such a run
    /// keeps no plan.
    pub fn is_linear(&self) -> bool {
        self.output.is_none()
            && self.max_parallel.is_none()
            && self.timeout.is_none()
            && self.steps.iter().all(|s| *s == StepFlow::default())
    }
}

/// A step, checked.
#[derive(Debug, Clone)]
pub struct PlannedStep {
    pub id: String,
    /// Indices of the steps it waits for.
    pub needs: Vec<usize>,
    /// Its input; none: the output of the step it needs (the run's input
    /// when it needs none, an object of outputs by id when several).
    pub input: Option<Template>,
    pub when: Option<Query>,
    pub for_each: Option<Query>,
    pub concurrency: u32,
    /// The ids of the steps its expressions read.
    pub reads: Vec<usize>,
    /// Its retry delays and what is not retried.
    pub backoff: Backoff,
    /// A sleep step's wait.
    pub sleep: Option<Sleep>,
}

/// How long a sleep step waits.
#[derive(Debug, Clone)]
pub enum Sleep {
    For(Duration),
    Until(jiff::Timestamp),
    /// Until the time a query finds (an RFC 3339 string).
    UntilFound(Query),
}

/// A step's retry delays (none: the host's) and the kinds of error that
/// are not retried.
#[derive(Debug, Clone, PartialEq)]
pub struct Backoff {
    pub initial: Option<Duration>,
    pub max: Option<Duration>,
    pub multiplier: f64,
    pub non_retryable: Vec<String>,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: None,
            max: None,
            multiplier: 2.0,
            non_retryable: vec!["invalid-input".into(), "unsupported".into()],
        }
    }
}

/// The kinds of error a retry policy names.
pub const ERROR_KINDS: [&str; 10] = [
    "invalid-input",
    "unsupported",
    "failed",
    "timeout",
    "out-of-memory",
    "stack-overflow",
    "trap",
    "output-too-large",
    "invalid-output",
    "setup-failed",
];

/// A workflow, checked.
#[derive(Debug, Clone)]
pub struct Plan {
    pub steps: Vec<PlannedStep>,
    pub output: Option<Template>,
    /// The steps the output reads.
    pub output_reads: Vec<usize>,
    pub max_parallel: u32,
    /// The longest a run may take from its start.
    pub timeout: Option<Duration>,
}

fn fault(place: impl Into<String>, message: impl Into<String>) -> ExprError {
    ExprError {
        place: place.into(),
        message: message.into(),
    }
}

/// A step id: what a JSONPath name selector reaches with a dot.
fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl Plan {
    /// Checks a flow; every fault names its place (`steps[2].needs[0]`,
    /// `steps[1].input.user`).
    pub fn check(flow: &Flow) -> Result<Plan, ExprError> {
        let steps = &flow.steps;
        let output = flow.output.as_ref();
        let max_parallel = flow.max_parallel;
        if steps.is_empty() {
            return Err(fault("steps", "a workflow needs at least one step"));
        }
        if steps.len() > MAX_STEPS {
            return Err(fault(
                "steps",
                format!(
                    "a workflow has at most {MAX_STEPS} steps, this one has {}",
                    steps.len()
                ),
            ));
        }
        let max_parallel = bounded(max_parallel, DEFAULT_MAX_PARALLEL, "max_parallel")?;
        // Ids first: `needs` may name a later step.
        let mut ids: BTreeMap<String, usize> = BTreeMap::new();
        let mut names = Vec::with_capacity(steps.len());
        for (i, step) in steps.iter().enumerate() {
            let id = match step.id.as_deref() {
                Some(id) if !valid_id(id) => {
                    return Err(fault(
                        format!("steps[{i}].id"),
                        format!(
                            "{id:?} is not a step id: a letter or '_', then letters, digits, \
                             '_' and '-' (at most 64)"
                        ),
                    ));
                }
                Some(id) => id.to_owned(),
                // Unnamed steps (v1 submissions) get their position.
                None => format!("step{i}"),
            };
            if ids.insert(id.clone(), i).is_some() {
                return Err(fault(
                    format!("steps[{i}].id"),
                    format!("{id:?} is used twice"),
                ));
            }
            names.push(id);
        }
        let mut planned = Vec::with_capacity(steps.len());
        for (i, step) in steps.iter().enumerate() {
            let place = format!("steps[{i}]");
            let needs = match step.needs.as_deref() {
                None if i > 0 => vec![i - 1],
                None => Vec::new(),
                Some(list) => {
                    let mut needs = Vec::with_capacity(list.len());
                    for (j, name) in list.iter().enumerate() {
                        let Some(&k) = ids.get(name) else {
                            return Err(fault(
                                format!("{place}.needs[{j}]"),
                                format!("no step has the id {name:?}"),
                            ));
                        };
                        if k == i {
                            return Err(fault(
                                format!("{place}.needs[{j}]"),
                                "a step cannot need itself",
                            ));
                        }
                        if !needs.contains(&k) {
                            needs.push(k);
                        }
                    }
                    needs
                }
            };
            let input = step
                .input
                .as_ref()
                .map(|v| Template::parse(v, &format!("{place}.input")))
                .transpose()?;
            let when = step
                .when
                .as_deref()
                .map(|q| Query::parse(q, &format!("{place}.if")))
                .transpose()?;
            let for_each = step
                .for_each
                .as_deref()
                .map(|q| Query::parse(q, &format!("{place}.for_each")))
                .transpose()?;
            if step.concurrency.is_some() && step.for_each.is_none() {
                return Err(fault(
                    format!("{place}.concurrency"),
                    "only a for_each step has a concurrency",
                ));
            }
            let concurrency = bounded(
                step.concurrency,
                DEFAULT_CONCURRENCY,
                &format!("{place}.concurrency"),
            )?;
            let backoff = match &step.retry {
                Some(retry) => backoff(retry, &format!("{place}.retry"))?,
                None => Backoff::default(),
            };
            let sleep = match (&step.sleep, &step.sleep_until) {
                (Some(_), Some(_)) => {
                    return Err(fault(
                        format!("{place}.sleep_until"),
                        "give sleep or sleep_until, not both",
                    ));
                }
                (Some(d), None) => Some(Sleep::For(duration(d, &format!("{place}.sleep"))?)),
                (None, Some(q)) if q.starts_with("$.") => {
                    let query = Query::parse(q, &format!("{place}.sleep_until"))?;
                    Some(Sleep::UntilFound(query))
                }
                (None, Some(t)) => {
                    Some(Sleep::Until(timestamp(t, &format!("{place}.sleep_until"))?))
                }
                (None, None) => None,
            };
            if sleep.is_some() {
                for (given, field) in [
                    (step.for_each.is_some(), "for_each"),
                    (step.retry.is_some(), "retry"),
                ] {
                    if given {
                        return Err(fault(
                            format!("{place}.{field}"),
                            "a sleep step has no plugin call to repeat",
                        ));
                    }
                }
            }
            planned.push(PlannedStep {
                id: names[i].clone(),
                needs,
                input,
                when,
                for_each,
                concurrency,
                reads: Vec::new(),
                backoff,
                sleep,
            });
        }
        let order = topological(&planned, &names)?;
        // What each step may read: the steps it needs, transitively.
        let mut upstream: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); planned.len()];
        for &i in &order {
            let mut set = BTreeSet::new();
            for &n in &planned[i].needs {
                set.insert(n);
                set.extend(upstream[n].iter().copied());
            }
            upstream[i] = set;
        }
        for (i, step) in planned.iter_mut().enumerate() {
            let mut reads: Vec<(String, Vec<&Query>)> = Vec::new();
            if let Some(t) = &step.input {
                reads.push((format!("steps[{i}].input"), t.queries()));
            }
            if let Some(q) = &step.when {
                reads.push((format!("steps[{i}].if"), vec![q]));
            }
            if let Some(q) = &step.for_each {
                reads.push((format!("steps[{i}].for_each"), vec![q]));
            }
            if let Some(Sleep::UntilFound(q)) = &step.sleep {
                reads.push((format!("steps[{i}].sleep_until"), vec![q]));
            }
            let mut step_reads = Vec::new();
            for (place, queries) in reads {
                for q in queries {
                    let read =
                        check_reads(q, &place, &ids, |k| upstream[i].contains(&k), &names[i])?;
                    if let Some(k) = read
                        && !step_reads.contains(&k)
                    {
                        step_reads.push(k);
                    }
                    let element = q.text().starts_with("$.item") || q.text().starts_with("$.index");
                    if element && !(step.for_each.is_some() && place.ends_with(".input")) {
                        return Err(fault(
                            place,
                            format!(
                                "{} reads the element of a for_each: only the input of a \
                                 for_each step can",
                                q.text()
                            ),
                        ));
                    }
                }
            }
            step.reads = step_reads;
        }
        let output = output.map(|v| Template::parse(v, "output")).transpose()?;
        let mut output_reads = Vec::new();
        if let Some(t) = &output {
            for q in t.queries() {
                if let Some(k) = check_reads(q, "output", &ids, |_| true, "the output")?
                    && !output_reads.contains(&k)
                {
                    output_reads.push(k);
                }
                if q.text().starts_with("$.item") || q.text().starts_with("$.index") {
                    return Err(fault(
                        "output",
                        format!(
                            "{} reads the element of a for_each, and the output has none",
                            q.text()
                        ),
                    ));
                }
            }
        }
        let timeout = flow
            .timeout
            .as_deref()
            .map(|t| duration(t, "timeout"))
            .transpose()?;
        Ok(Plan {
            steps: planned,
            output,
            output_reads,
            max_parallel,
            timeout,
        })
    }

    /// The step ids, by index.
    pub fn id(&self, index: usize) -> &str {
        &self.steps[index].id
    }
}

/// The longest `timeout` or `sleep` a workflow may give.
pub const MAX_DURATION: Duration = Duration::from_secs(366 * 24 * 3600);

/// A duration as ISO 8601 (`PT15M`, `P1D`) or in jiff's friendly format
/// (`15m`, `1h 30m`), positive and at most [`MAX_DURATION`].
pub fn duration(text: &str, place: &str) -> Result<Duration, ExprError> {
    let parsed: jiff::SignedDuration = text.trim().parse().map_err(|e| {
        fault(
            place,
            format!("{text:?} is not a duration (PT15M, 15m, 1h 30m): {e}"),
        )
    })?;
    let duration = Duration::try_from(parsed)
        .ok()
        .filter(|d| !d.is_zero() && *d <= MAX_DURATION)
        .ok_or_else(|| {
            fault(
                place,
                format!("{text:?} must be positive and at most 366 days"),
            )
        })?;
    Ok(duration)
}

/// A time as RFC 3339 (`2026-12-24T18:00:00Z`, `…+01:00`).
pub fn timestamp(text: &str, place: &str) -> Result<jiff::Timestamp, ExprError> {
    text.trim().parse().map_err(|e| {
        fault(
            place,
            format!("{text:?} is not an RFC 3339 time (2026-12-24T18:00:00Z): {e}"),
        )
    })
}

/// A step's retry policy, checked.
fn backoff(retry: &StepRetry, place: &str) -> Result<Backoff, ExprError> {
    let ms = |value: Option<u64>, field: &str, most: u64| match value {
        None => Ok(None),
        Some(ms) if (1..=most).contains(&ms) => Ok(Some(Duration::from_millis(ms))),
        Some(ms) => Err(fault(
            format!("{place}.{field}"),
            format!("{ms} is out of range: 1 to {most}"),
        )),
    };
    let initial = ms(retry.initial_ms, "initial_ms", 3_600_000)?;
    let max = ms(retry.max_ms, "max_ms", 86_400_000)?;
    if let (Some(initial), Some(max)) = (initial, max)
        && max < initial
    {
        return Err(fault(
            format!("{place}.max_ms"),
            "must be at least initial_ms",
        ));
    }
    let multiplier = retry.multiplier.unwrap_or(2.0);
    if !(1.0..=10.0).contains(&multiplier) {
        return Err(fault(
            format!("{place}.multiplier"),
            format!("{multiplier} is out of range: 1 to 10"),
        ));
    }
    let non_retryable = match &retry.non_retryable {
        None => Backoff::default().non_retryable,
        Some(kinds) => {
            for (i, kind) in kinds.iter().enumerate() {
                if !ERROR_KINDS.contains(&kind.as_str()) {
                    return Err(fault(
                        format!("{place}.non_retryable[{i}]"),
                        format!(
                            "{kind:?} is not a kind of error: one of {}",
                            ERROR_KINDS.join(", ")
                        ),
                    ));
                }
            }
            kinds.clone()
        }
    };
    Ok(Backoff {
        initial,
        max,
        multiplier,
        non_retryable,
    })
}

fn bounded(value: Option<u32>, default: u32, place: &str) -> Result<u32, ExprError> {
    match value {
        None => Ok(default),
        Some(n) if (1..=MAX_PARALLEL).contains(&n) => Ok(n),
        Some(n) => Err(fault(
            place,
            format!("{n} is out of range: 1 to {MAX_PARALLEL}"),
        )),
    }
}

/// A query reads only `input`, `item`, `index` and steps `may_read` allows;
/// the step it reads, if any.
fn check_reads(
    q: &Query,
    place: &str,
    ids: &BTreeMap<String, usize>,
    may_read: impl Fn(usize) -> bool,
    who: &str,
) -> Result<Option<usize>, ExprError> {
    let text = q.text();
    let root_ok = ["$.input", "$.steps", "$.item", "$.index"].iter().any(|r| {
        text == *r || text.starts_with(&format!("{r}.")) || text.starts_with(&format!("{r}["))
    });
    if !root_ok {
        return Err(fault(
            place,
            format!(
                "{text} reads nothing: a query starts with $.input, $.steps.ID, $.item or $.index"
            ),
        ));
    }
    let (named, broad) = (
        q.step_ref(),
        text.starts_with("$.steps") && q.step_ref().is_none(),
    );
    if broad {
        return Err(fault(
            place,
            format!("{text} must name the step it reads: $.steps.ID.output…"),
        ));
    }
    let Some(name) = named else {
        return Ok(None);
    };
    match ids.get(name) {
        None => Err(fault(
            place,
            format!("{text} reads step {name:?}, and no step has that id"),
        )),
        Some(&k) if !may_read(k) => Err(fault(
            place,
            format!(
                "{text} reads step {name:?}, which {who} does not need: add it to needs \
                 (directly or through a step it needs)"
            ),
        )),
        Some(&k) => Ok(Some(k)),
    }
}

/// The steps in an order where each comes after what it needs; a cycle is
/// refused, naming it.
fn topological(steps: &[PlannedStep], names: &[String]) -> Result<Vec<usize>, ExprError> {
    let mut pending: Vec<usize> = steps.iter().map(|s| s.needs.len()).collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); steps.len()];
    for (i, s) in steps.iter().enumerate() {
        for &n in &s.needs {
            dependents[n].push(i);
        }
    }
    let mut ready: Vec<usize> = (0..steps.len()).filter(|&i| pending[i] == 0).collect();
    let mut order = Vec::with_capacity(steps.len());
    while let Some(i) = ready.pop() {
        order.push(i);
        for &d in &dependents[i] {
            pending[d] -= 1;
            if pending[d] == 0 {
                ready.push(d);
            }
        }
    }
    if order.len() == steps.len() {
        return Ok(order);
    }
    // Walk needs from a step left over until one repeats: that is a cycle.
    let start = (0..steps.len()).find(|i| pending[*i] > 0).unwrap_or(0);
    let mut path = vec![start];
    let mut at = start;
    loop {
        let next = steps[at]
            .needs
            .iter()
            .copied()
            .find(|n| pending[*n] > 0)
            .unwrap_or(start);
        if let Some(pos) = path.iter().position(|p| *p == next) {
            let cycle: Vec<&str> = path[pos..]
                .iter()
                .chain([&next])
                .map(|i| names[*i].as_str())
                .collect();
            return Err(fault(
                format!("steps[{}].needs", path[pos]),
                format!(
                    "the steps need each other in a cycle: {}",
                    cycle.join(" → ")
                ),
            ));
        }
        path.push(next);
        at = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn flow(value: Value) -> Flow {
        serde_json::from_value(value).expect("a flow")
    }

    #[test]
    fn a_plain_list_runs_in_order() {
        let plan = Plan::check(&Flow::linear(3)).unwrap();
        let needs: Vec<&[usize]> = plan.steps.iter().map(|s| s.needs.as_slice()).collect();
        assert_eq!(needs, [&[][..], &[0], &[1]]);
        assert_eq!(plan.id(2), "step2");
        assert_eq!(plan.max_parallel, DEFAULT_MAX_PARALLEL);
        assert!(Flow::linear(3).is_linear());
    }

    #[test]
    fn needs_make_a_dag_and_reads_follow_them() {
        let plan = Plan::check(&flow(json!({"steps": [
            {"id": "a", "needs": []},
            {"id": "b", "needs": []},
            {"id": "c", "needs": ["a", "b"], "input": {"x": "$.steps.a.output", "y": "$.steps['b'].output.z"}},
            {"id": "d", "input": "$.steps.a.output"},
        ], "output": "$.steps.d.output"})))
        .unwrap();
        assert_eq!(plan.steps[2].needs, [0, 1]);
        assert_eq!(plan.steps[2].reads, [0, 1]);
        // d follows c, and through it may read a.
        assert_eq!(plan.steps[3].needs, [2]);
        assert_eq!(plan.steps[3].reads, [0]);
        assert_eq!(plan.output_reads, [3]);
    }

    #[test]
    fn faults_name_their_place() {
        let fault = |value: Value| Plan::check(&flow(value)).unwrap_err().to_string();
        assert_eq!(
            fault(
                json!({"steps": [{"id": "a", "needs": ["c"]}, {"id": "b", "needs": ["a"]}, {"id": "c", "needs": ["b"]}]})
            ),
            "steps[0].needs: the steps need each other in a cycle: a → c → b → a"
        );
        assert!(
            fault(json!({"steps": []})).starts_with("steps: a workflow needs at least one step")
        );
        assert!(
            fault(json!({"steps": [{"id": "a", "needs": []}, {"id": "b", "needs": [], "if": "$.steps.a.output"}]}))
                .starts_with("steps[1].if: $.steps.a.output reads step \"a\", which b does not need")
        );
        assert!(
            fault(json!({"steps": [{"for_each": "$.input", "if": "$.item"}]}))
                .starts_with("steps[0].if: $.item reads the element of a for_each")
        );
        assert!(
            fault(json!({"steps": [{"input": "$.steps.*.output"}]}))
                .starts_with("steps[0].input: $.steps.*.output must name the step it reads")
        );
        assert!(
            fault(json!({"steps": [{"input": "$..x"}]}))
                .starts_with("steps[0].input: $..x reads nothing")
        );
        assert!(
            fault(json!({"steps": [{"concurrency": 2}]}))
                .starts_with("steps[0].concurrency: only a for_each step has a concurrency")
        );
    }

    #[test]
    fn a_for_each_input_reads_its_element() {
        let plan = Plan::check(&flow(json!({"steps": [
            {"id": "each", "for_each": "$.input.list", "concurrency": 3, "input": {"v": "$.item", "i": "$.index"}},
        ]})))
        .unwrap();
        assert_eq!(plan.steps[0].concurrency, 3);
        assert!(plan.steps[0].for_each.is_some());
    }
}
