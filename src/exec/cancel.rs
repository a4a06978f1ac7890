//! Cancellation: one signal that every worker, query and backoff sleep watches.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

type Handler = Box<dyn FnOnce(&str) + Send>;

/// A cancellation signal. Clones share it; `child()` makes a token that is cancelled with its
/// parent but can also be cancelled alone (a task's token under the run's).
#[derive(Clone, Default)]
pub struct CancelToken {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    cancelled: AtomicBool,
    state: Mutex<State>,
    changed: Condvar,
    /// Keeps a child registered with its parent for as long as the child lives.
    parent_link: Mutex<Option<OnCancel>>,
}

#[derive(Default)]
struct State {
    reason: Option<String>,
    handlers: Vec<(u64, Handler)>,
    next_id: u64,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A handler that panicked must not disable cancellation for everyone else.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl CancelToken {
    pub fn new() -> Self {
        CancelToken::default()
    }

    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::Acquire)
    }

    /// Why the token was cancelled, once it is.
    pub fn reason(&self) -> Option<String> {
        self.inner.lock().reason.clone()
    }

    /// Cancels the token and its children and runs the registered handlers (once, on this
    /// thread). Returns false when it was already cancelled; the first reason stays.
    pub fn cancel(&self, reason: impl Into<String>) -> bool {
        let reason = reason.into();
        let handlers = {
            let mut state = self.inner.lock();
            if state.reason.is_some() {
                return false;
            }
            state.reason = Some(reason.clone());
            self.inner.cancelled.store(true, Ordering::Release);
            std::mem::take(&mut state.handlers)
        };
        // Interrupts first, so a waiter that wakes finds its query already interrupted.
        for (_, handler) in handlers {
            handler(&reason);
        }
        self.inner.changed.notify_all();
        true
    }

    /// Runs `handler` when the token is cancelled (at once if it already is), e.g. to interrupt
    /// a running query. Dropping the returned guard unregisters it.
    pub fn on_cancel(&self, handler: impl FnOnce() + Send + 'static) -> OnCancel {
        self.register(Box::new(move |_| handler()))
    }

    fn register(&self, handler: Handler) -> OnCancel {
        let mut state = self.inner.lock();
        if let Some(reason) = state.reason.clone() {
            drop(state);
            handler(&reason);
            return OnCancel { token: Weak::new(), id: 0 };
        }
        state.next_id += 1;
        let id = state.next_id;
        state.handlers.push((id, handler));
        OnCancel { token: Arc::downgrade(&self.inner), id }
    }

    /// A token cancelled whenever this one is, with the same reason.
    pub fn child(&self) -> CancelToken {
        let child = CancelToken::new();
        let weak = Arc::downgrade(&child.inner);
        let link = self.register(Box::new(move |reason| {
            if let Some(inner) = weak.upgrade() {
                CancelToken { inner }.cancel(reason);
            }
        }));
        *child.inner.parent_link.lock().unwrap_or_else(PoisonError::into_inner) = Some(link);
        child
    }

    /// Sleeps up to `timeout`, waking early on cancellation; returns whether it is cancelled.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let deadline = Instant::now().checked_add(timeout);
        let mut state = self.inner.lock();
        while state.reason.is_none() {
            let left = match deadline {
                Some(deadline) => deadline.saturating_duration_since(Instant::now()),
                None => Duration::from_secs(3600),
            };
            if left.is_zero() {
                break;
            }
            state = self.inner.changed.wait_timeout(state, left).unwrap_or_else(PoisonError::into_inner).0;
        }
        state.reason.is_some()
    }
}

impl fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelToken").field("reason", &self.reason()).finish()
    }
}

/// A registered cancel handler; dropping it unregisters the handler.
#[must_use = "dropping the guard unregisters the handler at once"]
pub struct OnCancel {
    token: Weak<Inner>,
    id: u64,
}

impl Drop for OnCancel {
    fn drop(&mut self) {
        if let Some(inner) = self.token.upgrade() {
            inner.lock().handlers.retain(|(id, _)| *id != self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn cancels_children_runs_handlers_once_and_keeps_the_first_reason() {
        let run = CancelToken::new();
        let task = run.child();
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let _guard = task.on_cancel(move || {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        assert!(run.cancel("interrupted"));
        assert!(!run.cancel("again"));
        assert!(task.is_cancelled());
        assert_eq!(task.reason().as_deref(), Some("interrupted"));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(task.wait_timeout(Duration::from_secs(60)));
    }

    #[test]
    fn a_child_is_cancelled_alone_and_a_dropped_guard_never_fires() {
        let run = CancelToken::new();
        let task = run.child();
        let fired = Arc::new(AtomicBool::new(false));
        let flag = fired.clone();
        drop(run.on_cancel(move || flag.store(true, Ordering::SeqCst)));
        task.cancel("timed out");
        assert!(!run.is_cancelled());
        run.cancel("stop");
        assert!(!fired.load(Ordering::SeqCst));
        assert_eq!(task.reason().as_deref(), Some("timed out"));
        // Registering on a cancelled token runs the handler at once.
        let late = Arc::new(AtomicBool::new(false));
        let flag = late.clone();
        let _guard = run.on_cancel(move || flag.store(true, Ordering::SeqCst));
        assert!(late.load(Ordering::SeqCst));
    }
}
