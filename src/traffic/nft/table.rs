//! A table as `nft -j list table` shows it, without what changes on every
//! load (handles) or says nothing of the rules (metainfo, the table line):
//! what apply compares.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NftTable {
    pub chains: Vec<NftChain>,
    /// Anything else listed in the table (sets, maps, …): flannel's has none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other: Vec<Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NftChain {
    pub name: String,
    /// A base chain's `type`, `hook`, `prio` and `policy`.
    pub base: Option<Value>,
    /// Each rule's `expr`.
    pub rules: Vec<Value>,
}

/// Keys of a chain object that make it a base chain.
const BASE: [&str; 4] = ["type", "hook", "prio", "policy"];

impl NftTable {
    pub fn rule_count(&self) -> usize {
        self.chains.iter().map(|c| c.rules.len()).sum()
    }

    pub fn has_chain(&self, name: &str) -> bool {
        self.chains.iter().any(|c| c.name == name)
    }

    /// Whether any rule masquerades fully-random.
    pub fn masquerades_fully_random(&self) -> bool {
        let fully = fully_random();
        self.chains.iter().flat_map(|c| &c.rules).filter_map(Value::as_array).flatten().any(|e| *e == fully)
    }

    /// The same with plain masquerade where fully-random is.
    pub fn without_fully_random(mut self) -> NftTable {
        let fully = fully_random();
        for e in self.chains.iter_mut().flat_map(|c| c.rules.iter_mut()).filter_map(Value::as_array_mut).flatten() {
            if *e == fully {
                *e = json!({"masquerade": null});
            }
        }
        self
    }
}

/// The statement `masquerade fully-random`, as listed (flags normalised).
pub(super) fn fully_random() -> Value {
    json!({"masquerade": {"flags": "fully-random"}})
}

/// The table in an `nft -j list table` answer.
pub fn parse_listing(text: &str) -> Result<NftTable, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("nft -j: {e}"))?;
    let items = v.get("nftables").and_then(Value::as_array).ok_or("nft -j: no `nftables` array")?;
    let mut t = NftTable::default();
    for item in items {
        let Some((kind, body)) = item.as_object().and_then(|o| o.iter().next()) else { continue };
        match kind.as_str() {
            "metainfo" | "table" => {}
            "chain" => {
                let name = body.get("name").and_then(Value::as_str).ok_or("nft -j: a chain without a name")?;
                let base: Map<String, Value> =
                    BASE.iter().filter_map(|k| Some((k.to_string(), body.get(*k)?.clone()))).collect();
                let base = (!base.is_empty()).then_some(Value::Object(base));
                t.chains.push(NftChain { name: name.to_string(), base, rules: Vec::new() });
            }
            "rule" => {
                let chain = body.get("chain").and_then(Value::as_str);
                let expr = normalised(body.get("expr").cloned().unwrap_or(Value::Null));
                match t.chains.iter_mut().find(|c| Some(c.name.as_str()) == chain) {
                    Some(c) => c.rules.push(expr),
                    None => t.other.push(item.clone()),
                }
            }
            _ => t.other.push(without_handle(item.clone())),
        }
    }
    Ok(t)
}

/// nft lists a single flag as a string and several as an array.
fn normalised(mut v: Value) -> Value {
    match &mut v {
        Value::Object(o) => {
            if let Some(Value::Array(flags)) = o.get("flags")
                && let [one] = flags.as_slice()
            {
                let one = one.clone();
                o.insert("flags".into(), one);
            }
            for x in o.values_mut() {
                *x = normalised(std::mem::take(x));
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| *x = normalised(std::mem::take(x))),
        _ => {}
    }
    v
}

fn without_handle(mut v: Value) -> Value {
    if let Some(body) = v.as_object_mut().and_then(|o| o.values_mut().next()).and_then(Value::as_object_mut) {
        body.remove("handle");
    }
    v
}
