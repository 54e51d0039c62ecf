use serde::{Deserialize, Serialize};

/// Tokens one request used, as the provider reported them. Budgets settle from this and metrics count it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens, cached ones included (OpenAI's `prompt_tokens`).
    pub input_tokens: u64,
    /// Completion tokens, reasoning ones included (OpenAI's `completion_tokens`).
    pub output_tokens: u64,
    /// Of `input_tokens`, those served from the provider's prompt cache.
    pub cached_input_tokens: u64,
    /// Of `output_tokens`, those spent on hidden reasoning.
    pub reasoning_tokens: u64,
}

impl Usage {
    pub fn total(&self) -> u64 {
        self.input_tokens.saturating_add(self.output_tokens)
    }

    /// The OpenAI `usage` object clients receive.
    pub fn to_openai(&self) -> serde_json::Value {
        serde_json::json!({
            "prompt_tokens": self.input_tokens,
            "completion_tokens": self.output_tokens,
            "total_tokens": self.total(),
            "prompt_tokens_details": { "cached_tokens": self.cached_input_tokens },
            "completion_tokens_details": { "reasoning_tokens": self.reasoning_tokens },
        })
    }

    /// Reads an OpenAI-shaped `usage` object (OpenAI, Azure, Mistral and compatible servers); missing
    /// fields count as zero.
    pub fn from_openai(usage: &serde_json::Value) -> Usage {
        let n = |pointer: &str| usage.pointer(pointer).and_then(serde_json::Value::as_u64).unwrap_or(0);
        Usage {
            input_tokens: n("/prompt_tokens"),
            output_tokens: n("/completion_tokens"),
            cached_input_tokens: n("/prompt_tokens_details/cached_tokens"),
            reasoning_tokens: n("/completion_tokens_details/reasoning_tokens"),
        }
    }
}
