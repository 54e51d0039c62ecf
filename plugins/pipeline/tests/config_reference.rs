//! The `## Configuration reference` section of README.md checked against the config types, so that the
//! two cannot drift. Every raw config struct has `deny_unknown_fields`, and serde's error for a stray
//! field lists the fields the struct accepts (``unknown field `x`, expected one of `a`, `b` ``). For each
//! object the README documents, a probe builds a valid config that reaches it, adds a stray field there,
//! and compares serde's list with the README's table for that object, both ways. The same probes find
//! which fields serde requires (removing one says `missing field`) and which are enums (a stray value says
//! `unknown variant`), and those are compared with the `default` and `type` columns.
//!
//! README conventions the test relies on: each object is a `### ` heading naming its JSON path(s) in
//! backticks (`### Top level` for the root), followed by a `| field | type | default | meaning |` table. A
//! default starting with `required` means serde requires the field. An enum's type cell lists its values in
//! backticks, and only an enum's does. A type mentioning `object` (`object`, `[object]`,
//! `{name: object}`) points at the table of that nested object.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test: a failure is the point"
)]

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Map, Value};
use tollgate_pipeline::Pipeline;

#[path = "config_reference/probes.rs"]
mod probes;

use probes::{probes, Kind, Probe, BOGUS, BOGUS_VALUE};

/// One step from a value to a value inside it.
#[derive(Clone, Debug)]
enum Step {
    Key(String),
    Index(usize),
}

/// The steps to every object holding a `BOGUS` field.
fn find_bogus(value: &Value, at: &mut Vec<Step>, found: &mut Vec<Vec<Step>>) {
    match value {
        Value::Object(map) => {
            if map.contains_key(BOGUS) {
                found.push(at.clone());
            }
            for (key, inner) in map {
                at.push(Step::Key(key.clone()));
                find_bogus(inner, at, found);
                at.pop();
            }
        }
        Value::Array(items) => {
            for (i, inner) in items.iter().enumerate() {
                at.push(Step::Index(i));
                find_bogus(inner, at, found);
                at.pop();
            }
        }
        _ => {}
    }
}

fn object_at<'a>(value: &'a mut Value, steps: &[Step]) -> &'a mut Map<String, Value> {
    let mut value = value;
    for step in steps {
        value = match step {
            Step::Key(key) => &mut value[key.as_str()],
            Step::Index(i) => &mut value[*i],
        };
    }
    value.as_object_mut().unwrap()
}

/// The path as `serde_path_to_error` writes it: `auth.consumers[0].api_keys[0]`, empty for the root.
fn concrete(steps: &[Step]) -> String {
    let mut path = String::new();
    for step in steps {
        match step {
            Step::Key(key) if path.is_empty() => path.push_str(key),
            Step::Key(key) => path = format!("{path}.{key}"),
            Step::Index(i) => path = format!("{path}[{i}]"),
        }
    }
    path
}

/// Whether a concrete path fits a README path (`[0]` fits `[]`, any map key fits `<name>`).
fn fits(readme_path: &str, concrete: &str) -> bool {
    let mut general = String::new();
    let mut chars = concrete.chars().peekable();
    while let Some(c) = chars.next() {
        general.push(c);
        if c == '[' {
            while chars.next_if(char::is_ascii_digit).is_some() {}
        }
    }
    let (a, b): (Vec<&str>, Vec<&str>) = (readme_path.split('.').collect(), general.split('.').collect());
    a.len() == b.len() && a.iter().zip(&b).all(|(x, y)| x == y || (x.starts_with('<') && x.ends_with('>')))
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

/// The text between backticks.
fn code_spans(text: &str) -> Vec<String> {
    text.split('`').skip(1).step_by(2).map(str::to_string).collect()
}

/// The names serde lists after `intro` (`unknown field `x`, ` or `unknown variant `x`, `), if it says that.
fn listed_after(message: &str, intro: &str) -> Option<Vec<String>> {
    let (_, rest) = message.split_once(intro)?;
    if rest.starts_with("there are no fields") {
        return Some(Vec::new());
    }
    Some(code_spans(rest))
}

fn compile(config: &Value) -> Result<(), String> {
    Pipeline::from_json(&serde_json::to_vec(config).unwrap()).map(drop).map_err(|e| e.to_string())
}

/// What the code says about one object.
#[derive(Default)]
struct Found {
    fields: BTreeSet<String>,
    required: BTreeSet<String>,
    /// Enum field → its values.
    enums: BTreeMap<String, BTreeSet<String>>,
    /// Tag field → the variants that have a probe.
    probed_variants: BTreeMap<String, BTreeSet<String>>,
}

/// Reads the fields of every probed object from serde's errors.
fn explore(probes: &[Probe], failures: &mut Vec<String>) -> BTreeMap<&'static str, Found> {
    let mut objects: BTreeMap<&'static str, Found> = BTreeMap::new();
    for probe in probes {
        let mut located = Vec::new();
        find_bogus(&probe.config, &mut Vec::new(), &mut located);
        assert_eq!(located.len(), 1, "{}: the probe needs exactly one {BOGUS} field", probe.path);
        let steps = &located[0];
        let at = concrete(steps);
        assert!(fits(probe.path, &at), "{}: the probe's {BOGUS} is at {at}", probe.path);
        let mut valid = probe.config.clone();
        object_at(&mut valid, steps).remove(BOGUS);
        if let Err(e) = compile(&valid) {
            panic!("{}: the probe's config without {BOGUS} is refused: {e}", probe.path);
        }
        // Says whether a config (the valid one, changed only inside the probed object) is accepted.
        let judge = |config: &Value| match probe.kind {
            Kind::Untagged(direct) => direct(Value::Object(object_at(&mut config.clone(), steps).clone())),
            Kind::Struct | Kind::Tagged(_) => compile(config),
        };

        let message = compile(&probe.config).expect_err("a stray field is accepted");
        let found = objects.entry(probe.path).or_default();
        let stray = format!("unknown field `{BOGUS}`, ");
        let fields = match probe.kind {
            Kind::Struct | Kind::Tagged(_) => {
                let here = [join(&at, BOGUS), if at.is_empty() { "(root)".into() } else { at.clone() }];
                if !here.iter().any(|p| message.starts_with(&format!("{p}: "))) {
                    panic!("{}: the stray field was refused elsewhere: {message}", probe.path);
                }
                listed_after(&message, &stray)
            }
            Kind::Untagged(direct) => {
                // serde reads an untagged value whole before it tries the variants, and serde_json places the
                // error late: the path names the value, or its list when more follows the list.
                let list = &steps[..steps.len() - 1];
                assert!(
                    [concrete(steps), concrete(list)].iter().any(|at| {
                        message.starts_with(&format!("{at}: data did not match any variant of untagged enum"))
                    }),
                    "{}: {message}",
                    probe.path
                );
                let object = Value::Object(object_at(&mut probe.config.clone(), steps).clone());
                listed_after(&direct(object).expect_err("a stray field is accepted"), &stray)
            }
        };
        let Some(mut fields) = fields else {
            panic!("{}: serde did not list the fields: {message}", probe.path);
        };
        if let Kind::Tagged(tag) = probe.kind {
            let variant = object_at(&mut valid.clone(), steps)[tag].as_str().unwrap().to_string();
            found.probed_variants.entry(tag.to_string()).or_default().insert(variant);
            fields.push(tag.to_string());
        }

        let present: Vec<String> = object_at(&mut valid.clone(), steps).keys().cloned().collect();
        for field in &present {
            let mut without = valid.clone();
            object_at(&mut without, steps).remove(field);
            if judge(&without).is_err_and(|e| e.contains(&format!("missing field `{field}`"))) {
                found.required.insert(field.clone());
            }
        }
        for field in &fields {
            let mut odd = valid.clone();
            object_at(&mut odd, steps).insert(field.clone(), json!(BOGUS_VALUE));
            if let Err(e) = judge(&odd) {
                if let Some(values) = listed_after(&e, &format!("unknown variant `{BOGUS_VALUE}`, ")) {
                    found.enums.insert(field.clone(), values.into_iter().collect());
                }
            }
        }
        let fields: BTreeSet<String> = fields.into_iter().collect();
        if !found.fields.is_empty() && matches!(probe.kind, Kind::Struct | Kind::Untagged(_)) {
            failures.push(format!("{}: probed twice", probe.path));
        }
        found.fields.extend(fields);
    }
    for (path, found) in &mut objects {
        for (tag, probed) in &found.probed_variants {
            let all = found.enums.get(tag).cloned().unwrap_or_default();
            if *probed != all {
                failures.push(format!(
                    "{path}: variants of `{tag}` {all:?}, probed {probed:?}; add a probe per variant"
                ));
            }
        }
    }
    objects
}

struct Row {
    field: String,
    ty: String,
    default: String,
}

/// The README's tables, by object path.
fn readme() -> BTreeMap<String, Vec<Row>> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let (_, section) =
        text.split_once("\n## Configuration reference\n").expect("README: no configuration reference");
    let section = section.split("\n## ").next().unwrap();
    let mut objects: BTreeMap<String, Vec<Row>> = BTreeMap::new();
    let mut current: Vec<String> = Vec::new();
    for line in section.lines() {
        if let Some(heading) = line.strip_prefix("### ") {
            current = if heading == "Top level" { vec![String::new()] } else { code_spans(heading) };
            assert!(!current.is_empty(), "README: the heading {heading:?} names no path");
            for path in &current {
                assert!(
                    objects.insert(path.clone(), Vec::new()).is_none(),
                    "README: `{path}` is documented twice"
                );
            }
        } else if line.starts_with('|') {
            let cells: Vec<&str> = line.trim().trim_matches('|').split('|').map(str::trim).collect();
            assert_eq!(cells.len(), 4, "README: a reference row needs 4 cells: {line}");
            if cells[0] == "field" || cells[0].starts_with("---") {
                continue;
            }
            assert!(!current.is_empty(), "README: a row outside an object's table: {line}");
            for path in &current {
                let row = Row {
                    field: cells[0].trim_matches('`').into(),
                    ty: cells[1].into(),
                    default: cells[2].into(),
                };
                objects.get_mut(path).unwrap().push(row);
            }
        }
    }
    objects
}

/// The object a row's type points at: `object` → `path.field`, `[object]` → `path.field[]`,
/// `{name: object}` → `path.field.<name>`.
fn child(path: &str, row: &Row) -> Option<String> {
    if !row.ty.split(|c: char| !c.is_ascii_alphanumeric()).any(|word| word == "object") {
        return None;
    }
    let mut child = join(path, &row.field);
    let mut rest = row.ty.as_str();
    loop {
        if let Some(inner) = rest.strip_prefix('[') {
            child.push_str("[]");
            rest = inner;
        } else if let Some((key, inner)) = rest.strip_prefix('{').and_then(|r| r.split_once(':')) {
            child = format!("{child}.<{}>", key.trim());
            rest = inner.trim_start();
        } else {
            return Some(child);
        }
    }
}

#[test]
fn the_readme_reference_matches_the_config_types() {
    let mut failures = Vec::new();
    let probes = probes();
    let code = explore(&probes, &mut failures);
    let readme = readme();

    let probed: BTreeSet<&str> = code.keys().copied().collect();
    let documented: BTreeSet<&str> = readme.keys().map(String::as_str).collect();
    for path in documented.difference(&probed) {
        failures.push(format!("README documents `{path}`, which no probe reaches; add one to probes()"));
    }
    for path in probed.difference(&documented) {
        failures.push(format!("README: no table for `{path}`"));
    }
    let mut pointed_at = BTreeSet::new();
    for (path, rows) in &readme {
        let Some(found) = code.get(path.as_str()) else { continue };
        let mut seen = BTreeSet::new();
        for row in rows {
            if !seen.insert(row.field.as_str()) {
                failures.push(format!("README: `{path}` lists `{}` twice", row.field));
            }
            if !found.fields.contains(&row.field) {
                failures.push(format!(
                    "README: `{path}` lists `{}`, which the config does not accept",
                    row.field
                ));
                continue;
            }
            let readme_required = row.default.starts_with("required");
            if readme_required != found.required.contains(&row.field) {
                let says = if readme_required { "required" } else { "optional" };
                failures.push(format!("README: `{path}.{}` is {says} there, not in the config", row.field));
            }
            let readme_values: BTreeSet<String> = code_spans(&row.ty).into_iter().collect();
            let values = found.enums.get(&row.field).cloned().unwrap_or_default();
            if readme_values != values {
                failures.push(format!(
                    "README: `{path}.{}` has the values {readme_values:?}, the config {values:?}",
                    row.field
                ));
            }
            if let Some(child) = child(path, row) {
                if !readme.contains_key(&child) {
                    failures.push(format!(
                        "README: the `{}` row of `{path}` points at `{child}`, which has no table",
                        row.field
                    ));
                }
                pointed_at.insert(child);
            }
        }
        for field in found.fields.iter().filter(|f| !seen.contains(f.as_str())) {
            failures.push(format!("README: `{path}` does not list `{field}`"));
        }
    }
    for path in readme.keys().filter(|p| !p.is_empty() && !pointed_at.contains(*p)) {
        failures.push(format!(
            "README: no row's type points at `{path}` (`object`, `[object]`, `{{name: object}}`)"
        ));
    }
    let fields: usize = code.values().map(|found| found.fields.len()).sum();
    println!("{} objects, {fields} fields checked", code.len());
    assert!(
        failures.is_empty(),
        "the configuration reference and the config types differ:\n{}",
        failures.join("\n")
    );
}
