//! The rayon scheduler: ready queue, priorities, retries, timeouts, cancellation, events.
//!
//! It knows tasks only by index, id and dependencies; what a task does is behind [`Runner`].
//! Progress output, callbacks and state are subscribers to the [`Event`] channel.

mod cancel;
mod dag;
mod event;
pub mod plan_run;
mod scheduler;
#[cfg(test)]
mod tests;

pub use cancel::{CancelToken, OnCancel};
pub use dag::{Dag, Task};
pub use event::{Counts, Event, Outcome, RunReport, SkipCause, Status, TaskResult};
pub use scheduler::{Completion, Options, Runner, execute};
