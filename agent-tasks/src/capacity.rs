//! Counting of running tasks against the caps: background tasks globally
//! and per owner, and running tasks (foreground or background) per kind.
//! The registry's lock guards both the task map and these counters, so the
//! check and the insert of a spawn are one atomic step.

use std::collections::HashMap;

use crate::error::Error;

#[derive(Debug, Default)]
pub(crate) struct Capacity {
    running: usize,
    per_owner: HashMap<String, usize>,
    /// Running tasks of each kind, wherever they run.
    per_kind: HashMap<String, usize>,
}

impl Capacity {
    /// Refuses if one more background task for `owner` would pass a cap.
    pub(crate) fn check(
        &self,
        owner: &str,
        max_total: Option<usize>,
        max_per_owner: Option<usize>,
    ) -> Result<(), Error> {
        if let Some(limit) = max_total {
            if self.running >= limit {
                return Err(Error::CapacityExceeded {
                    scope: "in total".to_string(),
                    limit,
                    running: self.running,
                });
            }
        }
        if let Some(limit) = max_per_owner {
            let running = self.per_owner.get(owner).copied().unwrap_or(0);
            if running >= limit {
                return Err(Error::CapacityExceeded {
                    scope: format!("for owner `{owner}`"),
                    limit,
                    running,
                });
            }
        }
        Ok(())
    }

    /// Refuses if one more running task of `kind` would pass its cap.
    pub(crate) fn check_kind(&self, kind: &str, limit: Option<usize>) -> Result<(), Error> {
        let Some(limit) = limit else {
            return Ok(());
        };
        let running = self.per_kind.get(kind).copied().unwrap_or(0);
        if running >= limit {
            return Err(Error::CapacityExceeded {
                scope: format!("of kind `{kind}`"),
                limit,
                running,
            });
        }
        Ok(())
    }

    pub(crate) fn add_kind(&mut self, kind: &str) {
        *self.per_kind.entry(kind.to_string()).or_insert(0) += 1;
    }

    pub(crate) fn remove_kind(&mut self, kind: &str) {
        if let Some(n) = self.per_kind.get_mut(kind) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_kind.remove(kind);
            }
        }
    }

    pub(crate) fn add(&mut self, owner: &str) {
        self.running += 1;
        *self.per_owner.entry(owner.to_string()).or_insert(0) += 1;
    }

    pub(crate) fn remove(&mut self, owner: &str) {
        self.running = self.running.saturating_sub(1);
        if let Some(n) = self.per_owner.get_mut(owner) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_owner.remove(owner);
            }
        }
    }
}
