//! `task_send`: a steering message, input for a command, typed keys, and the
//! end of input.

use super::*;

impl ToolBox {
    pub(super) fn send(&self, args: Value) -> ToolResult {
        let args: SendArgs = parse(args)?;
        let keys = match &args.keys {
            Some(names) => Key::parse_all(names).map_err(ToolError::core)?,
            None => Vec::new(),
        };
        let mut bytes = args.message.clone().unwrap_or_default().into_bytes();
        bytes.extend(Key::encode(&keys).map_err(ToolError::core)?);
        if args.message.is_none() && keys.is_empty() && !args.eof {
            return Err(ToolError::new(
                "INVALID_ARGUMENT",
                "message: give a message, keys, eof=true, or a mix of them",
            ));
        }
        let info = self.task(&args.task_id)?;
        let sent = bytes.len();
        let typed = args.message.is_some() || !keys.is_empty();
        for message in Message::input(typed.then_some(bytes), args.eof).map_err(ToolError::core)? {
            self.manager
                .send(&args.task_id, message)
                .map_err(ToolError::core)?;
        }
        let mut meta = task_header(&info, self.caps());
        let mut line = if keys.is_empty() {
            format!("sent: {sent} bytes")
        } else {
            let names: Vec<String> = keys.iter().map(ToString::to_string).collect();
            format!("sent: {sent} bytes (keys: {})", names.join(" "))
        };
        if args.eof {
            line.push_str(", then the end of input (closed)");
        }
        meta.push(line);
        Ok(Answer {
            draft: Draft::lines(meta),
            json: json!({ "info": info, "sent_bytes": sent, "eof": args.eof }),
        })
    }
}
