//! Token counts from a turn's closing message. Agents name them differently
//! (`input_tokens`, `inputTokens`, …), so both spellings are read.

use serde_json::Value;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub input: u64,
    pub output: u64,
}

impl std::ops::Add for Usage {
    type Output = Usage;

    fn add(self, other: Usage) -> Usage {
        Usage {
            input: self.input + other.input,
            output: self.output + other.output,
        }
    }
}

fn count(usage: &Value, names: &[&str]) -> Option<u64> {
    names
        .iter()
        .find_map(|n| usage.get(*n).and_then(Value::as_u64))
}

impl Usage {
    /// The counts in a closing message's `usage`, when it carries any.
    pub fn from_json(usage: &Value) -> Option<Usage> {
        let input = count(usage, &["input_tokens", "inputTokens", "prompt_tokens"]);
        let output = count(
            usage,
            &["output_tokens", "outputTokens", "completion_tokens"],
        );
        (input.is_some() || output.is_some()).then(|| Usage {
            input: input.unwrap_or(0),
            output: output.unwrap_or(0),
        })
    }

    pub fn describe(self) -> String {
        format!(
            "{} in · {} out tokens",
            group(self.input),
            group(self.output)
        )
    }
}

/// `12345` → `12,345`.
fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (k, c) in digits.chars().enumerate() {
        if k > 0 && (digits.len() - k).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_either_spelling() {
        assert_eq!(
            Usage::from_json(&json!({"input_tokens": 10, "output_tokens": 2})),
            Some(Usage {
                input: 10,
                output: 2
            })
        );
        assert_eq!(
            Usage::from_json(&json!({"inputTokens": 7, "totalTokens": 9})),
            Some(Usage {
                input: 7,
                output: 0
            })
        );
        assert_eq!(Usage::from_json(&json!({"cost": 1.5})), None);
        assert_eq!(Usage::from_json(&json!(null)), None);
    }

    #[test]
    fn describes_with_grouped_digits() {
        let u = Usage {
            input: 1_234_567,
            output: 89,
        } + Usage {
            input: 1,
            output: 911,
        };
        assert_eq!(u.describe(), "1,234,568 in · 1,000 out tokens");
    }
}
