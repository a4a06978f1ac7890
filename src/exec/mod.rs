//! The rayon scheduler: ready queue, priorities, retries, timeouts, cancellation, events.
