//! A linearizability checker for recorded client histories: the checker of ferrocask's
//! fault-injection tests.
//!
//! A test records one [`Operation`] per client call: its input, when it was invoked, and its
//! [`Outcome`], either the output and when it returned, or [`Outcome::Unknown`] when the call
//! errored or timed out (it may have taken effect, at any time after its invoke, or never).
//! [`check`] then decides whether some order of the operations, consistent with real time (an
//! operation that returned before another was invoked comes first), is accepted by a sequential
//! specification, a [`Model`].
//!
//! The search is Wing & Gong's, with Lowe's memoisation, as Porcupine runs it (Lowe, "Testing for
//! Linearizability"; Horn & Kroening, "Faster linearizability checking via P-compositionality"):
//! calls and returns in a doubly linked list ordered by time, a stack of the choices made, and a
//! cache of (set of operations linearized, model state) pairs already explored. The model's
//! [`Model::partition`] splits a history into parts checked separately, such as one per key. The
//! search is bounded by a step budget, never by a clock, so a verdict does not depend on the
//! machine: [`Verdict::Undecided`] says the budget ran out.
//!
//! Two models are shipped: a [`Register`](models::register::Register) and the key-value
//! [`KvModel`](models::kv::KvModel) (SET, GET, DEL, INCR with Redis's replies, per key).
//!
//! # Example
//!
//! Client 1 writes `b` over the initial `a` and is acknowledged; client 2 then reads `a`. No order
//! explains that read, and the counterexample says so:
//!
//! ```
//! use ferrocask_lincheck::models::register::{Register, RegisterOp, RegisterReply};
//! use ferrocask_lincheck::{check, Operation, Verdict};
//!
//! let model = Register { initial: 'a' };
//! let history = [
//!     Operation::ok(1, RegisterOp::Write('b'), 0, RegisterReply::Written, 10),
//!     Operation::ok(2, RegisterOp::Read, 20, RegisterReply::Value('a'), 30),
//! ];
//! let report = check(&model, &history, 1_000).unwrap();
//! let Verdict::NotLinearizable(counterexample) = &report.verdict else { panic!("a stale read") };
//! assert_eq!(counterexample.longest, [0]); // the write fits; the read after it cannot
//! println!("{}", counterexample.explain(&model, &history));
//!
//! // Had the read begun before the write returned, it could have come first.
//! let concurrent = [history[0].clone(), Operation::ok(2, RegisterOp::Read, 5, RegisterReply::Value('a'), 30)];
//! assert_eq!(check(&model, &concurrent, 1_000).unwrap().verdict, Verdict::Linearizable);
//! ```
#![deny(missing_docs)]

mod bitset;
mod check;
mod entries;
mod explain;
mod history;
mod model;
pub mod models;
mod search;

pub use check::{check, Counterexample, Report, Verdict};
pub use history::{HistoryError, Operation, Outcome, Time};
pub use model::Model;
