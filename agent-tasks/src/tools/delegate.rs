//! `task_delegate`: starts one subagent per argument object, several in one
//! call, in the foreground up to a bounded wait or in the background.

use super::*;

impl ToolBox {
    /// `task_delegate`: starts one subagent per argument object; in the
    /// foreground waits (all at once) up to the timeout, after which the
    /// ones still working are in the background (the core's auto-detach);
    /// answers per subagent: its header, and its result once it ended.
    pub(super) async fn delegate(&self, args: Value) -> ToolResult {
        let args: DelegateArgs = parse(args)?;
        let Some(agent) = self.agents.iter().find(|a| a.name() == args.agent) else {
            let names: Vec<&str> = self.agents.iter().map(Agent::name).collect();
            return Err(ToolError::argument(
                "agent",
                format!(
                    "there is no agent `{}`; the agents are: {}",
                    cap(&args.agent, NAME_CAP),
                    names.join(", ")
                ),
            ));
        };
        if args.tasks.is_empty() || args.tasks.len() > MAX_DELEGATIONS {
            return Err(ToolError::argument(
                "tasks",
                format!(
                    "give 1 to {MAX_DELEGATIONS} argument objects, not {}",
                    args.tasks.len()
                ),
            ));
        }
        for (i, task_args) in args.tasks.iter().enumerate() {
            agent
                .check_arguments(i, task_args)
                .map_err(ToolError::core)?;
        }
        // A persistent (ACP) agent never ends by itself: a foreground wait
        // could only time out, so it always starts in the background.
        let background = args.background.unwrap_or(false) || agent.is_persistent();
        let timeout = seconds(
            "timeout",
            args.timeout,
            self.config.run_timeout,
            self.config.max_run_timeout,
        )?;
        let mut started = Vec::new();
        let mut meta = Vec::new();
        let mut items = Vec::new();
        for task_args in &args.tasks {
            let options = if background {
                SpawnOptions::background()
            } else {
                SpawnOptions::foreground()
                    .timeout(timeout)
                    .on_timeout(OnTimeout::Detach)
            }
            .owner(self.owner.clone())
            .source(crate::info::TaskSource::new(
                agent.name(),
                task_args.clone(),
            ));
            let options = if agent.is_persistent() {
                // It runs across turns until stopped: no task timeout.
                options.no_timeout()
            } else {
                options
            };
            match self
                .manager
                .spawn_boxed(agent.task(task_args.clone()), options)
            {
                Ok(handle) => started.push(handle),
                Err(e) => {
                    // The others still start; this one says why it did not.
                    meta.push(format!("error: {}", cap(&e.to_string(), self.caps().field)));
                    items.push(json!({ "error": { "code": e.code(), "message": e.to_string() } }));
                }
            }
        }
        if started.is_empty() {
            return Err(ToolError::new(
                "CAPACITY_EXCEEDED",
                format!("no subagent started: {}", meta.join("; ")),
            ));
        }
        for handle in started {
            let id = handle.id().to_string();
            if !meta.is_empty() {
                meta.push(String::new());
            }
            let outcome = if background {
                None
            } else {
                Some(handle.wait_foreground().await)
            };
            let info = self.manager.info(&id).map_err(ToolError::core)?;
            meta.extend(task_header(&info, self.caps()));
            let result = match outcome {
                Some(ForegroundOutcome::Finished(result)) => {
                    self.told_end(&id, Some(&result), &mut meta);
                    Some(result)
                }
                Some(ForegroundOutcome::Detached(_)) => {
                    meta.push(format!(
                        "note: still working after {}, so it moved to the background; you will be notified when it ends",
                        duration(crate::util::millis(timeout))
                    ));
                    None
                }
                None if agent.is_persistent() => {
                    meta.push(
                        "note: a persistent ACP agent, started in the background: you will be notified when each of its turns ends; task_send gives it a follow-up prompt, task_cancel stops it"
                            .to_string(),
                    );
                    None
                }
                None => {
                    meta.push(
                        "note: started in the background; you will be notified when it ends"
                            .to_string(),
                    );
                    None
                }
            };
            items.push(json!({ "task_id": id, "info": info, "result": result }));
        }
        Ok(Answer {
            draft: Draft::lines(meta),
            json: json!({ "tasks": items }),
        })
    }
}
