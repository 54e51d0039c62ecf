//! Stat names. Envoy exports them as `wasmcustom.<name>`. Rule names are operator-declared
//! (`[A-Za-z0-9_-]`), consumers come from auth's declared consumers and models from the price table's keys,
//! so every name has bounded cardinality; a client-chosen model name never becomes a stat.

/// Store reads or writes that failed outright; those rules were skipped (fail-open).
pub const STORE_ERRORS: &str = "tollgate_ratelimit_store_errors_total";

/// Cost of settled usage in micro-units, per consumer and priced model.
pub fn cost_metric(consumer: Option<&str>, model_label: &str) -> String {
    format!(
        "tollgate_ratelimit.cost_micros.{}.{}",
        segment(consumer.unwrap_or("anonymous")),
        segment(model_label)
    )
}

/// One stat-name segment: anything but `[A-Za-z0-9_-]` becomes `_`, so a name cannot add segments.
fn segment(name: &str) -> String {
    let name = if name == crate::prices::ANY_MODEL { "other" } else { name };
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_names_cannot_add_segments() {
        assert_eq!(cost_metric(Some("a.b"), "gpt-4o"), "tollgate_ratelimit.cost_micros.a_b.gpt-4o");
        assert_eq!(cost_metric(None, "*"), "tollgate_ratelimit.cost_micros.anonymous.other");
    }
}
