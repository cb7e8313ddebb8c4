//! `task_list`: the caller's running and recent tasks, newest first, within
//! the budget.

use super::*;

impl ToolBox {
    pub(super) fn list(&self, args: Value) -> ToolResult {
        let args: ListArgs = parse(args)?;
        let mut filter = ListFilter::owner(self.owner.clone());
        filter.active_only = args.running_only.unwrap_or(false);
        let tasks = self.manager.list(&filter);
        let running = tasks.iter().filter(|t| !t.status.is_terminal()).count();
        if tasks.is_empty() {
            return Ok(Answer {
                draft: Draft::lines(vec!["no tasks".to_string()]),
                json: json!({ "tasks": tasks }),
            });
        }
        let header = format!("{} tasks ({running} running):", tasks.len());
        // The latest tasks, as many as fit (at most 50), oldest first.
        let mut room = self
            .config
            .text_budget
            .saturating_sub(header.len() + LIST_MORE_LINE);
        let mut lines = Vec::new();
        for t in tasks.iter().rev().take(LIST_MAX) {
            let exit = t
                .exit
                .and_then(|e| e.code)
                .map(|c| format!(" exit {c}"))
                .unwrap_or_default();
            let line = format!(
                "{}  {}{}  {}  {}",
                t.id,
                t.status,
                exit,
                duration(t.duration_ms),
                field(&t.description, LIST_DESCRIPTION_CAP)
            );
            if line.len() + 1 > room {
                break;
            }
            room -= line.len() + 1;
            lines.push(line);
        }
        let mut meta = vec![header];
        if lines.len() < tasks.len() {
            meta.push(format!(
                "(the {} latest shown; {} older not shown)",
                lines.len(),
                tasks.len() - lines.len()
            ));
        }
        meta.extend(lines.into_iter().rev());
        Ok(Answer {
            draft: Draft::lines(meta),
            json: json!({ "tasks": tasks }),
        })
    }
}
