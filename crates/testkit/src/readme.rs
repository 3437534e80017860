//! The README's generated blocks: text between `<!-- NAME:begin … -->` and `<!-- NAME:end -->`
//! lines is written by the code that knows it (the option table by the flag table, the
//! benchmark tables by the benchmarks), never by hand.

use std::path::Path;

/// `readme` with the block `name` replaced by `body`; an error naming the missing marker.
pub fn replace_block(readme: &str, name: &str, body: &str) -> Result<String, String> {
    let begin = format!("<!-- {name}:begin");
    let end = format!("<!-- {name}:end -->");
    let start = readme
        .find(&begin)
        .ok_or_else(|| format!("README has no `{begin} … -->` line"))?;
    let after_begin = start
        + readme[start..]
            .find('\n')
            .ok_or_else(|| format!("`{begin}` ends the README"))?
        + 1;
    let stop = readme[after_begin..]
        .find(&end)
        .ok_or_else(|| format!("README has no `{end}` line after `{begin}`"))?
        + after_begin;
    let mut body = body.to_string();
    if !body.ends_with('\n') {
        body.push('\n');
    }
    Ok(format!(
        "{}{body}{}",
        &readme[..after_begin],
        &readme[stop..]
    ))
}

/// Rewrites block `name` of the workspace's README.md with `body`.
pub fn write_block(name: &str, body: &str) -> Result<(), String> {
    let path = crate::workspace_root().join("README.md");
    write_block_in(&path, name, body)
}

fn write_block_in(path: &Path, name: &str, body: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let new = replace_block(&text, name, body)?;
    std::fs::write(path, new).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_is_replaced_between_its_markers_only() {
        let readme = "a\n<!-- t:begin (by the bench) -->\nold\nrows\n<!-- t:end -->\nz\n";
        assert_eq!(
            replace_block(readme, "t", "new").unwrap(),
            "a\n<!-- t:begin (by the bench) -->\nnew\n<!-- t:end -->\nz\n"
        );
        assert!(
            replace_block(readme, "u", "x")
                .unwrap_err()
                .contains("u:begin")
        );
        assert!(
            replace_block("<!-- t:begin -->\nx\n", "t", "y")
                .unwrap_err()
                .contains("t:end")
        );
    }
}
