//! `task_output`: a non-blocking look at a task: status, then output from a
//! cursor (or the end), optionally filtered by a regex, pages clean of escape
//! sequences at both ends.

use super::*;

impl ToolBox {
    pub(super) fn output(&self, args: Value) -> ToolResult {
        let args: OutputArgs = parse(args)?;
        let info = self.task(&args.task_id)?;
        let caps = self.caps();
        let filter = match &args.filter {
            Some(pattern) => {
                Some(Regex::new(pattern).map_err(|e| ToolError::argument("filter", e))?)
            }
            None => None,
        };
        let max_bytes = args.max_bytes.map_or(self.config.output_bytes, |m| {
            m.min(crate::MAX_POLL_BYTES as u64) as usize
        });
        if max_bytes == 0 {
            return Err(ToolError::argument("max_bytes", "must be at least 1"));
        }
        let total = info.output.total_bytes;
        let read_bytes = if filter.is_some() {
            max_bytes.max(FILTER_SCAN_BYTES)
        } else {
            max_bytes
        };
        let cursor = match args.cursor {
            Some(c) if c > total => {
                return Err(ToolError::argument(
                    "cursor",
                    format!("{c} is past the end of the output ({total} bytes)"),
                ))
            }
            Some(c) => c,
            None => total.saturating_sub(read_bytes as u64),
        };
        let page = self.text_page(&args.task_id, cursor, read_bytes, args.cursor.is_none())?;
        let mut meta = self.header(&page.info);
        if page.info.status.is_terminal() {
            let result = self
                .manager
                .result(&args.task_id)
                .map_err(ToolError::core)?;
            self.told_end(&args.task_id, result.as_ref(), &mut meta);
        }
        let mut shown = page.data;
        let mut filter_note = None;
        if let Some(re) = &filter {
            let text = String::from_utf8_lossy(&shown).into_owned();
            let lines: Vec<&str> = text.lines().collect();
            let kept: Vec<&str> = lines.iter().copied().filter(|l| re.is_match(l)).collect();
            filter_note = Some(format!(
                "filter: {} ({} of {} lines matched)",
                field(re.as_str(), caps.field),
                kept.len(),
                lines.len()
            ));
            shown = kept.join("\n").into_bytes();
        }
        meta.push(format!(
            "output: bytes {}..{} of {} (next cursor: {})",
            page.cursor, page.next_cursor, page.info.output.total_bytes, page.next_cursor
        ));
        let at = meta.len();
        if let Some(note) = filter_note {
            meta.push(note);
        }
        if !page.eof && page.next_cursor < page.info.output.total_bytes {
            meta.push(format!("more: call again with cursor {}", page.next_cursor));
        }
        Ok(Answer {
            draft: Draft {
                meta,
                body: Some(Body {
                    label: "output",
                    data: shown,
                    omitted: page.omitted_bytes,
                    omitted_line_at: at,
                }),
            },
            json: json!({
                "info": page.info,
                "cursor": page.cursor,
                "next_cursor": page.next_cursor,
                "bytes_omitted": page.omitted_bytes,
                "eof": page.eof,
            }),
        })
    }
}
