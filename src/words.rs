//! Wording shared by every message: counts with the right noun and verb form.

/// "1 node", "2 nodes"; `noun` is the singular and takes a plain `s`.
pub fn plural(n: usize, noun: &str) -> String {
    if n == 1 { format!("{n} {noun}") } else { format!("{n} {noun}s") }
}

/// The verb form that agrees with a count: `agree(n, "differs", "differ")`.
pub fn agree<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

#[cfg(test)]
mod tests {
    #[test]
    fn one_is_singular_everything_else_plural() {
        assert_eq!(super::plural(1, "node"), "1 node");
        assert_eq!(super::plural(0, "file"), "0 files");
        assert_eq!(super::plural(2, "peer"), "2 peers");
    }
}
