//! `task_wait`: waits, bounded, until a task ends or a readiness condition
//! (a regex over its lines, a port) holds.

use super::*;

impl ToolBox {
    pub(super) async fn wait(&self, args: Value) -> ToolResult {
        let args: WaitArgs = parse(args)?;
        self.task(&args.task_id)?;
        let timeout = seconds(
            "timeout",
            args.timeout,
            self.config.wait_timeout,
            self.config.max_wait_timeout,
        )?;
        if let Some(until) = &args.until {
            let until =
                WaitUntil::parse(until, args.cursor.unwrap_or(0)).map_err(ToolError::core)?;
            let outcome = self
                .manager
                .wait_for(&args.task_id, until, Some(timeout))
                .await
                .map_err(ToolError::core)?;
            let info = self.task(&args.task_id)?;
            let mut meta = self.header(&info);
            meta.push(self.readiness_line(&outcome));
            return self.answer_with_output(
                &args.task_id,
                meta,
                |end, _| json!({ "outcome": outcome, "info": info, "next_cursor": end }),
            );
        }
        let outcome = self
            .manager
            .collect(&args.task_id, Some(timeout))
            .await
            .map_err(ToolError::core)?;
        let info = self.task(&args.task_id)?;
        let mut meta = self.header(&info);
        let ended = matches!(outcome, CollectOutcome::Finished(_));
        if ended {
            self.told_end(&args.task_id, outcome.result(), &mut meta);
        } else {
            meta.push(format!(
                "note: still running after waiting {}",
                duration(crate::util::millis(timeout))
            ));
        }
        self.answer_with_output(&args.task_id, meta, |end, _| {
            json!({ "ended": ended, "info": info, "result": outcome.result(), "next_cursor": end })
        })
    }
}
