//! What starts runs besides a client's POST: a definition's cron schedule
//! and its signed webhook.
//!
//! Schedules: every worker host looks for due ticks a few times a second.
//! A host fires tick T of definition D by creating its run with the
//! idempotency key `cron:D:T` (a second host creating it gets the same
//! run), then moving the schedule's `next_at` from T on with a
//! compare-and-set. So each tick starts exactly one run however many hosts
//! race for it, and a host that dies between the two steps leaves the
//! next one to finish the move.
//!
//! A tick found more than 5 s late means no host ran when it fell due:
//! every tick up to now was missed. `catch_up: skip` starts nothing for
//! them; `one` starts one run, for the latest, whose input also says
//! `missed_since` (the first missed tick). Either way the schedule resumes
//! at the next tick to come.

use std::time::Duration;

use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use hmac::{Hmac, Mac};
use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use nova_client::types::{CatchUp, Definition, Schedule};
use sha2::Sha256;
use tokio::task::JoinHandle;

use super::{WorkflowError, Workflows};
use crate::store::{DefinitionRow, RawJson, now_ms};

/// How often a host looks for due ticks.
const TICK: Duration = Duration::from_millis(250);
/// A tick this late was missed (no host ran when it fell due): its
/// schedule's `catch_up` decides.
const MISSED_AFTER_MS: i64 = 5_000;
/// How far the signature's time may be from the host's clock.
pub const SIGNATURE_WINDOW_S: i64 = 300;

/// A schedule, checked: its cron pattern in its time zone.
pub struct Cadence {
    cron: Cron,
    zone: TimeZone,
    pub catch_up: CatchUp,
}

impl Cadence {
    /// Checks `schedule`; errors name the field (`schedule.cron: …`).
    pub fn parse(schedule: &Schedule) -> Result<Cadence, String> {
        let fields = schedule.cron.split_whitespace().count();
        if !(5..=6).contains(&fields) {
            return Err(format!(
                "schedule.cron: {:?} has {fields} fields: give five (minute hour day month \
                 weekday) or six (seconds first)",
                schedule.cron
            ));
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .year(Year::Disallowed)
            .build()
            .parse(&schedule.cron)
            .map_err(|e| {
                format!(
                    "schedule.cron: {:?} is not a cron pattern: {e}",
                    schedule.cron
                )
            })?;
        let zone = match &schedule.timezone {
            None => TimeZone::UTC,
            Some(name) => TimeZone::get(name).map_err(|e| {
                format!("schedule.timezone: {name:?} is not an IANA time zone: {e}")
            })?,
        };
        let cadence = Cadence {
            cron,
            zone,
            catch_up: schedule.catch_up,
        };
        if cadence.next_after(now_ms()).is_none() {
            return Err(format!(
                "schedule.cron: {:?} never falls due",
                schedule.cron
            ));
        }
        Ok(cadence)
    }

    /// The first tick strictly after `after` (unix ms), as unix ms.
    ///
    /// The pattern is matched against the wall clock of the schedule's
    /// zone: a wall time skipped by a change to summer time fires just
    /// after the change; one repeated by the change back fires once.
    pub fn next_after(&self, after: i64) -> Option<i64> {
        let mut from = self.civil(after)?;
        for _ in 0..4 {
            let next = self.cron.find_next_occurrence(&from, false).ok()?;
            let at = self.instant(&next)?;
            if at > after {
                return Some(at);
            }
            // The wall clock went back (end of summer time): look on.
            from = next;
        }
        None
    }

    /// The last tick at or before `at` (unix ms).
    pub fn last_at_or_before(&self, at: i64) -> Option<i64> {
        let civil = self.civil(at)?;
        let last = self.cron.find_previous_occurrence(&civil, true).ok()?;
        self.instant(&last).filter(|t| *t <= at)
    }

    /// `at` as the zone's wall clock, in chrono's terms (labelled UTC).
    fn civil(&self, at: i64) -> Option<chrono::DateTime<chrono::Utc>> {
        let wall = self.zone.to_datetime(Timestamp::from_millisecond(at).ok()?);
        let date = chrono::NaiveDate::from_ymd_opt(
            i32::from(wall.year()),
            u32::try_from(wall.month()).ok()?,
            u32::try_from(wall.day()).ok()?,
        )?;
        let time = chrono::NaiveTime::from_hms_milli_opt(
            u32::try_from(wall.hour()).ok()?,
            u32::try_from(wall.minute()).ok()?,
            u32::try_from(wall.second()).ok()?,
            u32::try_from(wall.millisecond()).ok()?,
        )?;
        Some(chrono::NaiveDateTime::new(date, time).and_utc())
    }

    /// A wall-clock time of the zone as unix ms (the earlier of two, a
    /// skipped one moved past the gap).
    fn instant(&self, wall: &chrono::DateTime<chrono::Utc>) -> Option<i64> {
        use chrono::{Datelike, Timelike};
        let civil = DateTime::new(
            i16::try_from(wall.year()).ok()?,
            i8::try_from(wall.month()).ok()?,
            i8::try_from(wall.day()).ok()?,
            i8::try_from(wall.hour()).ok()?,
            i8::try_from(wall.minute()).ok()?,
            i8::try_from(wall.second()).ok()?,
            0,
        )
        .ok()?;
        let at = self.zone.to_timestamp(civil).ok()?;
        Some(at.as_millisecond())
    }
}

/// Starts the loop that fires this host's share of due ticks.
pub fn spawn_scheduler(wf: Workflows) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(TICK).await;
            if let Err(e) = fire_due(&wf).await {
                tracing::warn!(error = %e, "cannot fire scheduled runs; trying again");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    })
}

/// Fires every due tick once (across hosts); the ticks fired here.
pub async fn fire_due(wf: &Workflows) -> Result<u32, WorkflowError> {
    let mut fired = 0;
    for (name, tick) in wf.store.schedules_due(now_ms(), 32).await? {
        let (row, definition) = match wf.definition(&name, None).await {
            Ok(found) => found,
            Err(WorkflowError::NoDefinition(_)) => {
                wf.store.schedule_delete(&name).await?;
                continue;
            }
            Err(e) => return Err(e),
        };
        let Some(cadence) = definition
            .schedule
            .as_ref()
            .and_then(|s| Cadence::parse(s).ok())
        else {
            wf.store.schedule_delete(&name).await?;
            continue;
        };
        let now = now_ms();
        let (fire, next) = if now - tick > MISSED_AFTER_MS {
            // Missed while no host ran: every tick up to now was missed.
            // Resume at the next tick to come; `one` starts a run for the
            // latest missed one.
            let resume = cadence.next_after(now).unwrap_or(i64::MAX);
            let latest = cadence.last_at_or_before(now);
            let fire = match cadence.catch_up {
                CatchUp::One => latest.filter(|t| *t >= tick),
                CatchUp::Skip => None,
            };
            tracing::info!(definition = %name, missed_from = tick, resume, caught_up = fire.is_some(), "schedule missed ticks");
            (fire.map(|at| (at, Some(tick))), resume)
        } else {
            (
                Some((tick, None)),
                cadence.next_after(tick).unwrap_or(i64::MAX),
            )
        };
        if let Some((at, missed_since)) = fire {
            match start(wf, row, definition, at, missed_since).await {
                Ok(()) => fired += 1,
                Err(WorkflowError::Store(e)) => return Err(WorkflowError::Store(e)),
                Err(WorkflowError::Queue(e)) => return Err(WorkflowError::Queue(e)),
                // The definition no longer runs (a plugin removed, say): the
                // tick is lost, not retried forever.
                Err(e) => {
                    tracing::error!(definition = %name, tick = at, error = %e, "a scheduled run could not start")
                }
            }
        }
        wf.store.schedule_advance(&name, tick, next).await?;
    }
    Ok(fired)
}

/// Starts the run of tick `tick` of the definition read (`row`);
/// `missed_since`: the first of the ticks it stands for, when it catches up
/// on ticks missed.
async fn start(
    wf: &Workflows,
    row: DefinitionRow,
    definition: Definition,
    tick: i64,
    missed_since: Option<i64>,
) -> Result<(), WorkflowError> {
    let name = row.name.clone();
    let rfc3339 = |ms: i64| {
        Timestamp::from_millisecond(ms)
            .map(|t| t.to_string())
            .unwrap_or_default()
    };
    let at = rfc3339(tick);
    let input = match missed_since {
        Some(first) => serde_json::json!({ "scheduled_for": at, "missed_since": rfc3339(first) }),
        None => serde_json::json!({ "scheduled_for": at }),
    };
    let input = RawJson::from_value(&input);
    let key = format!("cron:{name}:{tick}");
    let submitted = wf
        .start_saved(row, definition, input, Some(key), None, Some(tick))
        .await?;
    if submitted.created {
        tracing::info!(definition = %name, run = %submitted.run.id, scheduled_for = %at, "scheduled run started");
    }
    Ok(())
}

/// Why a webhook delivery's signature is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("X-Nova-Signature is missing")]
    Missing,
    #[error("X-Nova-Signature must read t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.<body>\">")]
    Malformed,
    #[error("X-Nova-Signature's time is more than {SIGNATURE_WINDOW_S} s from now")]
    Stale,
    #[error("X-Nova-Signature does not match the body")]
    Mismatch,
}

/// Checks `header` (`t=<unix seconds>,v1=<hex>`) against the body: the
/// HMAC-SHA256 of `"<t>.<body>"` under `secret`, with `t` within
/// [`SIGNATURE_WINDOW_S`] of `now` (unix seconds). Compared in constant
/// time; several `v1=` (a secret being rotated) pass if one matches.
pub fn verify_signature(
    secret: &[u8],
    header: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut time = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => time = Some(t.parse::<i64>().map_err(|_| SignatureError::Malformed)?),
            Some(("v1", hex)) => {
                signatures.push(hex::decode(hex).map_err(|_| SignatureError::Malformed)?)
            }
            _ => {}
        }
    }
    let time = time.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if (now - time).abs() > SIGNATURE_WINDOW_S {
        return Err(SignatureError::Stale);
    }
    for signature in signatures {
        let Some(mac) = mac(secret, time, body) else {
            return Err(SignatureError::Mismatch);
        };
        if mac.verify_slice(&signature).is_ok() {
            return Ok(());
        }
    }
    Err(SignatureError::Mismatch)
}

/// The HMAC-SHA256 of `"<time>.<body>"` under `secret`, fed and ready to
/// verify or finish (none only if HMAC refused the key, which it never
/// does for SHA-256).
fn mac(secret: &[u8], time: i64, body: &[u8]) -> Option<Hmac<Sha256>> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).ok()?;
    mac.update(time.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The header a sender writes for `body` at `time`.
    fn sign(secret: &[u8], body: &[u8], time: i64) -> String {
        let digest = mac(secret, time, body).unwrap().finalize().into_bytes();
        format!("t={time},v1={}", hex::encode(digest))
    }

    fn cadence(cron: &str, zone: Option<&str>) -> Cadence {
        Cadence::parse(&Schedule {
            cron: cron.into(),
            timezone: zone.map(str::to_owned),
            catch_up: CatchUp::Skip,
        })
        .unwrap()
    }

    fn ms(text: &str) -> i64 {
        text.parse::<Timestamp>().unwrap().as_millisecond()
    }

    #[test]
    fn five_or_six_fields_in_a_zone() {
        let every5 = cadence("0 */5 * * * *", None);
        assert_eq!(
            every5.next_after(ms("2026-03-01T10:02:03Z")),
            Some(ms("2026-03-01T10:05:00Z"))
        );
        assert_eq!(
            every5.next_after(ms("2026-03-01T10:05:00Z")),
            Some(ms("2026-03-01T10:10:00Z"))
        );
        let nine = cadence("0 9 * * 1-5", Some("Europe/Madrid"));
        // Friday 2026-03-06 09:00 in Madrid is 08:00 UTC; then Monday.
        assert_eq!(
            nine.next_after(ms("2026-03-06T07:00:00Z")),
            Some(ms("2026-03-06T08:00:00Z"))
        );
        assert_eq!(
            nine.next_after(ms("2026-03-06T08:00:00Z")),
            Some(ms("2026-03-09T08:00:00Z"))
        );
        assert_eq!(
            nine.last_at_or_before(ms("2026-03-08T12:00:00Z")),
            Some(ms("2026-03-06T08:00:00Z"))
        );
    }

    #[test]
    fn summer_time_changes_fire_once() {
        // Madrid: 2026-03-29 02:00 → 03:00; 2026-10-25 03:00 → 02:00.
        let half_two = cadence("30 2 * * *", Some("Europe/Madrid"));
        // The skipped 02:30 fires just after the gap (03:30 CEST = 01:30Z).
        assert_eq!(
            half_two.next_after(ms("2026-03-28T23:00:00Z")),
            Some(ms("2026-03-29T01:30:00Z"))
        );
        // The repeated 02:30 fires once (the first, 00:30Z), then the next day.
        let first = half_two.next_after(ms("2026-10-24T23:00:00Z")).unwrap();
        assert_eq!(first, ms("2026-10-25T00:30:00Z"));
        assert_eq!(half_two.next_after(first), Some(ms("2026-10-26T01:30:00Z")));
    }

    #[test]
    fn bad_schedules_name_the_field() {
        let error = |cron: &str, zone: Option<&str>| {
            Cadence::parse(&Schedule {
                cron: cron.into(),
                timezone: zone.map(str::to_owned),
                catch_up: CatchUp::One,
            })
            .err()
            .unwrap()
        };
        assert!(error("* * *", None).starts_with("schedule.cron: \"* * *\" has 3 fields"));
        assert!(
            error("61 * * * *", None)
                .starts_with("schedule.cron: \"61 * * * *\" is not a cron pattern")
        );
        assert!(error("* * * * *", Some("Mars/Olympus")).starts_with("schedule.timezone"));
    }

    #[test]
    fn signatures() {
        let body = br#"{"order": 7}"#;
        let header = sign(b"s3cret", body, 1_000);
        assert!(verify_signature(b"s3cret", Some(&header), body, 1_010).is_ok());
        assert_eq!(
            verify_signature(b"s3cret", Some(&header), body, 1_400),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify_signature(b"other", Some(&header), body, 1_000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(b"s3cret", Some(&header), b"{}", 1_000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(b"s3cret", None, body, 1_000),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify_signature(b"s3cret", Some("v1=zz,t=1000"), body, 1_000),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify_signature(b"s3cret", Some("t=1000"), body, 1_000),
            Err(SignatureError::Malformed)
        );
        // Rotation: one of several v1 matches.
        let rotated = format!("{header},v1={}", "00".repeat(32));
        assert!(verify_signature(b"s3cret", Some(&rotated), body, 1_000).is_ok());
    }
}
