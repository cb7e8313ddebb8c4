//! The event stream, in two forms. [`NativeEventStream`] is pulled
//! (`next()`, the wrapper's async iterator): a pending `next()` is a pending
//! Promise and keeps Node alive, as awaiting any stream does; `close()`
//! settles it with null. [`NativeEventListener`] pushes every item to a
//! callback through a *weak* thread-safe function, which never keeps Node
//! alive, one item at a time (a callback that falls behind is told how many
//! events it missed, as a pull subscriber is).

use std::sync::Arc;

use agent_tasks::EventSubscription;
use napi::bindgen_prelude::PromiseRaw;
use napi::threadsafe_function::ThreadsafeFunction;
use napi::{Env, Status};
use napi_derive::napi;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use crate::values::Js;

/// An item of the event stream, as JS gets it.
type Item = Js<agent_tasks::EventItem>;

/// A live stream of a manager's events, from the moment it was made.
/// Internal: use `manager.events()`.
#[napi]
pub struct NativeEventStream {
    subscription: Arc<Mutex<EventSubscription>>,
    closed: CancellationToken,
}

impl NativeEventStream {
    pub(crate) fn new(subscription: EventSubscription) -> Self {
        NativeEventStream {
            subscription: Arc::new(Mutex::new(subscription)),
            closed: CancellationToken::new(),
        }
    }
}

#[napi]
impl NativeEventStream {
    /// The next item, or null once the stream is closed (or the manager is
    /// gone).
    #[napi(ts_return_type = "Promise<EventItem | null>")]
    pub fn next<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, Option<Item>>> {
        let subscription = self.subscription.clone();
        let closed = self.closed.clone();
        env.spawn_future(async move {
            tokio::select! {
                biased;
                _ = closed.cancelled() => Ok(None),
                item = async { subscription.lock().await.recv().await } => Ok(item.map(Js)),
            }
        })
    }

    /// The next item if one is waiting, without waiting.
    #[napi(ts_return_type = "EventItem | null")]
    pub fn try_next(&self) -> Option<Item> {
        if self.closed.is_cancelled() {
            return None;
        }
        let mut subscription = self.subscription.try_lock().ok()?;
        subscription.try_recv().map(Js)
    }

    /// Ends the stream: pending and later `next()` calls give null.
    #[napi]
    pub fn close(&self) {
        self.closed.cancel();
    }
}

/// The callback an event listener calls; weak, so it never keeps Node alive.
pub(crate) type EventCallback = ThreadsafeFunction<Item, (), Item, Status, false, true>;

/// A callback subscribed to a manager's events. Internal: use
/// `manager.onEvent()`.
#[napi]
pub struct NativeEventListener {
    closed: CancellationToken,
}

impl NativeEventListener {
    /// Starts pumping `subscription` into `callback` on `runtime`.
    pub(crate) fn start(
        runtime: &tokio::runtime::Handle,
        mut subscription: EventSubscription,
        callback: EventCallback,
    ) -> Self {
        let closed = CancellationToken::new();
        let stop = closed.clone();
        runtime.spawn(async move {
            loop {
                let item = tokio::select! {
                    item = subscription.recv() => item,
                    _ = stop.cancelled() => None,
                };
                let Some(item) = item else { break };
                // One item in flight: the next is sent once JS has taken this
                // one, so a slow callback leaves items in the bounded event
                // bus, which reports `lagged` past its capacity, instead of
                // growing an unbounded queue.
                if callback.call_async(Js(item)).await.is_err() {
                    break; // the environment is closing
                }
            }
        });
        NativeEventListener { closed }
    }
}

#[napi]
impl NativeEventListener {
    /// Stops the callback. A call already queued on the JS thread may still
    /// arrive; the wrapper ignores calls after its own close.
    #[napi]
    pub fn close(&self) {
        self.closed.cancel();
    }
}
