//! Random concurrent key-value histories that are linearizable by construction: every operation
//! gets a linearization point inside its interval, the points are executed in order on a plain
//! map with Redis's rules (written here apart from the crate's model), and each call's reply is
//! what that execution returned. [`mutate`] then breaks some of them.

use std::collections::HashMap;

use ferrocask_lincheck::models::kv::{KvInput, KvOutput};
use ferrocask_lincheck::{Operation, Outcome, Time};

use super::{KvOp, Rng};

/// The values SET writes: text INCR refuses, integers it takes, and one it overflows on.
const VALUES: [&str; 5] = ["a", "b", "1", "41", "9223372036854775807"];

/// The size and concurrency of a generated history.
pub struct Shape {
    pub ops: usize,
    pub clients: u64,
    pub keys: &'static [&'static str],
    /// One operation in this many has an unknown outcome (0: none).
    pub unknown_one_in: u64,
    /// The clock advances by up to this much between two invokes.
    pub max_gap: Time,
    /// A call lasts up to this long.
    pub max_duration: Time,
}

/// A history of `shape` that is linearizable by construction.
pub fn linearizable_history(rng: &mut Rng, shape: &Shape) -> Vec<KvOp> {
    let mut history = Vec::with_capacity(shape.ops);
    let mut points = Vec::new();
    let mut clock = 0;
    let mut client_free = vec![0; shape.clients as usize];
    for index in 0..shape.ops {
        clock += rng.below(shape.max_gap + 1);
        let client = rng.below(shape.clients);
        let invoke = clock.max(client_free[client as usize]);
        let duration = rng.below(shape.max_duration + 1);
        // A client whose call timed out moves on after the timeout, while the call may still land.
        client_free[client as usize] = invoke + duration + 1;
        let unknown = shape.unknown_one_in > 0 && rng.one_in(shape.unknown_one_in);
        let input = random_input(rng, shape.keys);
        let point = match unknown {
            false => Some(invoke + rng.below(duration + 1)),
            true if rng.one_in(2) => Some(invoke + rng.below(3 * shape.max_duration + 1)),
            true => None,
        };
        if let Some(point) = point {
            points.push((point, rng.next_u64(), index));
        }
        let outcome =
            if unknown { Outcome::Unknown } else { Outcome::Ok { output: KvOutput::Ok, returned: invoke + duration } };
        history.push(Operation { client, input, invoke, outcome });
    }
    execute_at_points(&mut history, points);
    history
}

/// Runs the operations that took effect in the order of their points (random among equal points)
/// and gives each returned call the reply it got.
fn execute_at_points(history: &mut [KvOp], mut points: Vec<(Time, u64, usize)>) {
    points.sort_unstable();
    let mut store = HashMap::new();
    for (_, _, index) in points {
        let reply = execute(&mut store, &history[index].input);
        if let Outcome::Ok { output, .. } = &mut history[index].outcome {
            *output = reply;
        }
    }
}

fn random_input(rng: &mut Rng, keys: &[&str]) -> KvInput {
    let key = rng.pick(keys).to_string();
    match rng.below(4) {
        0 => KvInput::Set { key, value: rng.pick(&VALUES).to_string() },
        1 => KvInput::Get { key },
        2 => KvInput::Del { key },
        _ => KvInput::Incr { key },
    }
}

/// A real sequential execution of one command on a map, as Redis does it.
pub fn execute(store: &mut HashMap<String, String>, input: &KvInput) -> KvOutput {
    match input {
        KvInput::Set { key, value } => {
            store.insert(key.clone(), value.clone());
            KvOutput::Ok
        }
        KvInput::Get { key } => KvOutput::Value(store.get(key).cloned()),
        KvInput::Del { key } => KvOutput::Deleted(store.remove(key).map_or(0, |_| 1)),
        KvInput::Incr { key } => {
            let current = match store.get(key) {
                None => 0,
                Some(text) => match redis_integer(text) {
                    Some(n) => n,
                    None => return KvOutput::NotAnInteger,
                },
            };
            if current == i64::MAX {
                return KvOutput::Overflow;
            }
            store.insert(key.clone(), (current + 1).to_string());
            KvOutput::Integer(current + 1)
        }
    }
}

/// Redis's `string2ll`, digit by digit: optional `-`, no leading zero but in `0`, within `i64`.
fn redis_integer(text: &str) -> Option<i64> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let valid_start = digits == "0" && !negative || digits.starts_with(|c: char| ('1'..='9').contains(&c));
    if !valid_start || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 19 {
        return None;
    }
    let magnitude: i128 = digits.parse().ok()?;
    i64::try_from(if negative { -magnitude } else { magnitude }).ok()
}

/// Changes one operation of `history` at random: its reply, its timing, or whether its outcome is
/// known. The result may or may not still be linearizable; the tests' oracle decides.
pub fn mutate(rng: &mut Rng, history: &mut [KvOp]) {
    if history.is_empty() {
        return;
    }
    let index = rng.below(history.len() as u64) as usize;
    let op = &mut history[index];
    match rng.below(4) {
        0 => {
            if let Outcome::Ok { output, .. } = &mut op.outcome {
                *output = random_output(rng, &op.input);
            }
        }
        1 => shift(rng, op),
        2 => {
            let returned = op.invoke + rng.below(8);
            op.outcome = Outcome::Ok { output: random_output(rng, &op.input), returned };
        }
        _ => op.outcome = Outcome::Unknown,
    }
}

/// Moves an operation's interval, keeping its length.
fn shift(rng: &mut Rng, op: &mut KvOp) {
    let invoke = rng.below(op.invoke + 10);
    if let Outcome::Ok { returned, .. } = &mut op.outcome {
        *returned = invoke + (*returned - op.invoke);
    }
    op.invoke = invoke;
}

/// A reply the command could plausibly have given.
fn random_output(rng: &mut Rng, input: &KvInput) -> KvOutput {
    match input {
        KvInput::Set { .. } => KvOutput::Ok,
        KvInput::Get { .. } => {
            let seen = *rng.pick(&[None, Some("a"), Some("b"), Some("1"), Some("2"), Some("41"), Some("42")]);
            KvOutput::Value(seen.map(str::to_string))
        }
        KvInput::Del { .. } => KvOutput::Deleted(rng.below(2)),
        KvInput::Incr { .. } => match rng.below(5) {
            0 => KvOutput::NotAnInteger,
            _ => KvOutput::Integer(*rng.pick(&[1, 2, 3, 42])),
        },
    }
}
