//! What the grader shows while it works (on stderr), and whether its report may use color.
use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// How to talk to the person at the terminal.
#[derive(Debug, Clone, Copy)]
pub struct Ui {
    /// Spinner and progress bar on stderr (a terminal, not CI); otherwise plain lines.
    pub interactive: bool,
    /// ANSI colors in the report on stdout.
    pub color: bool,
}

impl Ui {
    /// Looks at the terminals and at `CI`, `NO_COLOR` and `TERM`.
    pub fn detect() -> Ui {
        let set =
            |var: &str| std::env::var(var).is_ok_and(|v| !v.is_empty() && v != "0" && v != "false");
        let dumb = std::env::var("TERM").is_ok_and(|t| t == "dumb");
        Ui {
            interactive: std::io::stderr().is_terminal() && !set("CI") && !dumb,
            color: std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && !dumb,
        }
    }

    /// A spinner with `message`, or a plain line when not interactive.
    pub fn spinner(&self, message: &str) -> ProgressBar {
        if !self.interactive {
            eprintln!("{message}");
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new_spinner().with_message(message.to_owned());
        bar.set_style(ProgressStyle::with_template("{spinner} {msg}").expect("valid template"));
        bar.enable_steady_tick(Duration::from_millis(100));
        bar
    }

    /// A progress bar over `len` steps, or a plain line when not interactive.
    pub fn bar(&self, len: usize, message: &str) -> ProgressBar {
        if !self.interactive {
            eprintln!("{message}");
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(len as u64).with_message(message.to_owned());
        bar.set_style(
            ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len}")
                .expect("valid template")
                .progress_chars("#>-"),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    }

    /// Wraps `text` in an ANSI style when colors are on.
    pub fn paint(&self, style: Style, text: &str) -> String {
        if !self.color {
            return text.to_owned();
        }
        let code = match style {
            Style::Green => "32",
            Style::Red => "31",
            Style::Yellow => "33",
            Style::Dim => "2",
            Style::Bold => "1",
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    }
}

/// `text` with its control characters made visible, for the terminal: every C0 control but
/// newline and tab, DEL, the C1 controls (U+0080..U+009F) and the bidirectional marks,
/// embeddings, overrides and isolates become escapes (`\x1b`, `\r`, `\u{202e}`), so text a
/// test printed cannot move the cursor, clear the screen, set the title, ring the bell or
/// reorder what is shown. Everything else, other Unicode included, is kept.
pub fn visible(text: &str) -> Cow<'_, str> {
    if !text.chars().any(hidden) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '\r' => out.push_str("\\r"),
            c if hidden(c) && (c as u32) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if hidden(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// True for the characters [`visible`] replaces.
fn hidden(c: char) -> bool {
    matches!(c,
        '\0'..='\x08' | '\x0b'..='\x1f' | '\x7f'..='\u{9f}'
        | '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// The few styles the report uses.
#[derive(Debug, Clone, Copy)]
pub enum Style {
    /// Done, caught.
    Green,
    /// Failing, missed.
    Red,
    /// Timed out, crashed.
    Yellow,
    /// Not started, test messages.
    Dim,
    /// Headings.
    Bold,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_become_escapes() {
        assert_eq!(
            visible("plain\ttext\nü 进程 \u{fffd}"),
            "plain\ttext\nü 进程 \u{fffd}"
        );
        assert!(matches!(visible("plain"), Cow::Borrowed(_)));
        assert_eq!(visible("\x1b[31mred"), "\\x1b[31mred");
        assert_eq!(visible("a\rb\x07\x08\0\x7f"), "a\\rb\\x07\\x08\\x00\\x7f");
        assert_eq!(visible("\u{85}\u{9b}2J"), "\\u{85}\\u{9b}2J");
        assert_eq!(
            visible("\u{202a}\u{202e}\u{2066}\u{2069}\u{200f}"),
            "\\u{202a}\\u{202e}\\u{2066}\\u{2069}\\u{200f}"
        );
    }
}
