//! The price table budgets charge from: per model, per million tokens, with per-consumer overrides.
//! Money is counted in micro-units (millionths of the configured currency) as integers, so settling
//! many small requests never drifts.

use std::collections::HashMap;

use serde::Deserialize;
use tollgate_ai::Usage;
use tollgate_core::{ConfigError, ConfigPath};

/// The model key that prices any model not listed by name.
pub const ANY_MODEL: &str = "*";
const MICROS: u128 = 1_000_000;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPrices {
    /// Model name (or `*`) to price.
    #[serde(default)]
    pub models: HashMap<String, RawPrice>,
    /// Consumer name to model name (or `*`) to price; consulted before `models`.
    #[serde(default)]
    pub consumers: HashMap<String, HashMap<String, RawPrice>>,
}

/// Prices in currency per million tokens.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPrice {
    pub input: f64,
    pub output: f64,
    /// Absent: cached input costs as much as input.
    #[serde(default)]
    pub cached_input: Option<f64>,
}

/// Micro-units per million tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Price {
    input: u64,
    output: u64,
    cached_input: u64,
}

impl Price {
    /// What `usage` costs, in micro-units, rounded up so that no request is free by rounding.
    pub fn cost(&self, usage: &Usage) -> u64 {
        let cached = usage.cached_input_tokens.min(usage.input_tokens);
        let total = u128::from(usage.input_tokens - cached) * u128::from(self.input)
            + u128::from(cached) * u128::from(self.cached_input)
            + u128::from(usage.output_tokens) * u128::from(self.output);
        u64::try_from(total.div_ceil(MICROS)).unwrap_or(u64::MAX)
    }
}

/// A resolved price and the model name it is counted under in metrics (bounded: a configured key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PriceMatch<'a> {
    pub price: Price,
    pub model_label: &'a str,
}

#[derive(Clone, Debug, Default)]
pub struct PriceTable {
    models: HashMap<String, Price>,
    consumers: HashMap<String, HashMap<String, Price>>,
}

impl PriceTable {
    pub fn compile(raw: RawPrices, path: &ConfigPath) -> Result<PriceTable, ConfigError> {
        let compile_map = |raw: HashMap<String, RawPrice>, at: &ConfigPath| {
            raw.into_iter()
                .map(|(model, p)| {
                    let at = at.field(&model);
                    Ok((model, compile_price(&p, &at)?))
                })
                .collect::<Result<HashMap<_, _>, ConfigError>>()
        };
        let models = compile_map(raw.models, &path.field("models"))?;
        let consumers = raw
            .consumers
            .into_iter()
            .map(|(consumer, prices)| {
                let at = path.field("consumers").field(&consumer);
                Ok((consumer, compile_map(prices, &at)?))
            })
            .collect::<Result<HashMap<_, _>, ConfigError>>()?;
        Ok(PriceTable { models, consumers })
    }

    pub fn is_empty(&self) -> bool {
        self.models.is_empty() && self.consumers.is_empty()
    }

    /// The price `consumer` pays for `model`: their override for the model, their `*`, the model's
    /// price, then the table's `*`.
    pub fn lookup<'a>(&'a self, consumer: Option<&str>, model: &str) -> Option<PriceMatch<'a>> {
        let own = consumer.and_then(|c| self.consumers.get(c));
        let tables = own.into_iter().chain([&self.models]);
        for table in tables {
            for key in [model, ANY_MODEL] {
                if let Some((name, price)) = table.get_key_value(key) {
                    return Some(PriceMatch { price: *price, model_label: name });
                }
            }
        }
        None
    }
}

fn compile_price(raw: &RawPrice, path: &ConfigPath) -> Result<Price, ConfigError> {
    let micros = |value: f64, field: &str| {
        if !value.is_finite() || !(0.0..=1_000_000.0).contains(&value) {
            return Err(path.field(field).error("must be a price between 0 and 1000000 per million tokens"));
        }
        // In range, so the cast cannot saturate.
        Ok((value * 1e6).round() as u64)
    };
    let input = micros(raw.input, "input")?;
    Ok(Price {
        input,
        output: micros(raw.output, "output")?,
        cached_input: raw.cached_input.map_or(Ok(input), |c| micros(c, "cached_input"))?,
    })
}

/// Micro-units as a decimal amount for messages, e.g. `1.250000`.
pub fn format_micros(micros: u64) -> String {
    format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(json: serde_json::Value) -> Result<PriceTable, ConfigError> {
        let raw: RawPrices = serde_json::from_value(json).unwrap();
        PriceTable::compile(raw, &ConfigPath::root().field("ratelimit").field("prices"))
    }

    fn usage(input: u64, cached: u64, output: u64) -> Usage {
        Usage { input_tokens: input, output_tokens: output, cached_input_tokens: cached, reasoning_tokens: 0 }
    }

    #[test]
    fn costs_split_input_cached_and_output() {
        let t =
            table(serde_json::json!({"models": {"m": {"input": 2.5, "output": 10, "cached_input": 1.25}}}))
                .unwrap();
        let price = t.lookup(None, "m").unwrap().price;
        // 1M input of which 0.4M cached, 0.1M output: 0.6*2.5 + 0.4*1.25 + 0.1*10 = 3.0
        assert_eq!(price.cost(&usage(1_000_000, 400_000, 100_000)), 3_000_000);
        // One token at 2.5/M is 2.5 micro-units: rounded up, never free.
        assert_eq!(price.cost(&usage(1, 0, 0)), 3);
        assert_eq!(price.cost(&Usage::default()), 0);
        assert_eq!(format_micros(3_000_001), "3.000001");
    }

    #[test]
    fn consumer_overrides_win_then_wildcards() {
        let t = table(serde_json::json!({
            "models": {"m": {"input": 1, "output": 2}, "*": {"input": 9, "output": 9}},
            "consumers": {"alice": {"m": {"input": 0.5, "output": 1}}, "bob": {"*": {"input": 0, "output": 0}}}
        }))
        .unwrap();
        let input = |c: Option<&str>, m: &str| t.lookup(c, m).map(|p| p.price.cost(&usage(1_000_000, 0, 0)));
        assert_eq!(input(Some("alice"), "m"), Some(500_000));
        assert_eq!(input(Some("alice"), "other"), Some(9_000_000));
        assert_eq!(input(Some("bob"), "m"), Some(0));
        assert_eq!(input(None, "m"), Some(1_000_000));
        assert_eq!(t.lookup(None, "other").unwrap().model_label, "*");
        assert_eq!(input(None, "m"), input(Some("carol"), "m"));
        // Cached input defaults to the input price.
        assert_eq!(t.lookup(None, "m").unwrap().price.cost(&usage(1_000_000, 1_000_000, 0)), 1_000_000);
    }

    #[test]
    fn bad_prices_name_their_path() {
        let err = table(serde_json::json!({"consumers": {"alice": {"m": {"input": -1, "output": 1}}}}))
            .unwrap_err();
        assert_eq!(err.path.to_string(), "ratelimit.prices.consumers.alice.m.input");
    }
}
