//! `task_cancel`: stops a task, with the model's reason.

use super::*;

impl ToolBox {
    pub(super) async fn cancel(&self, args: Value) -> ToolResult {
        let args: CancelArgs = parse(args)?;
        let before = self.task(&args.task_id)?;
        let reason = CancelReason::user(args.reason.unwrap_or_default());
        let info = self
            .manager
            .cancel(&args.task_id, reason)
            .await
            .map_err(ToolError::core)?;
        let mut meta = task_header(&info, self.caps());
        if before.status.is_terminal() {
            meta.push("note: it had already ended; nothing was changed".to_string());
        }
        Ok(Answer {
            draft: Draft::lines(meta),
            json: json!({ "info": info }),
        })
    }
}
