//! Output for people: durations, sizes, ages, aligned columns, and colours
//! (only on a terminal, and never when `NO_COLOR` is set).

use std::io::IsTerminal;
use std::time::{SystemTime, UNIX_EPOCH};

use agent_tasks::TaskStatus;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A duration: `850 ms`, `12.3 s`, `4 min 5 s`, `2 h 3 min`, `3 d 4 h`.
pub fn duration(ms: u64) -> String {
    const MIN: u64 = 60_000;
    const HOUR: u64 = 60 * MIN;
    const DAY: u64 = 24 * HOUR;
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else if ms < HOUR {
        format!("{} min {} s", ms / MIN, (ms % MIN) / 1000)
    } else if ms < DAY {
        format!("{} h {} min", ms / HOUR, (ms % HOUR) / MIN)
    } else {
        format!("{} d {} h", ms / DAY, (ms % DAY) / HOUR)
    }
}

/// How long ago a moment was: `12.3 s ago`.
pub fn ago(at_ms: u64) -> String {
    format!("{} ago", duration(now_ms().saturating_sub(at_ms)))
}

/// A size: `512 B`, `1.5 KiB`, `12.0 MiB`.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Parses a duration for `--max-age`: `90`, `90s`, `30m`, `12h`, `7d`.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (e.g. 90s, 30m, 12h, 7d)"))?;
    let factor = match unit.trim() {
        "" | "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        "d" => 86400.0,
        other => return Err(format!("unknown unit `{other}` in `{text}` (s, m, h, d)")),
    };
    std::time::Duration::try_from_secs_f64(value * factor)
        .map_err(|_| format!("`{text}` is out of range"))
}

/// Colours for a terminal, or none.
#[derive(Clone, Copy, Debug)]
pub struct Style {
    on: bool,
}

impl Style {
    /// Colours when stdout is a terminal and `NO_COLOR` is unset or empty.
    pub fn for_stdout() -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Style {
            on: !no_color && std::io::stdout().is_terminal(),
        }
    }

    fn paint(self, code: &str, text: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    /// Bold, for headers.
    pub fn bold(self, text: &str) -> String {
        self.paint("1", text)
    }

    /// Dim, for notes.
    pub fn dim(self, text: &str) -> String {
        self.paint("2", text)
    }

    /// A status in its colour.
    pub fn status(self, status: TaskStatus, text: &str) -> String {
        let code = match status {
            TaskStatus::Running | TaskStatus::Queued => "36",
            TaskStatus::Completed => "32",
            TaskStatus::Failed | TaskStatus::Lost => "31",
            TaskStatus::Cancelled | TaskStatus::TimedOut => "33",
        };
        self.paint(code, text)
    }
}

/// A table whose columns are padded to their widest cell. Cells are plain
/// text; a colour function is applied per cell after the padding, so
/// escape codes never count toward a width.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<(String, Option<TaskStatus>)>>,
}

impl Table {
    /// A table with these column titles.
    pub fn new(header: &[&str]) -> Self {
        Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; a cell with a status is painted in that status's colour.
    pub fn row(&mut self, cells: Vec<(String, Option<TaskStatus>)>) {
        self.rows.push(cells);
    }

    /// The table as lines (the last column is not padded).
    pub fn render(&self, style: Style) -> String {
        let columns = self.header.len();
        let mut widths = vec![0usize; columns];
        for (i, h) in self.header.iter().enumerate() {
            widths[i] = h.chars().count();
        }
        for row in &self.rows {
            for (i, (cell, _)) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let header: Vec<String> = self
            .header
            .iter()
            .enumerate()
            .map(|(i, h)| pad(h, widths[i], i + 1 == columns))
            .collect();
        out.push_str(&style.bold(header.join("  ").trim_end()));
        out.push('\n');
        for row in &self.rows {
            let cells: Vec<String> = row
                .iter()
                .enumerate()
                .take(columns)
                .map(|(i, (cell, status))| {
                    let padded = pad(cell, widths[i], i + 1 == columns);
                    match status {
                        Some(s) => {
                            let trimmed = padded.trim_end();
                            let spaces = &padded[trimmed.len()..];
                            format!("{}{spaces}", style.status(*s, trimmed))
                        }
                        None => padded,
                    }
                })
                .collect();
            out.push_str(cells.join("  ").trim_end());
            out.push('\n');
        }
        out
    }
}

fn pad(text: &str, width: usize, last: bool) -> String {
    if last {
        return text.to_string();
    }
    let len = text.chars().count();
    format!("{text}{}", " ".repeat(width.saturating_sub(len)))
}

/// The first line of `text`, at most `max` characters (with `…` when cut).
pub fn one_line(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or("");
    if line.chars().count() > max {
        let cut: String = line.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    } else if text.lines().nth(1).is_some() {
        format!("{line} …")
    } else {
        line.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes_read_well() {
        assert_eq!(duration(850), "850 ms");
        assert_eq!(duration(12_345), "12.3 s");
        assert_eq!(duration(245_000), "4 min 5 s");
        assert_eq!(duration(2 * 3_600_000 + 180_000), "2 h 3 min");
        assert_eq!(size(512), "512 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(12 * 1024 * 1024), "12.0 MiB");
    }

    #[test]
    fn max_age_parses_units() {
        assert_eq!(parse_duration("90").map(|d| d.as_secs()), Ok(90));
        assert_eq!(parse_duration("30m").map(|d| d.as_secs()), Ok(1800));
        assert_eq!(parse_duration("7d").map(|d| d.as_secs()), Ok(604_800));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("3w").is_err());
    }
}
