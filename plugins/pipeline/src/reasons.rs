//! Every reason code a reply of Tollgate's own can carry (`error.code` and `x-tollgate-reason`), gathered
//! from the plugins. The README's troubleshooting table is checked against this list, so neither can drift.

use tollgate_core::Reason;

/// The reason codes of every plugin, in the order a request meets them: the head's size first, then auth.
pub fn all() -> Vec<Reason> {
    let lists = [
        crate::head_limits::REASONS,
        tollgate_auth::REASONS,
        tollgate_ratelimit::REASONS,
        tollgate_ai::error::REASONS,
        tollgate_prompt::REASONS,
    ];
    lists.into_iter().flatten().copied().collect()
}

/// The README's troubleshooting table for these reasons.
pub fn markdown_table(reasons: &[Reason]) -> String {
    let mut table =
        String::from("| Status | `x-tollgate-reason` | What happened | What to do |\n|---|---|---|---|\n");
    for r in reasons {
        table.push_str(&format!("| {} | `{}` | {} | {} |\n", r.status, r.code, r.meaning, r.action));
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique() {
        let reasons = all();
        for (i, r) in reasons.iter().enumerate() {
            assert!(!reasons.iter().skip(i + 1).any(|o| o.code == r.code), "{} twice", r.code);
        }
    }

    #[test]
    fn the_readme_troubleshooting_table_is_the_list_of_reasons() {
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
        let table = markdown_table(&all());
        assert!(
            readme.contains(&table),
            "README.md's troubleshooting table is out of date; it should read:\n\n{table}"
        );
    }
}
