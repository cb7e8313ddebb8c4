//! The gate every process spawn of a manager passes, so a host that is
//! exiting can stop its tasks' processes synchronously and be sure none
//! starts behind its back: [`SpawnGate::close`] refuses new spawns and
//! waits (on a condition, bounded) until the spawns under way have
//! recorded their pid, after which every process of the manager is known.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::util::lock;

#[derive(Debug, Default)]
struct GateState {
    closed: bool,
    /// Spawns that passed the gate and have not recorded their pid yet.
    spawning: usize,
}

/// See the module docs.
#[derive(Debug, Default)]
pub(crate) struct SpawnGate {
    state: Mutex<GateState>,
    idle: Condvar,
}

/// Held by a spawn from before the process starts until its pid is
/// recorded (or the spawn failed).
#[derive(Debug)]
pub(crate) struct SpawnTicket(Arc<SpawnGate>);

impl SpawnGate {
    /// A ticket to spawn, or `None` once the gate is closed.
    pub(crate) fn enter(self: &Arc<Self>) -> Option<SpawnTicket> {
        let mut state = lock(&self.state);
        if state.closed {
            return None;
        }
        state.spawning += 1;
        Some(SpawnTicket(self.clone()))
    }

    /// Refuses new spawns from now on and waits, at most `wait`, until the
    /// spawns under way are done; true if they are.
    pub(crate) fn close(&self, wait: Duration) -> bool {
        let deadline = Instant::now().checked_add(wait);
        let mut state = lock(&self.state);
        state.closed = true;
        while state.spawning > 0 {
            let left = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()),
                None => Duration::from_secs(3600),
            };
            if left.is_zero() {
                return false;
            }
            state = match self.idle.wait_timeout(state, left) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        true
    }
}

impl Drop for SpawnTicket {
    fn drop(&mut self) {
        let mut state = lock(&self.0.state);
        state.spawning = state.spawning.saturating_sub(1);
        // Only a closed gate is waited on (a notify is a system call).
        if state.spawning == 0 && state.closed {
            self.0.idle.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_gate_refuses_and_waits_for_the_spawns_under_way() {
        let gate = Arc::new(SpawnGate::default());
        let ticket = gate.enter().expect("open");
        let (tx, rx) = std::sync::mpsc::channel();
        let closer = {
            let gate = gate.clone();
            std::thread::spawn(move || {
                let done = gate.close(Duration::from_secs(60));
                let _ = tx.send(done);
            })
        };
        // The closer waits while the ticket is held.
        assert!(rx.recv_timeout(Duration::from_millis(50)).is_err());
        drop(ticket);
        assert_eq!(rx.recv_timeout(Duration::from_secs(60)), Ok(true));
        closer.join().expect("closer");
        assert!(gate.enter().is_none());
    }

    #[test]
    fn a_close_gives_up_after_its_wait() {
        let gate = Arc::new(SpawnGate::default());
        let _ticket = gate.enter().expect("open");
        assert!(!gate.close(Duration::from_millis(1)));
        assert!(gate.enter().is_none());
    }
}
