//! Refuses student files that use what no exercise needs and that lets code take over the
//! test binary: attributes that export a symbol under a chosen name (`#[no_mangle]`,
//! `#[export_name]`), place code where it runs before `main` (`#[link_section]`, `#[used]`)
//! or bind an extern item to a chosen symbol (`#[link_name]`); and the ways to hide one from
//! this check (a macro variable made an attribute, another file brought in with `include!`,
//! `#[path]` or `mod name;`, file-level `global_asm!`). The student's code is linked into the
//! test binary, so this cannot stop a deliberate cheat, but it keeps the cheap ones out.
//!
//! A small lexer reads the file the way rustc does where it matters: comments (nested block
//! comments and doc comments included), string, raw string, byte and C string literals, char
//! literals and lifetimes are skipped, so a forbidden word in any of them is fine; attributes
//! may be spread over lines and spaced (`# [ no_mangle ]`), in outer and inner (`#![...]`) form.
use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};

/// How many findings one exercise's refusal lists (with the line saying how many more, it fits
/// in the terminal report's 15 lines).
const SHOWN_FINDINGS: usize = 12;

/// Attribute names that are refused wherever they appear inside an attribute.
const ATTRIBUTES: &[(&str, &str, &str)] = &[
    (
        "no_mangle",
        "",
        "it exports your function under its plain name, which lets it replace functions the \
         test harness relies on (prctl, fork, waitpid, ...). Remove it.",
    ),
    (
        "export_name",
        " = ...",
        "it exports your function or static under a name of your choice, which lets it replace \
         functions the test harness relies on (prctl, fork, waitpid, ...). Remove it.",
    ),
    (
        "link_section",
        " = ...",
        "it puts code or data into a section of your choice, such as .init_array, whose \
         functions run before main and before the test harness. Remove it.",
    ),
    (
        "used",
        "",
        "it keeps a static that nothing uses, which is how a function gets into .init_array \
         to run before main and before the test harness. Remove it.",
    ),
    (
        "link_name",
        " = ...",
        "it binds an extern declaration to a symbol of your choice. Call the function through \
         nix or libc instead.",
    ),
];

/// Names refused even outside an attribute: passed to a macro, each can become one. (`used`
/// and `link_name` are left out: they are plausible variable names, and a macro of the
/// student's own that makes them an attribute is refused for its `#[$...]`.)
const BARE_NAMES: &[&str] = &["no_mangle", "export_name", "link_section"];

const ANOTHER_FILE: &str = "it brings in code from another file, which the grader does not \
    check. Keep all of your code in this file.";

/// One refused construct in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The 1-based line it starts on.
    pub line: usize,
    /// The construct as the student would recognise it, e.g. `#[unsafe(no_mangle)]`.
    pub what: String,
    /// Why it is refused and what to do instead.
    pub why: &'static str,
}

impl Finding {
    /// `<file>:<line>: <what> is not allowed in an exercise: <why>`.
    pub fn message(&self, file: &str) -> String {
        format!(
            "{file}:{}: {} is not allowed in an exercise: {}",
            self.line, self.what, self.why
        )
    }
}

/// The refusal of each exercise of `ids` whose student file (`exercises/<id>.rs` under `root`)
/// uses a refused construct: id → one line per finding.
pub fn refusals(root: &Path, ids: &[&str]) -> Result<BTreeMap<String, String>> {
    let mut refused = BTreeMap::new();
    for id in ids {
        let file = format!("exercises/{id}.rs");
        let bytes =
            std::fs::read(root.join(&file)).with_context(|| format!("cannot read {file}"))?;
        let findings = scan(&String::from_utf8_lossy(&bytes));
        if !findings.is_empty() {
            refused.insert((*id).to_owned(), refusal(&file, &findings));
        }
    }
    Ok(refused)
}

/// The lines of a refusal: each finding's message, at most [`SHOWN_FINDINGS`] of them.
fn refusal(file: &str, findings: &[Finding]) -> String {
    let mut lines: Vec<String> = findings
        .iter()
        .take(SHOWN_FINDINGS)
        .map(|f| f.message(file))
        .collect();
    if findings.len() > SHOWN_FINDINGS {
        lines.push(format!(
            "[... {} more like these ...]",
            findings.len() - SHOWN_FINDINGS
        ));
    }
    lines.join("\n")
}

/// Every refused construct in `source`, in file order.
pub fn scan(source: &str) -> Vec<Finding> {
    let toks = Lexer::new(source).tokens();
    let mut findings = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let line = toks[i].line;
        let at = |k: usize| toks.get(i + k).map(|t| &t.tok);
        match &toks[i].tok {
            Tok::Punct('#') => {
                let inner = at(1) == Some(&Tok::Punct('!'));
                let open = if inner { 2 } else { 1 };
                if at(open) == Some(&Tok::Punct('[')) {
                    let end = closing(&toks, i + open);
                    attribute(&toks[i + open + 1..end], inner, line, &mut findings);
                    i = end + 1;
                    continue;
                }
            }
            Tok::Ident(name) if at(1) == Some(&Tok::Punct('!')) && *name == "include" => {
                findings.push(found(line, "`include!`", ANOTHER_FILE));
            }
            Tok::Ident("global_asm") if at(1) == Some(&Tok::Punct('!')) => {
                findings.push(found(
                    line,
                    "`global_asm!`",
                    "assembly at file level can define symbols that replace functions the \
                     test harness relies on, or run code before main. Remove it.",
                ));
            }
            Tok::Ident("mod") => {
                if let (Some(Tok::Ident(name)), Some(Tok::Punct(';'))) = (at(1), at(2)) {
                    findings.push(found(
                        line,
                        &format!("`mod {name};` (a module in a file of its own)"),
                        ANOTHER_FILE,
                    ));
                }
            }
            Tok::Ident(name) if BARE_NAMES.contains(name) => {
                findings.push(found(
                    line,
                    &format!("`{name}` outside an attribute"),
                    "passed to a macro, it becomes an attribute that lets your code replace \
                     functions the test harness relies on. Remove it.",
                ));
            }
            _ => {}
        }
        i += 1;
    }
    findings
}

/// The findings in one attribute's tokens (between its `[` and `]`).
fn attribute(body: &[Token<'_>], inner: bool, line: usize, findings: &mut Vec<Finding>) {
    let hash = if inner { "#!" } else { "#" };
    let mut seen: Vec<&str> = Vec::new();
    for (k, t) in body.iter().enumerate() {
        let before = |n: usize| k.checked_sub(n).map(|j| &body[j].tok);
        match t.tok {
            Tok::Ident(name) => {
                if let Some(&(_, tail, why)) = ATTRIBUTES.iter().find(|a| a.0 == name)
                    && !seen.contains(&name)
                {
                    seen.push(name);
                    let wrapped = before(1) == Some(&Tok::Punct('('))
                        && before(2) == Some(&Tok::Ident("unsafe"));
                    let what = if wrapped {
                        format!("{hash}[unsafe({name}{tail})]")
                    } else {
                        format!("{hash}[{name}{tail}]")
                    };
                    findings.push(found(line, &what, why));
                }
                let assigned = body.get(k + 1).map(|t| &t.tok) == Some(&Tok::Punct('='));
                if name == "path" && assigned && !seen.contains(&name) {
                    seen.push(name);
                    findings.push(found(line, &format!("{hash}[path = ...]"), ANOTHER_FILE));
                }
            }
            Tok::Punct('$') if !seen.contains(&"$") => {
                seen.push("$");
                findings.push(found(
                    line,
                    &format!("an attribute made from a macro variable ({hash}[$...])"),
                    "it can become an attribute the grader does not allow. Write the attribute \
                     out in full.",
                ));
            }
            _ => {}
        }
    }
}

fn found(line: usize, what: &str, why: &'static str) -> Finding {
    Finding {
        line,
        what: what.to_owned(),
        why,
    }
}

/// The index of the `]` that closes the `[` at `open` (the number of tokens if none does).
fn closing(toks: &[Token<'_>], open: usize) -> usize {
    let mut depth = 0usize;
    for (k, t) in toks.iter().enumerate().skip(open) {
        match t.tok {
            Tok::Punct('[') => depth += 1,
            Tok::Punct(']') => {
                depth -= 1;
                if depth == 0 {
                    return k;
                }
            }
            _ => {}
        }
    }
    toks.len()
}

/// A token the scanner looks at: literals, comments and lifetimes are never tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok<'a> {
    /// An identifier or keyword (a raw identifier `r#x` without its `r#`).
    Ident(&'a str),
    /// Any other character that is not whitespace.
    Punct(char),
}

#[derive(Debug, Clone, Copy)]
struct Token<'a> {
    tok: Tok<'a>,
    line: usize,
}

/// Splits Rust source into [`Token`]s, skipping what cannot hold an attribute.
struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    line: usize,
}

impl<'a> Lexer<'a> {
    fn new(src: &'a str) -> Self {
        Lexer {
            src,
            pos: 0,
            line: 1,
        }
    }

    /// All tokens of the source.
    fn tokens(mut self) -> Vec<Token<'a>> {
        let mut out = Vec::new();
        while let Some(c) = self.peek(0) {
            let line = self.line;
            match c {
                c if c.is_whitespace() => self.bump(),
                '/' if self.peek(1) == Some('/') => self.line_comment(),
                '/' if self.peek(1) == Some('*') => self.block_comment(),
                '"' => self.string(),
                '\'' => self.quote(),
                'r' | 'b' | 'c' if self.prefixed_literal() => {}
                c if c.is_ascii_digit() => {
                    self.take_while(|c| c.is_alphanumeric() || c == '_');
                }
                c if c.is_alphabetic() || c == '_' => {
                    let ident = self.take_while(|c| c.is_alphanumeric() || c == '_');
                    out.push(Token {
                        tok: Tok::Ident(ident),
                        line,
                    });
                }
                c => {
                    self.bump();
                    out.push(Token {
                        tok: Tok::Punct(c),
                        line,
                    });
                }
            }
        }
        out
    }

    /// The character `n` characters ahead.
    fn peek(&self, n: usize) -> Option<char> {
        self.src[self.pos..].chars().nth(n)
    }

    /// Moves past one character, counting lines.
    fn bump(&mut self) {
        if let Some(c) = self.peek(0) {
            if c == '\n' {
                self.line += 1;
            }
            self.pos += c.len_utf8();
        }
    }

    /// Moves past the characters that satisfy `keep` and returns them.
    fn take_while(&mut self, keep: impl Fn(char) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek(0).is_some_and(&keep) {
            self.bump();
        }
        &self.src[start..self.pos]
    }

    /// `// ...` up to the end of the line (doc comments `///`, `//!` included).
    fn line_comment(&mut self) {
        self.take_while(|c| c != '\n');
    }

    /// `/* ... */`, nested.
    fn block_comment(&mut self) {
        self.bump();
        self.bump();
        let mut depth = 1;
        while depth > 0 {
            match (self.peek(0), self.peek(1)) {
                (None, _) => return,
                (Some('/'), Some('*')) => {
                    self.bump();
                    depth += 1;
                }
                (Some('*'), Some('/')) => {
                    self.bump();
                    depth -= 1;
                }
                _ => {}
            }
            self.bump();
        }
    }

    /// `"..."` with escapes, from its opening quote.
    fn string(&mut self) {
        self.bump();
        while let Some(c) = self.peek(0) {
            self.bump();
            match c {
                '\\' => self.bump(),
                '"' => return,
                _ => {}
            }
        }
    }

    /// A char literal (`'x'`, `'\n'`, `'\u{1b}'`) or a lifetime or label (`'a`), from its quote.
    fn quote(&mut self) {
        self.bump();
        match (self.peek(0), self.peek(1)) {
            (Some('\\'), _) => {
                self.bump();
                self.bump();
                self.take_while(|c| c != '\'' && c != '\n');
                if self.peek(0) == Some('\'') {
                    self.bump();
                }
            }
            (Some(_), Some('\'')) => {
                self.bump();
                self.bump();
            }
            _ => {
                self.take_while(|c| c.is_alphanumeric() || c == '_');
            }
        }
    }

    /// At an `r`, `b` or `c`: moves past a raw identifier, a raw string, a byte or C string or
    /// a byte char if one starts here; false (nothing moved) for a plain identifier.
    fn prefixed_literal(&mut self) -> bool {
        let first = self.peek(0);
        let (prefix, raw) = match (first, self.peek(1)) {
            (Some('b' | 'c'), Some('r')) => (2, true),
            (Some('r'), _) => (1, true),
            _ => (1, false),
        };
        let hashes = (0..)
            .take_while(|&n| self.peek(prefix + n) == Some('#'))
            .count();
        let after = self.peek(prefix + hashes);
        if raw && after == Some('"') {
            (0..prefix + hashes).for_each(|_| self.bump());
            self.raw_string(hashes);
            return true;
        }
        if first == Some('r') && hashes == 1 && after.is_some_and(|c| c.is_alphabetic() || c == '_')
        {
            // A raw identifier: leave `r#` behind, the identifier is read next.
            self.bump();
            self.bump();
            return true;
        }
        match (first, self.peek(1)) {
            (Some('b' | 'c'), Some('"')) => {
                self.bump();
                self.string();
                true
            }
            (Some('b'), Some('\'')) => {
                self.bump();
                self.quote();
                true
            }
            _ => false,
        }
    }

    /// The rest of a raw string from its opening quote: up to a quote and `hashes` `#`s.
    fn raw_string(&mut self, hashes: usize) {
        self.bump();
        while let Some(c) = self.peek(0) {
            self.bump();
            if c == '"' && (0..hashes).all(|n| self.peek(n) == Some('#')) {
                (0..hashes).for_each(|_| self.bump());
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The (line, what) of each finding in `source`.
    fn found(source: &str) -> Vec<(usize, String)> {
        scan(source).into_iter().map(|f| (f.line, f.what)).collect()
    }

    fn one(line: usize, what: &str) -> Vec<(usize, String)> {
        vec![(line, what.to_owned())]
    }

    #[test]
    fn each_attribute_is_caught() {
        let cases = [
            (
                "#[no_mangle]\npub extern \"C\" fn prctl() {}",
                "#[no_mangle]",
            ),
            ("#[unsafe(no_mangle)]\nfn f() {}", "#[unsafe(no_mangle)]"),
            (
                "#[export_name = \"prctl\"]\nfn f() {}",
                "#[export_name = ...]",
            ),
            (
                "#[unsafe(export_name = \"prctl\")]\nfn f() {}",
                "#[unsafe(export_name = ...)]",
            ),
            (
                "#[link_section = \".init_array\"]\nstatic F: fn() = f;",
                "#[link_section = ...]",
            ),
            (
                "#[unsafe(link_section = \".init_array\")]\nstatic F: fn() = f;",
                "#[unsafe(link_section = ...)]",
            ),
            ("#[used]\nstatic F: fn() = f;", "#[used]"),
            (
                "unsafe extern \"C\" {\n    #[link_name = \"fork\"]\n    fn f();\n}",
                "#[link_name = ...]",
            ),
            ("#[cfg_attr(all(), used)]\nstatic X: u8 = 0;", "#[used]"),
        ];
        for (source, what) in cases {
            let line = if what.starts_with("#[link_name") {
                2
            } else {
                1
            };
            assert_eq!(found(source), one(line, what), "{source}");
        }
    }

    #[test]
    fn spaced_and_multi_line_attributes_are_caught() {
        assert_eq!(
            found("fn a() {}\n# [ no_mangle ]\nfn f() {}"),
            one(2, "#[no_mangle]")
        );
        assert_eq!(
            found("\n#\n[\n  unsafe (\n no_mangle\n )\n]\nfn f() {}"),
            one(2, "#[unsafe(no_mangle)]")
        );
        assert_eq!(
            found("# /* hidden? */ [used] static X: u8 = 0;"),
            one(1, "#[used]")
        );
        assert_eq!(
            found("#[r#no_mangle]\nfn f() {}"),
            one(1, "#[no_mangle]"),
            "a raw identifier is the same name"
        );
    }

    #[test]
    fn inner_attributes_are_caught() {
        assert_eq!(found("#![no_mangle]\n"), one(1, "#![no_mangle]"));
        assert_eq!(
            found("//! docs\n# ! [ link_section = \"x\" ]\n"),
            one(2, "#![link_section = ...]")
        );
    }

    #[test]
    fn comments_strings_and_literals_are_fine() {
        let source = r####"
//! Never use #[no_mangle] here.
/// Nor #[used], nor #[export_name = "x"].
// #[link_section = ".init_array"]
/* #[no_mangle] /* nested #[used] */ still a comment #[used] */
/** #[no_mangle] */
fn f<'a>(s: &'a str) -> usize {
    let a = "#[no_mangle] \" #[used]";
    let b = r#"#[no_mangle] " #[used]"#;
    let c = r##"#[link_section = "x"] "# still raw #[used]"##;
    let d = b"#[used]";
    let e = br#"#[used]"#;
    let q = '"';
    let h = '#';
    let esc = '\'';
    let u = '\u{5b}';
    let bq = b'"';
    'outer: loop { break 'outer; }
    println!("{a}{b}{c}{q}{h}{esc}{u}{bq} no_mangle");
    s.len() + d.len() + e.len()
}
#[derive(Debug)]
#[allow(unused, dead_code)]
#[cfg(feature = "used")]
struct Used { used: bool, link_name: u8 }
#[cfg(test)]
mod tests { #[test] fn t() {} }
"####;
        assert_eq!(found(source), Vec::<(usize, String)>::new());
    }

    #[test]
    fn hiding_places_are_caught() {
        let source = "\
macro_rules! m { ($a:meta) => { #[$a] fn f() {} } }
m!(no_mangle);
include!(\"/tmp/evil.rs\");
#[path = \"/tmp/evil.rs\"]
mod evil;
core::arch::global_asm!(\".globl prctl\");
";
        let whats: Vec<String> = found(source).into_iter().map(|f| f.1).collect();
        assert_eq!(
            whats,
            [
                "an attribute made from a macro variable (#[$...])",
                "`no_mangle` outside an attribute",
                "`include!`",
                "#[path = ...]",
                "`mod evil;` (a module in a file of its own)",
                "`global_asm!`",
            ]
        );
        // include_str! and an inline module are fine.
        assert!(found("const S: &str = include_str!(\"x\");\nmod inner { }").is_empty());
    }

    #[test]
    fn lines_count_through_literals_and_comments() {
        let source =
            "/* one\ntwo */\nconst S: &str = \"a\nb\";\nconst R: &str = r#\"c\nd\"#;\n#[used]\n";
        assert_eq!(found(source), one(7, "#[used]"));
    }

    #[test]
    fn unterminated_input_does_not_panic() {
        for source in [
            "/* open",
            "\"open",
            "r#\"open",
            "'",
            "#[",
            "#![no_mangle",
            "b'",
            "r#",
        ] {
            let _ = scan(source);
        }
        assert_eq!(found("#[no_mangle"), one(1, "#[no_mangle]"));
    }

    #[test]
    fn the_message_names_the_file_and_line() {
        let f = &scan("\n\n#[no_mangle]\npub extern \"C\" fn prctl() {}")[0];
        let m = f.message("exercises/processes/zombies.rs");
        assert!(
            m.starts_with(
                "exercises/processes/zombies.rs:3: #[no_mangle] is not allowed in an exercise: "
            ) && m.contains("prctl")
                && m.ends_with("Remove it."),
            "{m}"
        );
    }

    /// What a student may copy from must pass: every stub, solution and mistake of the kit.
    #[test]
    fn the_kits_own_files_pass() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut files = Vec::new();
        for top in ["exercises", "solutions", "mistakes"] {
            rust_files(&root.join(top), &mut files);
        }
        assert!(files.len() > 10, "found only {files:?}");
        for file in files {
            let findings = scan(&std::fs::read_to_string(&file).unwrap());
            assert!(findings.is_empty(), "{}: {findings:?}", file.display());
        }
    }

    fn rust_files(dir: &Path, into: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                rust_files(&path, into);
            } else if path.extension().is_some_and(|e| e == "rs") {
                into.push(path);
            }
        }
    }

    #[test]
    fn refusals_list_each_finding() {
        let source = "#[used]\n".repeat(SHOWN_FINDINGS + 3);
        let text = refusal("exercises/a/b.rs", &scan(&source));
        assert_eq!(text.lines().count(), SHOWN_FINDINGS + 1);
        assert!(text.starts_with("exercises/a/b.rs:1: #[used]"), "{text}");
        assert!(text.ends_with("[... 3 more like these ...]"), "{text}");
    }
}
