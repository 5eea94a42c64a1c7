//! Isolated tests whose output is part of the lesson.
//!
//! [`crate::isolated`] shows what the body printed only when the test fails. A test that
//! demonstrates something it must not assert (how many updates a race lost this time, say)
//! prints it from the body, and [`isolated_showing`] passes that output on to the test's own
//! stdout when the test passes, where `cargo test -- --nocapture` (or libtest's report of a
//! failure elsewhere in the binary) shows it. A failing test reports exactly as `isolated`.
use crate::Isolation;

/// [`crate::isolated`], and on a pass, what the body printed is printed by the test itself.
pub fn isolated_showing(body: impl FnOnce()) {
    let report = Isolation::new().report(body);
    if report.passed() {
        print!("{}", report.output);
        return;
    }
    let output = if report.output.is_empty() {
        String::new()
    } else {
        format!(
            "\n--- what the test's processes printed ---\n{}",
            report.output
        )
    };
    panic!(
        "{}\n{}{output}",
        oskata_protocol::verdict_line(report.verdict),
        report.message
    );
}
