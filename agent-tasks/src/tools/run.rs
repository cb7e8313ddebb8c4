//! `task_run`: runs a shell command for the model, in the foreground up to a
//! bounded wait (then in the background) or in the background at once.

use super::*;

impl ToolBox {
    pub(super) async fn run(&self, args: Value) -> ToolResult {
        let args: RunArgs = parse(args)?;
        let mut task = shell_command("command", args.command.clone())
            .map_err(ToolError::core)?
            .interactive(args.stdin.unwrap_or(false));
        if args.tty.unwrap_or(false) {
            let (cols, rows) = self.config.tty_size;
            task = task.pty(cols, rows);
        }
        let background = args.background.unwrap_or(false);
        if let Some(cwd) = args
            .cwd
            .as_ref()
            .map(std::path::PathBuf::from)
            .or_else(|| self.config.cwd.clone())
        {
            task = task.cwd(cwd);
        }
        for (k, v) in &self.config.env {
            task = task.env(k, v);
        }
        // The model may lower the host's limits, never raise them.
        let mut limits_lines = Vec::new();
        if let Some(asked) = &args.limits {
            let asked = crate::limits::Limits {
                memory: asked
                    .memory
                    .as_deref()
                    .map(|m| crate::limits::parse_size("limits.memory", m))
                    .transpose()
                    .map_err(ToolError::core)?,
                pids: asked.pids,
                cpu: asked.cpu,
            };
            asked.check().map_err(ToolError::core)?;
            let (limits, lowered) = asked.within(&self.manager.default_limits());
            limits_lines.push(format!("limits: {}", limits.text()));
            limits_lines.extend(lowered.into_iter().map(|note| format!("note: {note}")));
            task = task.limits(limits);
        }
        let mut options = if background {
            SpawnOptions::background()
        } else {
            SpawnOptions::foreground().on_timeout(self.config.on_timeout)
        }
        .owner(self.owner.clone());
        let timeout = seconds(
            "timeout",
            args.timeout,
            self.config.run_timeout,
            self.config.max_run_timeout,
        )?;
        if !background || args.timeout.is_some() {
            options = options.timeout(timeout);
        }
        if let Some(description) = args.description.filter(|d| !d.trim().is_empty()) {
            options = options.description(description);
        }
        let until = match &args.wait_until {
            Some(_) if !background => return Err(ToolError::new(
                "INVALID_ARGUMENT",
                "wait_until: only with background=true (a foreground command is waited for anyway)",
            )),
            Some(text) => Some(WaitUntil::parse(text, 0).map_err(ToolError::core)?),
            None => None,
        };
        // A command on a terminal waits for typing: say how to type.
        let tty_line = args.tty.unwrap_or(false).then(|| {
            let (cols, rows) = self.config.tty_size;
            format!(
                "terminal: {cols}x{rows}; task_send types into it (a message, and keys such as [\"enter\"] or [\"ctrl+c\"])"
            )
        });
        let handle = self.manager.spawn(task, options).map_err(ToolError::core)?;
        let id = handle.id().to_string();
        if background {
            let ready = match until {
                Some(until) => Some(
                    self.manager
                        .wait_for(&id, until, Some(self.config.wait_timeout))
                        .await
                        .map_err(ToolError::core)?,
                ),
                None => None,
            };
            let info = self.task(&id)?;
            let mut meta = task_header(&info, self.caps());
            meta.extend(limits_lines.iter().cloned());
            meta.extend(tty_line.clone());
            if let Some(outcome) = &ready {
                meta.push(self.readiness_line(outcome));
            }
            meta.push(format!(
                "hint: it runs in the background; you will be notified when it ends. Use task_output with task_id {id} to check on it."
            ));
            return Ok(Answer {
                draft: Draft::lines(meta),
                json: json!({ "task_id": id, "info": info, "ready": ready }),
            });
        }
        match handle.wait_foreground().await {
            ForegroundOutcome::Finished(result) => {
                let info = self.manager.info(&id).map_err(ToolError::core)?;
                let mut meta = task_header(&info, self.caps());
                meta.extend(limits_lines.iter().cloned());
                self.told_end(&id, Some(&result), &mut meta);
                self.answer_with_output(&id, meta, |end, omitted| {
                    json!({ "task_id": id, "result": result, "next_cursor": end, "bytes_omitted": omitted })
                })
            }
            ForegroundOutcome::Detached(info) => {
                let mut meta = task_header(&info, self.caps());
                meta.extend(limits_lines.iter().cloned());
                meta.extend(tty_line.clone());
                meta.push(format!(
                    "note: still running after {}, so it was moved to the background; it keeps running and you will be notified when it ends",
                    duration(crate::util::millis(timeout))
                ));
                let hint = |end: u64| {
                    format!(
                        "hint: task_output with task_id {id} and cursor {end} shows what comes next; task_wait waits for the end"
                    )
                };
                let reserve = CURSOR_LINE + hint(u64::MAX).len() + 1;
                let (data, omitted, end) = self.read_all(&id, &meta, reserve)?;
                meta.push(format!("output so far: {end} bytes (next cursor: {end})"));
                let at = meta.len();
                meta.push(hint(end));
                Ok(Answer {
                    draft: Draft {
                        meta,
                        body: Some(Body {
                            label: "output so far",
                            data,
                            omitted,
                            omitted_line_at: at,
                        }),
                    },
                    json: json!({ "task_id": id, "info": info, "next_cursor": end, "bytes_omitted": omitted }),
                })
            }
        }
    }
}
