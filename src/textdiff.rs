//! Unified diffs, `git diff` style: the one place flannel-gen makes them.

/// The unified diff of `old` -> `new` with 3 lines of context; empty when equal.
pub fn unified(old: &str, new: &str, old_name: &str, new_name: &str) -> String {
    similar::TextDiff::from_lines(old, new).unified_diff().context_radius(3).header(old_name, new_name).to_string()
}

/// Lines added and removed from `old` to `new`.
pub fn line_counts(old: &str, new: &str) -> (usize, usize) {
    let (mut added, mut removed) = (0, 0);
    for c in similar::TextDiff::from_lines(old, new).iter_all_changes() {
        match c.tag() {
            similar::ChangeTag::Insert => added += 1,
            similar::ChangeTag::Delete => removed += 1,
            similar::ChangeTag::Equal => {}
        }
    }
    (added, removed)
}

#[cfg(test)]
mod tests {
    #[test]
    fn equal_texts_have_no_diff() {
        assert_eq!(super::unified("a\n", "a\n", "x", "y"), "");
        let d = super::unified("a\nb\n", "a\nc\n", "x", "y");
        assert!(d.starts_with("--- x\n+++ y\n"), "{d}");
        assert!(d.contains("-b\n+c\n"), "{d}");
        assert_eq!(super::line_counts("a\nb\n", "a\nc\nd\n"), (2, 1));
    }
}
