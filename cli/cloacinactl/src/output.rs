//! Printing results: one JSON object for scripts, or lines for people.

use std::io::Write as _;

use serde::Serialize;

/// `println!` that ends the process quietly (exit 0) when stdout is a
/// closed pipe, as in `cloacinactl package inspect x.cloacina | head`.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::write_line(format_args!($($arg)*))
    };
}
pub(crate) use out;

pub fn write_line(line: std::fmt::Arguments<'_>) {
    if let Err(error) = writeln!(std::io::stdout().lock(), "{line}") {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to stdout: {error}");
        std::process::exit(1);
    }
}

/// Prints `value` as one line of JSON.
pub fn json<T: Serialize>(value: &T) {
    match serde_json::to_string(value) {
        Ok(text) => out!("{text}"),
        Err(error) => eprintln!("error: cannot encode result as JSON: {error}"),
    }
}

/// `1536` -> `1.5 KiB`.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A task's log line as `run` and the client commands print it:
/// `[task#attempt] message`, the message made [`printable`].
pub fn task_log_line(task: &str, attempt: &str, message: &str) -> String {
    format!("[{task}#{attempt}] {}", printable(message))
}

/// Text from a plugin (a task's log line), safe for a terminal: control
/// characters (escape sequences, carriage returns, newlines) are shown
/// escaped instead of acting on the operator's terminal.
pub fn printable(text: &str) -> String {
    let mut shown = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            shown.extend(c.escape_default());
        } else {
            shown.push(c);
        }
    }
    shown
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_read_naturally() {
        assert_eq!(super::size(512), "512 B");
        assert_eq!(super::size(1536), "1.5 KiB");
        assert_eq!(super::size(50 << 20), "50.0 MiB");
    }

    #[test]
    fn plugin_text_cannot_drive_the_terminal() {
        assert_eq!(super::printable("fine ünïcode"), "fine ünïcode");
        assert_eq!(super::printable("a\x1b[2Jb\nc\r"), "a\\u{1b}[2Jb\\nc\\r");
    }
}
