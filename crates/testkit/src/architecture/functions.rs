//! How long each function of the shipped code is, read from its sources.
//!
//! A function runs from the line of its `fn` keyword to the line of its body's closing brace.
//! Functions inside a `#[cfg(test)]` module are tests and not counted; a function nested in
//! another counts on its own and inside its parent. Comments and strings are blanked first
//! (`modules::strip_comments_and_strings`), so a brace in either changes nothing.

use std::path::{Path, PathBuf};

use super::modules::{rust_files, strip_comments_and_strings};

/// One function and its length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Function {
    /// The file it is in.
    pub file: PathBuf,
    /// Its name.
    pub name: String,
    /// The line of its `fn` (1-based).
    pub line: usize,
    /// Lines from `fn` to the closing brace, both counted.
    pub lines: usize,
}

/// Every function with a body in the `.rs` files under `dir`, tests left out.
pub fn functions_under(dir: &Path) -> Vec<Function> {
    let mut out = Vec::new();
    for file in rust_files(dir) {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        for (name, line, lines) in functions(&text) {
            out.push(Function {
                file: file.clone(),
                name,
                line,
                lines,
            });
        }
    }
    out
}

/// The functions with a body in one file's text, outside `#[cfg(test)]` modules:
/// `(name, line, lines)`.
pub fn functions(text: &str) -> Vec<(String, usize, usize)> {
    let code: Vec<char> = strip_comments_and_strings(text).chars().collect();
    let line_of = |i: usize| code[..i].iter().filter(|&&c| c == '\n').count() + 1;
    let tests = test_module_spans(&code);
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(at) = find_word(&code, "fn", i) {
        i = at + 2;
        if tests.iter().any(|&(s, e)| at > s && at < e) {
            continue;
        }
        let name: String = code[i..]
            .iter()
            .skip_while(|c| c.is_whitespace())
            .take_while(|c| c.is_alphanumeric() || **c == '_')
            .collect();
        if name.is_empty() {
            continue; // `fn(` in a type
        }
        let Some(open) = body_start(&code, i) else {
            continue;
        };
        let Some(close) = matching_brace(&code, open) else {
            continue;
        };
        let (first, last) = (line_of(at), line_of(close));
        out.push((name, first, last - first + 1));
    }
    out
}

/// The spans (from `#[cfg(test)]` to the module's closing brace) of test modules.
fn test_module_spans(code: &[char]) -> Vec<(usize, usize)> {
    let text: String = code.iter().collect();
    let mut spans = Vec::new();
    let mut from = 0;
    while let Some(rel) = text[from..].find("#[cfg(test)]") {
        let byte = from + rel;
        from = byte + 1;
        let at = text[..byte].chars().count();
        let rest: String = code[at..].iter().take(400).collect();
        let after = rest["#[cfg(test)]".len()..].trim_start();
        let is_mod = after.starts_with("mod ") || after.starts_with("pub mod ");
        if !is_mod {
            continue;
        }
        let Some(open) = (at..code.len()).find(|&j| code[j] == '{' || code[j] == ';') else {
            continue;
        };
        if code[open] == ';' {
            continue; // `mod tests;`: a file of its own, named by its path
        }
        if let Some(close) = matching_brace(code, open) {
            spans.push((at, close));
        }
    }
    spans
}

/// The index of the next `word` at or after `from` standing alone (not part of an identifier).
fn find_word(code: &[char], word: &str, from: usize) -> Option<usize> {
    let w: Vec<char> = word.chars().collect();
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    (from..code.len().saturating_sub(w.len() - 1)).find(|&i| {
        code[i..i + w.len()] == w[..]
            && (i == 0 || !ident(code[i - 1]))
            && code.get(i + w.len()).is_none_or(|&c| !ident(c))
    })
}

/// Where a function's body opens: the first `{` outside parentheses and angle brackets after
/// its name, or `None` when a `;` comes first (a declaration without a body).
fn body_start(code: &[char], from: usize) -> Option<usize> {
    let mut parens = 0i32;
    for (i, &c) in code.iter().enumerate().skip(from) {
        match c {
            '(' | '[' => parens += 1,
            ')' | ']' => parens -= 1,
            '{' if parens == 0 => return Some(i),
            ';' if parens == 0 => return None,
            _ => {}
        }
    }
    None
}

/// The index of the `}` that closes the `{` at `open`.
fn matching_brace(code: &[char], open: usize) -> Option<usize> {
    let mut depth = 0i32;
    for (i, &c) in code.iter().enumerate().skip(open) {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::functions;

    #[test]
    fn lengths_skip_tests_declarations_and_braces_in_strings() {
        let text = "fn a() {\n    let s = \"}\";\n}\n\
                    trait T { fn decl(&self); }\n\
                    fn b<F: Fn(u8) -> u8>(f: F) -> u8 where F: Copy {\n    f(1)\n}\n\
                    #[cfg(test)]\nmod tests {\n    fn t() {\n    }\n}\n";
        let got = functions(text);
        assert_eq!(
            got,
            vec![("a".to_string(), 1, 3), ("b".to_string(), 5, 3)],
            "{got:?}"
        );
    }
}
