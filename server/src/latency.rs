//! LATENCY LATEST / HISTORY / RESET: Redis's latency monitor for the one event the server
//! measures, `command` (a command that took at least `latency-monitor-threshold` milliseconds,
//! timed as SLOWLOG times it: a write until it is durable). As in Redis, a threshold of 0 (the
//! default) turns the monitor off, and each event keeps one sample per second (the worst), the
//! last [`HISTORY_SAMPLES`] of them, and its all-time maximum.
//!
//! The hot path reads one atomic; the mutex is taken only to add a sample or answer LATENCY.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use parking_lot::Mutex;

use crate::reply::Reply;

/// The default `latency-monitor-threshold` (Redis's): 0 ms, the monitor off.
pub const MONITOR_THRESHOLD_MS_DEFAULT: u64 = 0;
/// Samples an event keeps (Redis's `LATENCY_TS_LEN`): one per second at most.
pub const HISTORY_SAMPLES: usize = 160;

/// One event's samples.
#[derive(Debug, Default)]
struct Series {
    /// (Unix second, worst latency in ms that second), oldest first.
    samples: VecDeque<(u64, u64)>,
    max_ms: u64,
}

/// The monitor, shared by every connection.
#[derive(Debug)]
pub(crate) struct LatencyMonitor {
    threshold_ms: AtomicU64,
    events: Mutex<BTreeMap<&'static str, Series>>,
}

impl LatencyMonitor {
    pub(crate) fn new(threshold_ms: u64) -> LatencyMonitor {
        LatencyMonitor { threshold_ms: AtomicU64::new(threshold_ms), events: Mutex::new(BTreeMap::new()) }
    }

    /// The current `latency-monitor-threshold` (for CONFIG GET).
    #[allow(
        dead_code,
        reason = "CONFIG GET/SET of latency-monitor-threshold comes with the configuration work of issue 25"
    )]
    pub(crate) fn threshold_ms(&self) -> u64 {
        self.threshold_ms.load(Ordering::Relaxed)
    }

    /// Sets `latency-monitor-threshold` (for CONFIG SET): 0 turns the monitor off.
    #[allow(
        dead_code,
        reason = "CONFIG GET/SET of latency-monitor-threshold comes with the configuration work of issue 25"
    )]
    pub(crate) fn set_threshold_ms(&self, ms: u64) {
        self.threshold_ms.store(ms, Ordering::Relaxed);
    }

    /// Records that `event` took `ms`, if the monitor is on and `ms` reaches its threshold.
    pub(crate) fn add(&self, event: &'static str, ms: u64) {
        let threshold = self.threshold_ms.load(Ordering::Relaxed);
        if threshold == 0 || ms < threshold {
            return;
        }
        self.add_at(event, ms, unix_secs());
    }

    fn add_at(&self, event: &'static str, ms: u64, now: u64) {
        let mut events = self.events.lock();
        let series = events.entry(event).or_default();
        series.max_ms = series.max_ms.max(ms);
        match series.samples.back_mut() {
            Some((at, worst)) if *at == now => *worst = (*worst).max(ms),
            _ => {
                series.samples.push_back((now, ms));
                if series.samples.len() > HISTORY_SAMPLES {
                    series.samples.pop_front();
                }
            }
        }
    }

    /// LATENCY LATEST: per event, its name, the time and latency of its last sample, and its
    /// maximum.
    pub(crate) fn latest(&self) -> Reply {
        let events = self.events.lock();
        let rows = events.iter().filter_map(|(name, series)| {
            let &(at, ms) = series.samples.back()?;
            Some(Reply::Array(vec![
                Reply::bulk(*name),
                Reply::Int(at as i64),
                Reply::Int(ms as i64),
                Reply::Int(series.max_ms as i64),
            ]))
        });
        Reply::Array(rows.collect())
    }

    /// LATENCY HISTORY event: its samples, oldest first (none for an unknown event).
    pub(crate) fn history(&self, event: &[u8]) -> Reply {
        let events = self.events.lock();
        let Some(series) = events.iter().find(|(name, _)| name.as_bytes() == event).map(|(_, s)| s) else {
            return Reply::Array(Vec::new());
        };
        let rows =
            series.samples.iter().map(|&(at, ms)| Reply::Array(vec![Reply::Int(at as i64), Reply::Int(ms as i64)]));
        Reply::Array(rows.collect())
    }

    /// LATENCY RESET [event...]: the number of events whose data was dropped.
    pub(crate) fn reset(&self, events: &[Bytes]) -> Reply {
        let mut all = self.events.lock();
        if events.is_empty() {
            let n = all.len();
            all.clear();
            return Reply::Int(n as i64);
        }
        let before = all.len();
        all.retain(|name, _| !events.iter().any(|e| e[..] == *name.as_bytes()));
        Reply::Int((before - all.len()) as i64)
    }
}

fn unix_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// LATENCY HELP's text, as Redis 7.0 prints it (DOCTOR, GRAPH and HISTOGRAM are listed, and
/// refused by ferrocask).
pub(crate) const HELP: &[&str] = &[
    "LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DOCTOR",
    "    Return a human readable latency analysis report.",
    "GRAPH <event>",
    "    Return an ASCII latency graph for the <event> class.",
    "HISTORY <event>",
    "    Return time-latency samples for the <event> class.",
    "LATEST",
    "    Return the latest latency samples for all events.",
    "RESET [<event> ...]",
    "    Reset latency data of one or more <event> classes.",
    "    (default: reset all data for all event classes)",
    "HISTOGRAM [COMMAND ...]",
    "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
    "    If no commands are specified then all histograms are replied.",
    "HELP",
    "    Prints this help.",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_by_default_and_below_the_threshold() {
        let monitor = LatencyMonitor::new(MONITOR_THRESHOLD_MS_DEFAULT);
        monitor.add("command", u64::MAX);
        assert_eq!(monitor.latest(), Reply::Array(Vec::new()), "a threshold of 0 is off, as in Redis");
        monitor.set_threshold_ms(5);
        monitor.add("command", 4);
        assert_eq!(monitor.latest(), Reply::Array(Vec::new()));
        monitor.add("command", 5);
        assert!(matches!(monitor.latest(), Reply::Array(rows) if rows.len() == 1));
    }

    #[test]
    fn one_sample_per_second_the_worst_and_at_most_history_samples() {
        let monitor = LatencyMonitor::new(1);
        monitor.add_at("command", 7, 100);
        monitor.add_at("command", 3, 100);
        monitor.add_at("command", 9, 101);
        let pair = |at: i64, ms: i64| Reply::Array(vec![Reply::Int(at), Reply::Int(ms)]);
        assert_eq!(monitor.history(b"command"), Reply::Array(vec![pair(100, 7), pair(101, 9)]));
        monitor.add_at("command", 2, 102);
        let latest = Reply::Array(vec![Reply::bulk("command"), Reply::Int(102), Reply::Int(2), Reply::Int(9)]);
        assert_eq!(monitor.latest(), Reply::Array(vec![latest]), "name, last time, last latency, max");
        for at in 200..200 + HISTORY_SAMPLES as u64 {
            monitor.add_at("command", 1, at);
        }
        let Reply::Array(rows) = monitor.history(b"command") else { panic!() };
        assert_eq!(rows.len(), HISTORY_SAMPLES);
        assert_eq!(rows[0], pair(200, 1), "the oldest are dropped");
        assert_eq!(monitor.history(b"nope"), Reply::Array(Vec::new()));
        assert_eq!(monitor.reset(&[Bytes::from_static(b"nope")]), Reply::Int(0));
        assert_eq!(monitor.reset(&[Bytes::from_static(b"command")]), Reply::Int(1));
        assert_eq!(monitor.latest(), Reply::Array(Vec::new()));
    }
}
