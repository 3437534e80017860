//! The module import graph of a crate, read from its sources, and the cycles in it.
//!
//! A module is a file (`a/b.rs` or `a/b/mod.rs` is `a::b`; `lib.rs` or `main.rs` is the
//! crate root); an inline `mod x { … }` belongs to its file. Module A depends on module B when
//! A's code names B or an item in it: `use` trees and paths starting with `crate::`, `super::`,
//! `self::`, a child module's name, or a name a `use` bound to a module. An item a module
//! re-exports (`pub use x::Item`) is followed to where it lives. Not counted: a module's own
//! `mod` declarations and `pub use` re-exports of what lies below it (that is how a folder
//! shows its contents, not a dependency), and comments and strings.
//!
//! Two graphs are checked: between modules, and between a crate's top-level modules (its
//! folders and top-level files), where an edge is any dependency of something inside one on
//! something inside another.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// A module path from the crate root (`[]` is the root, `["create", "flow"]` is
/// `crate::create::flow`).
pub type ModulePath = Vec<String>;

/// One dependency: from a module to another, with the first place it was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    /// The depending module.
    pub from: ModulePath,
    /// The module depended on.
    pub to: ModulePath,
    /// `file:line` of the first reference.
    pub at: String,
}

/// A crate's modules and the dependencies between them.
#[derive(Debug, Default)]
pub struct ModuleGraph {
    /// Every module, with its file.
    pub modules: BTreeMap<ModulePath, PathBuf>,
    /// Every dependency (one per ordered pair).
    pub edges: Vec<Edge>,
}

/// The `.rs` files under `dir`, sorted.
pub fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.is_dir() {
                todo.push(p);
            } else if p.extension().is_some_and(|e| e == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// `text` with comments, string literals and char literals blanked out (lines kept).
pub fn strip_comments_and_strings(text: &str) -> String {
    let b: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        i = if c == '/' && next == Some('/') {
            blank_line_comment(&b, i, &mut out)
        } else if c == '/' && next == Some('*') {
            blank_block_comment(&b, i, &mut out)
        } else if c == 'r'
            && (next == Some('"') || next == Some('#'))
            && (!ident_before(&b, i) || i > 0 && b[i - 1] == 'b' && !ident_before(&b, i - 1))
        {
            blank_raw_string(&b, i, &mut out)
        } else if c == '"' {
            blank_string(&b, i, &mut out)
        } else if c == '\'' {
            blank_char_literal(&b, i, &mut out)
        } else {
            out.push(c);
            i + 1
        };
    }
    out
}

/// `c` blanked: a newline stays, anything else becomes a space.
fn blank(c: char) -> char {
    if c == '\n' { '\n' } else { ' ' }
}

/// Blanks the `//` comment at `i` into `out` up to its line's end; returns where it ends.
fn blank_line_comment(b: &[char], mut i: usize, out: &mut String) -> usize {
    while i < b.len() && b[i] != '\n' {
        out.push(' ');
        i += 1;
    }
    i
}

/// Blanks the `/* … */` comment at `i` (nested ones too) into `out`; returns where it ends.
fn blank_block_comment(b: &[char], mut i: usize, out: &mut String) -> usize {
    let mut depth = 0;
    while i < b.len() {
        if b[i] == '/' && b.get(i + 1) == Some(&'*') {
            depth += 1;
            out.push_str("  ");
            i += 2;
        } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
            depth -= 1;
            out.push_str("  ");
            i += 2;
            if depth == 0 {
                break;
            }
        } else {
            out.push(blank(b[i]));
            i += 1;
        }
    }
    i
}

/// Blanks the raw string `r"…"` or `r#"…"#` at `i` into `out` (an `r` that starts none is
/// kept); returns where it ends.
fn blank_raw_string(b: &[char], i: usize, out: &mut String) -> usize {
    let mut j = i + 1;
    let mut hashes = 0;
    while b.get(j) == Some(&'#') {
        hashes += 1;
        j += 1;
    }
    if b.get(j) != Some(&'"') {
        out.push(b[i]);
        return i + 1;
    }
    j += 1;
    loop {
        if j >= b.len() {
            break;
        }
        if b[j] == '"' && (0..hashes).all(|k| b.get(j + 1 + k) == Some(&'#')) {
            j += 1 + hashes;
            break;
        }
        j += 1;
    }
    for &ch in &b[i..j.min(b.len())] {
        out.push(blank(ch));
    }
    j
}

/// Blanks the string literal at `i` (escapes included) into `out`; returns where it ends.
fn blank_string(b: &[char], mut i: usize, out: &mut String) -> usize {
    out.push(' ');
    i += 1;
    while i < b.len() && b[i] != '"' {
        if b[i] == '\\' {
            out.push(' ');
            i += 1;
        }
        if i < b.len() {
            out.push(blank(b[i]));
            i += 1;
        }
    }
    out.push(' ');
    i + 1
}

/// Blanks the char literal at `i` into `out`, or keeps the `'` of a lifetime; returns where
/// it ends.
fn blank_char_literal(b: &[char], i: usize, out: &mut String) -> usize {
    // A char literal ('x', '\n', '\u{..}') — not a lifetime ('a).
    let close = if b.get(i + 1) == Some(&'\\') {
        (i + 3..b.len().min(i + 12)).find(|&k| b[k] == '\'')
    } else if b.get(i + 2) == Some(&'\'') {
        Some(i + 2)
    } else {
        None
    };
    match close {
        Some(end) => {
            for _ in i..=end {
                out.push(' ');
            }
            end + 1
        }
        None => {
            out.push(b[i]);
            i + 1
        }
    }
}

fn ident_before(b: &[char], i: usize) -> bool {
    i > 0 && (b[i - 1].is_alphanumeric() || b[i - 1] == '_')
}

/// The module path of `file` in the crate whose sources are under `src`.
fn module_of(src: &Path, file: &Path) -> ModulePath {
    let rel = file.strip_prefix(src).unwrap_or(file);
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap_or_default();
    let stem = last.trim_end_matches(".rs");
    if !matches!(stem, "mod" | "lib" | "main") || !parts.is_empty() && stem != "mod" {
        parts.push(stem.to_string());
    }
    parts
}

/// One token of Rust code, as far as paths go.
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Sep,
    Punct(char),
}

fn tokens(code: &str) -> Vec<(Tok, usize)> {
    let b: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < b.len() && (b[i].is_alphanumeric() || b[i] == '_') {
                i += 1;
            }
            out.push((Tok::Ident(b[start..i].iter().collect()), line));
        } else if c == ':' && b.get(i + 1) == Some(&':') {
            out.push((Tok::Sep, line));
            i += 2;
        } else {
            out.push((Tok::Punct(c), line));
            i += 1;
        }
    }
    out
}

/// A `use` tree flattened into (path, bound name) pairs; `self` in braces names the prefix.
fn use_paths(
    toks: &[(Tok, usize)],
    mut i: usize,
    prefix: &[String],
) -> (Vec<(Vec<String>, String)>, usize) {
    let mut out = Vec::new();
    let mut path: Vec<String> = prefix.to_vec();
    loop {
        match toks.get(i).map(|t| &t.0) {
            Some(Tok::Ident(id)) if id == "as" => {
                if let Some((Tok::Ident(alias), _)) = toks.get(i + 1) {
                    out.push((path.clone(), alias.clone()));
                    path.clear();
                }
                i += 2;
            }
            Some(Tok::Ident(id)) => {
                path.push(id.clone());
                i += 1;
            }
            Some(Tok::Sep) => i += 1,
            Some(Tok::Punct('{')) => {
                let (inner, j) = use_group(toks, i + 1, &path);
                out.extend(inner);
                path.clear();
                i = j;
            }
            Some(Tok::Punct('*')) => {
                path.push("*".into());
                i += 1;
            }
            _ => {
                if path.len() > prefix.len() {
                    let name = path.last().cloned().unwrap_or_default();
                    if name == "self" {
                        path.pop();
                        let bound = path.last().cloned().unwrap_or_default();
                        out.push((path.clone(), bound));
                    } else {
                        out.push((path.clone(), name));
                    }
                }
                return (out, i);
            }
        }
    }
}

fn use_group(
    toks: &[(Tok, usize)],
    mut i: usize,
    prefix: &[String],
) -> (Vec<(Vec<String>, String)>, usize) {
    let mut out = Vec::new();
    loop {
        match toks.get(i).map(|t| &t.0) {
            None => return (out, i),
            Some(Tok::Punct('}')) => return (out, i + 1),
            Some(Tok::Punct(',')) => i += 1,
            _ => {
                let (inner, j) = use_paths(toks, i, prefix);
                out.extend(inner);
                if j == i {
                    i += 1;
                } else {
                    i = j;
                }
            }
        }
    }
}

/// A reference found in a file: where it is (its module, counting inline `mod`s), the path
/// as written, the line, and whether it is a `pub use` (a re-export).
struct Reference {
    scope: ModulePath,
    inline_depth: usize,
    path: Vec<String>,
    bound: Option<String>,
    line: usize,
    reexport: bool,
}

/// The references in `code`, the stripped text of the file of module `file_module`.
fn references(file_module: &ModulePath, code: &str) -> Vec<Reference> {
    let toks = tokens(code);
    let mut out = Vec::new();
    // Inline modules: (name, brace depth at which they close).
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < toks.len() {
        let (tok, line) = (&toks[i].0, toks[i].1);
        match tok {
            Tok::Punct('{') => {
                depth += 1;
                i += 1;
            }
            Tok::Punct('}') => {
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
                depth = depth.saturating_sub(1);
                i += 1;
            }
            Tok::Ident(id) if id == "mod" => {
                if let (Some((Tok::Ident(name), _)), Some((Tok::Punct('{'), _))) =
                    (toks.get(i + 1), toks.get(i + 2))
                {
                    inline.push((name.clone(), depth + 1));
                }
                i += 1;
            }
            Tok::Ident(id) if id == "use" => {
                let reexport = is_reexport(&toks, i);
                let (paths, j) = use_paths(&toks, i + 1, &[]);
                let scope = scope_of(file_module, &inline);
                for (path, bound) in paths {
                    out.push(Reference {
                        scope: scope.clone(),
                        inline_depth: inline.len(),
                        path,
                        bound: Some(bound),
                        line,
                        reexport,
                    });
                }
                i = j.max(i + 1);
            }
            Tok::Ident(first) => match code_path(&toks, i, first) {
                Some((path, j)) => {
                    // Whether it starts in this crate is decided when it is resolved.
                    out.push(Reference {
                        scope: scope_of(file_module, &inline),
                        inline_depth: inline.len(),
                        path,
                        bound: None,
                        line,
                        reexport: false,
                    });
                    i = j;
                }
                None => i += 1,
            },
            _ => i += 1,
        }
    }
    out
}

/// Whether the `use` at token `i` is a re-export (`pub use` or `pub(…) use`).
fn is_reexport(toks: &[(Tok, usize)], i: usize) -> bool {
    i > 0 && matches!(&toks[i - 1].0, Tok::Ident(p) if p == "pub")
        || i > 3
            && matches!(&toks[i - 1].0, Tok::Punct(')'))
            && matches!(&toks[i - 3].0, Tok::Punct('('))
            && matches!(&toks[i - 4].0, Tok::Ident(p) if p == "pub")
}

/// The module code is written in: the file's, plus the inline modules it is inside.
fn scope_of(file_module: &ModulePath, inline: &[(String, usize)]) -> ModulePath {
    file_module
        .iter()
        .cloned()
        .chain(inline.iter().map(|(n, _)| n.clone()))
        .collect()
}

/// The path in code starting with `first` at token `i` (`first::…`, not itself the tail of
/// another path) and the token after it; `None` when no path starts there.
fn code_path(toks: &[(Tok, usize)], i: usize, first: &str) -> Option<(Vec<String>, usize)> {
    let after_sep = i > 0 && toks[i - 1].0 == Tok::Sep;
    let is_path = toks.get(i + 1).map(|t| &t.0) == Some(&Tok::Sep);
    if after_sep || !is_path {
        return None;
    }
    let mut path = vec![first.to_string()];
    let mut j = i + 1;
    while toks.get(j).map(|t| &t.0) == Some(&Tok::Sep) {
        match toks.get(j + 1).map(|t| &t.0) {
            Some(Tok::Ident(id)) => {
                path.push(id.clone());
                j += 2;
            }
            _ => break,
        }
    }
    Some((path, j))
}

/// The absolute path a reference names, or `None` when it starts outside the crate.
fn absolute(
    r: &Reference,
    file_module: &ModulePath,
    modules: &BTreeMap<ModulePath, PathBuf>,
    aliases: &BTreeMap<String, ModulePath>,
) -> Option<Vec<String>> {
    let mut path = r.path.clone();
    let first = path.first()?.clone();
    // The module the reference is written in: the file's, plus inline modules.
    let mut here: Vec<String> = r.scope.clone();
    let base: Vec<String> = match first.as_str() {
        "crate" => {
            path.remove(0);
            Vec::new()
        }
        "self" => {
            path.remove(0);
            here
        }
        "super" => {
            while path.first().map(String::as_str) == Some("super") {
                path.remove(0);
                here.pop();
            }
            here
        }
        _ => {
            let mut child = file_module.clone();
            child.push(first.clone());
            if modules.contains_key(&child) {
                file_module.clone()
            } else if let Some(target) = aliases.get(&first) {
                path.remove(0);
                target.clone()
            } else {
                return None;
            }
        }
    };
    let mut full = base;
    full.extend(path);
    Some(full)
}

/// The module an absolute path leads to: its longest module prefix, following a re-export of
/// the next name.
fn target(
    full: &[String],
    modules: &BTreeMap<ModulePath, PathBuf>,
    reexports: &BTreeMap<ModulePath, BTreeMap<String, Vec<String>>>,
    hops: usize,
) -> Option<ModulePath> {
    let n = (0..=full.len())
        .rev()
        .find(|&n| modules.contains_key(&full[..n].to_vec()))?;
    let module = full[..n].to_vec();
    if hops < 8
        && let Some(next) = full.get(n)
        && let Some(to) = reexports.get(&module).and_then(|r| r.get(next))
    {
        let mut followed = to.clone();
        followed.extend(full[n + 1..].iter().cloned());
        return target(&followed, modules, reexports, hops + 1).or(Some(module));
    }
    Some(module)
}

/// Each module's re-exports: bound name → the absolute path it re-exports.
type Reexports = BTreeMap<ModulePath, BTreeMap<String, Vec<String>>>;

/// Each module's module aliases: name a `use` bound → the module it names.
type Aliases = BTreeMap<ModulePath, BTreeMap<String, ModulePath>>;

/// Reads the module graph of the crate whose root file is `root` (its `lib.rs` or
/// `main.rs`); the crate's other modules are the files beside and below it.
pub fn module_graph(root: &Path) -> ModuleGraph {
    let src = root.parent().unwrap_or(Path::new("."));
    let modules = crate_modules(src, root.file_name().unwrap_or_default());
    let codes: BTreeMap<ModulePath, String> = modules
        .iter()
        .map(|(m, f)| {
            let text = std::fs::read_to_string(f).unwrap_or_default();
            (m.clone(), strip_comments_and_strings(&text))
        })
        .collect();
    // First pass: each module's re-exports and module aliases.
    let mut refs: BTreeMap<ModulePath, Vec<Reference>> = BTreeMap::new();
    for (m, code) in &codes {
        refs.insert(m.clone(), references(m, code));
    }
    let (reexports, aliases) = reexports_and_aliases(&modules, &refs);
    // Second pass: the edges.
    let edges = dependency_edges(src, &modules, &refs, &reexports, &aliases);
    ModuleGraph { modules, edges }
}

/// The modules of the crate whose sources are under `src` and whose root file is named
/// `root_name`, with their files (the other root file, `lib.rs` or `main.rs`, left out).
fn crate_modules(src: &Path, root_name: &OsStr) -> BTreeMap<ModulePath, PathBuf> {
    let mut modules: BTreeMap<ModulePath, PathBuf> = BTreeMap::new();
    for f in rust_files(src) {
        let top_file = f.parent() == Some(src);
        let is_other_root = top_file
            && matches!(
                f.file_name().and_then(|n| n.to_str()),
                Some("lib.rs" | "main.rs")
            )
            && f.file_name() != Some(root_name);
        if is_other_root {
            continue;
        }
        modules.insert(module_of(src, &f), f);
    }
    modules
}

/// Each module's re-exports (top-level `pub use`s) and module aliases (names a `use` bound
/// to a module), from the references `refs`.
fn reexports_and_aliases(
    modules: &BTreeMap<ModulePath, PathBuf>,
    refs: &BTreeMap<ModulePath, Vec<Reference>>,
) -> (Reexports, Aliases) {
    let no_aliases = BTreeMap::new();
    let mut reexports: Reexports = BTreeMap::new();
    let mut aliases: Aliases = BTreeMap::new();
    for (m, rs) in refs {
        for r in rs {
            let Some(bound) = &r.bound else { continue };
            let Some(full) = absolute(r, m, modules, &no_aliases) else {
                continue;
            };
            if full.last().map(String::as_str) == Some("*") {
                continue;
            }
            if r.reexport && r.inline_depth == 0 {
                reexports
                    .entry(m.clone())
                    .or_default()
                    .insert(bound.clone(), full.clone());
            }
            if modules.contains_key(&full) {
                aliases
                    .entry(m.clone())
                    .or_default()
                    .insert(bound.clone(), full);
            }
        }
    }
    (reexports, aliases)
}

/// The dependencies the references `refs` make, one per ordered pair of modules, each with
/// the first place it was seen (`file:line`, the file relative to `src`'s parent).
fn dependency_edges(
    src: &Path,
    modules: &BTreeMap<ModulePath, PathBuf>,
    refs: &BTreeMap<ModulePath, Vec<Reference>>,
    reexports: &Reexports,
    aliases: &Aliases,
) -> Vec<Edge> {
    let no_aliases = BTreeMap::new();
    let mut seen: BTreeSet<(ModulePath, ModulePath)> = BTreeSet::new();
    let mut edges = Vec::new();
    for (m, rs) in refs {
        let file = modules[m]
            .strip_prefix(src.parent().unwrap_or(src))
            .unwrap_or(&modules[m])
            .display()
            .to_string();
        let own_aliases = aliases.get(m).unwrap_or(&no_aliases);
        for r in rs {
            let Some(full) = absolute(r, m, modules, own_aliases) else {
                continue;
            };
            let Some(to) = target(&full, modules, reexports, 0) else {
                continue;
            };
            // A folder showing what lies below it is structure, not a dependency.
            if to == *m || r.reexport && to.starts_with(m) {
                continue;
            }
            if seen.insert((m.clone(), to.clone())) {
                edges.push(Edge {
                    from: m.clone(),
                    to,
                    at: format!("{file}:{}", r.line),
                });
            }
        }
    }
    edges
}

/// `crate::a::b` for a module path.
pub fn display(m: &ModulePath) -> String {
    if m.is_empty() {
        "crate".into()
    } else {
        format!("crate::{}", m.join("::"))
    }
}

/// The strongly connected components with more than one member (Tarjan's algorithm): each
/// is a set of nodes that all depend on each other, i.e. a cycle.
pub fn cycles<N: Ord + Clone>(nodes: &BTreeSet<N>, edges: &BTreeSet<(N, N)>) -> Vec<Vec<N>> {
    struct State<N> {
        index: BTreeMap<N, usize>,
        low: BTreeMap<N, usize>,
        stack: Vec<N>,
        on_stack: BTreeSet<N>,
        next: usize,
        out: Vec<Vec<N>>,
    }
    fn visit<N: Ord + Clone>(v: &N, succ: &BTreeMap<N, Vec<N>>, s: &mut State<N>) {
        s.index.insert(v.clone(), s.next);
        s.low.insert(v.clone(), s.next);
        s.next += 1;
        s.stack.push(v.clone());
        s.on_stack.insert(v.clone());
        for w in succ.get(v).into_iter().flatten() {
            if !s.index.contains_key(w) {
                visit(w, succ, s);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(lw);
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(&w);
                let done = w == *v;
                component.push(w);
                if done {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.out.push(component);
            }
        }
    }
    let mut succ: BTreeMap<N, Vec<N>> = BTreeMap::new();
    for (a, b) in edges {
        if a != b {
            succ.entry(a.clone()).or_default().push(b.clone());
        }
    }
    let mut s = State {
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in nodes {
        if !s.index.contains_key(v) {
            visit(v, &succ, &mut s);
        }
    }
    s.out
}

impl ModuleGraph {
    /// The cycles between modules, each with the edges inside it.
    pub fn module_cycles(&self) -> Vec<Vec<Edge>> {
        let nodes: BTreeSet<ModulePath> = self.modules.keys().cloned().collect();
        let pairs: BTreeSet<(ModulePath, ModulePath)> = self
            .edges
            .iter()
            .map(|e| (e.from.clone(), e.to.clone()))
            .collect();
        cycles(&nodes, &pairs)
            .into_iter()
            .map(|members| {
                self.edges
                    .iter()
                    .filter(|e| members.contains(&e.from) && members.contains(&e.to))
                    .cloned()
                    .collect()
            })
            .collect()
    }

    /// The cycles between top-level modules (a folder and everything in it counts as one),
    /// each with the edges that make it.
    pub fn folder_cycles(&self) -> Vec<Vec<Edge>> {
        let top = |m: &ModulePath| -> ModulePath { m.iter().take(1).cloned().collect() };
        let nodes: BTreeSet<ModulePath> = self.modules.keys().map(top).collect();
        let pairs: BTreeSet<(ModulePath, ModulePath)> = self
            .edges
            .iter()
            .map(|e| (top(&e.from), top(&e.to)))
            .filter(|(a, b)| a != b && !a.is_empty() && !b.is_empty())
            .collect();
        cycles(&nodes, &pairs)
            .into_iter()
            .map(|members| {
                self.edges
                    .iter()
                    .filter(|e| {
                        let (a, b) = (top(&e.from), top(&e.to));
                        a != b && members.contains(&a) && members.contains(&b)
                    })
                    .cloned()
                    .collect()
            })
            .collect()
    }
}

/// One line per edge: `crate::a -> crate::b (file:line)`.
pub fn describe(cycle: &[Edge]) -> String {
    cycle
        .iter()
        .map(|e| format!("{} -> {} ({})", display(&e.from), display(&e.to), e.at))
        .collect::<Vec<_>>()
        .join("\n  ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A crate in a temporary directory: (path under src, contents).
    fn krate(files: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        for (p, text) in files {
            let f = src.join(p);
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(&f, text).unwrap();
        }
        (dir, src.join("lib.rs"))
    }

    fn pairs(g: &ModuleGraph) -> BTreeSet<(String, String)> {
        g.edges
            .iter()
            .map(|e| (display(&e.from), display(&e.to)))
            .collect()
    }

    #[test]
    fn a_cycle_through_super_and_crate_paths_is_found() {
        let (_d, root) = krate(&[
            ("lib.rs", "pub mod a;\npub mod b;\npub mod c;\n"),
            ("a.rs", "use super::b::thing;\n"),
            ("b.rs", "pub fn thing() { crate::c::other() }\n"),
            ("c.rs", "pub fn other() { let _ = super::a::X; }\n"),
        ]);
        let g = module_graph(&root);
        let cycles = g.module_cycles();
        assert_eq!(cycles.len(), 1, "{cycles:?}");
        assert_eq!(cycles[0].len(), 3, "{}", describe(&cycles[0]));
    }

    #[test]
    fn tests_comments_strings_and_reexports_make_no_edge() {
        let (_d, root) = krate(&[
            ("lib.rs", "pub mod a;\npub mod b;\npub use a::Thing;\n"),
            (
                "a.rs",
                "// crate::b::x\npub struct Thing;\nconst S: &str = \"crate::b::y\";\n#[cfg(test)]\nmod tests {\n    use super::*;\n}\n",
            ),
            ("b.rs", "use crate::Thing;\n"),
        ]);
        let g = module_graph(&root);
        assert_eq!(
            pairs(&g),
            [("crate::b".to_string(), "crate::a".to_string())].into(),
            "the re-export is followed to where Thing lives"
        );
        assert!(g.module_cycles().is_empty());
    }

    #[test]
    fn folders_in_a_cycle_are_found_even_without_a_module_cycle() {
        let (_d, root) = krate(&[
            ("lib.rs", "pub mod x;\npub mod y;\n"),
            ("x/mod.rs", "pub mod one;\npub mod two;\n"),
            ("x/one.rs", "use crate::y::three::T;\n"),
            ("x/two.rs", "pub struct U;\n"),
            ("y/mod.rs", "pub mod three;\n"),
            ("y/three.rs", "pub struct T(crate::x::two::U);\n"),
        ]);
        let g = module_graph(&root);
        assert!(g.module_cycles().is_empty());
        let folders = g.folder_cycles();
        assert_eq!(folders.len(), 1);
        assert_eq!(folders[0].len(), 2, "{}", describe(&folders[0]));
    }

    #[test]
    fn names_bound_by_use_lead_to_their_module() {
        let (_d, root) = krate(&[
            ("lib.rs", "pub mod p;\npub mod q;\n"),
            ("p/mod.rs", "pub mod inner;\n"),
            ("p/inner.rs", "pub fn f() {}\n"),
            ("q.rs", "use crate::p;\nfn g() { p::inner::f() }\n"),
        ]);
        let g = module_graph(&root);
        let p = pairs(&g);
        assert!(
            p.contains(&("crate::q".into(), "crate::p::inner".into())),
            "{p:?}"
        );
    }
}
