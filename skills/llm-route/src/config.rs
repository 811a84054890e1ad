//! The skill's settings (`[skills.llm-route.settings]` in the c41 config):
//! routes, aliases, model placement, classifier and timeouts. Backends are
//! not here: they are the `ollama`/`openai` services the config grants.
//!
//! ```toml
//! [skills.llm-route.settings]
//! default-route = "fast"
//! routes.coding = ["qwen3-coder:480b", "gpt-oss:120b"]
//! routes.fast = { models = ["gpt-oss:120b"], prefer-loaded = true }
//! aliases = { coder = "qwen3-coder:480b" }
//! models."kimi-k2" = { backend = "exo", id = "mlx-community/Kimi-K2-Instruct-4bit" }
//! classifier = { enabled = true, model = "llama3.2:3b" }
//! ```

use serde::Deserialize;
use serde_json::{Map, Value, json};

/// All settings, with defaults for everything.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", default, deny_unknown_fields)]
pub struct Settings {
    /// Task class → ordered candidate models. Order matters: it is the
    /// preference and the fallback order, and breaks classification ties.
    pub routes: Map<String, Value>,
    /// Short names for models (`coder` → `qwen3-coder:480b`) or routes.
    pub aliases: Map<String, Value>,
    /// The route for requests no rule classifies. Default: `fast` if there
    /// is such a route, else the first route.
    pub default_route: Option<String>,
    /// Per-model placement and tuning, by the model's name in the routes.
    pub models: Map<String, Value>,
    /// Extra keywords per route, added to the built-in ones.
    pub keywords: Map<String, Value>,
    /// The optional classifier model.
    pub classifier: Classifier,
    /// Messages longer than this (characters of the last user message) go to
    /// `long-message-route` when no stronger rule matched.
    pub long_message_chars: usize,
    /// The route for long messages.
    pub long_message_route: Option<String>,
    /// Try a loaded model of the route before cold ones (routes can opt out).
    pub prefer_loaded: bool,
    /// First-byte timeout when the model may need a cold load: loading a
    /// few hundred GB takes minutes, and giving up mid-load wastes it.
    pub first_byte_timeout_secs: u64,
    /// First-byte timeout when the model is known to be loaded.
    pub warm_first_byte_timeout_secs: u64,
    /// Longest silence between two streamed chunks.
    pub between_bytes_timeout_secs: u64,
    /// Connect timeout: a backend that is down should cost little.
    pub connect_timeout_secs: u64,
    /// After a backend is down, busy or times out, later calls skip it for
    /// this long (kept by the host across calls; 0 turns it off). A call
    /// whose every backend is cooling down tries them anyway.
    pub cooldown_secs: u64,
    /// How long a backend's model list (and which are loaded) is reused by
    /// later calls instead of asked again, in milliseconds (kept by the host
    /// across calls; 0 asks every call). A failed attempt on a backend
    /// forgets its list at once, as does a cold load (it may unload others).
    pub inventory_cache_ms: u64,
    /// Ollama `keep_alive` for every request (`"30m"`, `-1` = forever);
    /// per-model `keep-alive` overrides it.
    pub keep_alive: Option<Value>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            routes: Map::new(),
            aliases: Map::new(),
            default_route: None,
            models: Map::new(),
            keywords: Map::new(),
            classifier: Classifier::default(),
            long_message_chars: 6000,
            long_message_route: None,
            prefer_loaded: true,
            first_byte_timeout_secs: 900,
            warm_first_byte_timeout_secs: 180,
            between_bytes_timeout_secs: 120,
            connect_timeout_secs: 5,
            cooldown_secs: 30,
            inventory_cache_ms: 2000,
            keep_alive: None,
        }
    }
}

/// The classifier model, asked only when no deterministic rule matched.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", default, deny_unknown_fields)]
pub struct Classifier {
    /// Off by default: rules are free, a model call is not.
    pub enabled: bool,
    /// A small, fast model, ideally kept loaded.
    pub model: Option<String>,
    /// How long to wait for its answer before falling back to the default.
    pub timeout_secs: u64,
}

impl Default for Classifier {
    fn default() -> Self {
        Classifier { enabled: false, model: None, timeout_secs: 20 }
    }
}

/// One route, normalised.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// The task class.
    pub name: String,
    /// Candidate model names, in order.
    pub models: Vec<String>,
    /// Whether a loaded candidate may jump the queue.
    pub prefer_loaded: bool,
    /// What the route is for (shown to the classifier model).
    pub description: Option<String>,
}

/// Per-model settings, normalised.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelSettings {
    /// The granted service that serves it (otherwise: whichever lists it).
    pub backend: Option<String>,
    /// The id to send to the backend when it differs from the route name
    /// (exo and mlx use Hugging Face paths).
    pub id: Option<String>,
    /// Ollama `keep_alive` for this model.
    pub keep_alive: Option<Value>,
    /// First-byte timeout for this model's cold loads.
    pub first_byte_timeout_secs: Option<u64>,
}

/// The routes shipped when the config names none: the studio's five task
/// classes (the same as examples/configs/llm-route.toml).
pub fn default_routes() -> Map<String, Value> {
    let v = json!({
        "creative": ["kimi-k2", "minimax-m2.1", "gpt-oss:120b"],
        "coding": ["qwen3-coder:480b", "gpt-oss:120b"],
        "fast": ["gpt-oss:120b", "qwen3-coder:30b"],
        "reasoning": ["deepseek-v3.2", "gpt-oss:120b"],
        "balanced": ["minimax-m2.1", "kimi-k2", "gpt-oss:120b"],
    });
    match v {
        Value::Object(m) => m,
        _ => unreachable!(),
    }
}

impl Settings {
    /// Parse the settings object; the error names the offending key.
    pub fn from_json(v: Value) -> Result<Settings, String> {
        let mut s: Settings = serde_json::from_value(v).map_err(|e| e.to_string())?;
        if s.routes.is_empty() {
            s.routes = default_routes();
        }
        for (name, r) in &s.routes {
            route_of(name, r, s.prefer_loaded)?;
        }
        for (k, v) in &s.models {
            model_of(k, v)?;
        }
        Ok(s)
    }

    /// The routes, in config order.
    pub fn routes(&self) -> Vec<Route> {
        self.routes.iter().filter_map(|(n, r)| route_of(n, r, self.prefer_loaded).ok()).collect()
    }

    /// The route called `name`.
    pub fn route(&self, name: &str) -> Option<Route> {
        self.routes.get(name).and_then(|r| route_of(name, r, self.prefer_loaded).ok())
    }

    /// The route used when nothing else decides.
    pub fn default_route(&self) -> String {
        self.default_route
            .clone()
            .filter(|r| self.routes.contains_key(r))
            .or_else(|| self.routes.contains_key("fast").then(|| "fast".to_string()))
            .or_else(|| self.routes.keys().next().cloned())
            .unwrap_or_default()
    }

    /// What an alias stands for.
    pub fn alias(&self, name: &str) -> Option<String> {
        self.aliases.get(name).and_then(Value::as_str).map(str::to_string)
    }

    /// Settings of model `name` (empty when none are configured).
    pub fn model(&self, name: &str) -> ModelSettings {
        self.models.get(name).and_then(|v| model_of(name, v).ok()).unwrap_or_default()
    }

    /// Extra keywords configured for `route`.
    pub fn keywords(&self, route: &str) -> Vec<String> {
        self.keywords
            .get(route)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_lowercase).collect())
            .unwrap_or_default()
    }

    /// The routes, aliases and defaults in force, for the outcome data (the
    /// only place a caller can see them: `describe` cannot read settings).
    pub fn summary(&self) -> Value {
        let routes: Map<String, Value> = self
            .routes()
            .into_iter()
            .map(|r| {
                let mut v = json!({"models": r.models, "prefer_loaded": r.prefer_loaded});
                if let Some(d) = r.description {
                    v["description"] = json!(d);
                }
                (r.name, v)
            })
            .collect();
        json!({
            "routes": routes,
            "aliases": self.aliases,
            "default_route": self.default_route(),
            "classifier": if self.classifier.enabled { json!(self.classifier.model) } else { Value::Null },
        })
    }
}

fn route_of(name: &str, v: &Value, prefer_default: bool) -> Result<Route, String> {
    let strings = |a: &Vec<Value>| -> Result<Vec<String>, String> {
        a.iter()
            .map(|m| {
                m.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("routes.{name}: model names must be strings, got {m}"))
            })
            .collect()
    };
    let route = match v {
        Value::Array(a) => {
            Route { name: name.into(), models: strings(a)?, prefer_loaded: prefer_default, description: None }
        }
        Value::String(s) => {
            Route { name: name.into(), models: vec![s.clone()], prefer_loaded: prefer_default, description: None }
        }
        Value::Object(o) => {
            for k in o.keys() {
                if !matches!(k.as_str(), "models" | "prefer-loaded" | "description") {
                    return Err(format!(
                        "routes.{name}: unknown key `{k}` (expected models, prefer-loaded, description)"
                    ));
                }
            }
            let models = match o.get("models") {
                Some(Value::Array(a)) => strings(a)?,
                _ => return Err(format!("routes.{name}: `models` must be a list of model names")),
            };
            Route {
                name: name.into(),
                models,
                prefer_loaded: o.get("prefer-loaded").and_then(Value::as_bool).unwrap_or(prefer_default),
                description: o.get("description").and_then(Value::as_str).map(str::to_string),
            }
        }
        other => return Err(format!("routes.{name}: expected a list of models or a table, got {other}")),
    };
    if route.models.is_empty() {
        return Err(format!("routes.{name}: lists no models"));
    }
    Ok(route)
}

fn model_of(name: &str, v: &Value) -> Result<ModelSettings, String> {
    let Value::Object(o) = v else { return Err(format!("models.{name}: expected a table")) };
    let mut m = ModelSettings::default();
    for (k, val) in o {
        match k.as_str() {
            "backend" => m.backend = val.as_str().map(str::to_string),
            "id" => m.id = val.as_str().map(str::to_string),
            "keep-alive" => m.keep_alive = Some(val.clone()),
            "first-byte-timeout-secs" => m.first_byte_timeout_secs = val.as_u64(),
            _ => {
                return Err(format!(
                    "models.{name}: unknown key `{k}` (expected backend, id, keep-alive, first-byte-timeout-secs)"
                ));
            }
        }
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_of_routes() {
        let s = Settings::from_json(json!({
            "routes": {"coding": ["a", "b"], "fast": "c", "deep": {"models": ["d"], "prefer-loaded": false, "description": "hard problems"}},
            "aliases": {"coder": "a"},
            "models": {"d": {"backend": "exo", "id": "org/D", "keep-alive": -1}},
        }))
        .unwrap();
        assert_eq!(s.routes().len(), 3);
        assert_eq!(s.route("fast").unwrap().models, vec!["c"]);
        let deep = s.route("deep").unwrap();
        assert!(!deep.prefer_loaded);
        assert_eq!(deep.description.as_deref(), Some("hard problems"));
        assert_eq!(s.default_route(), "fast");
        assert_eq!(s.alias("coder").as_deref(), Some("a"));
        assert_eq!(s.model("d").backend.as_deref(), Some("exo"));
        assert_eq!(s.model("d").keep_alive, Some(json!(-1)));
        assert_eq!(s.model("zz"), ModelSettings::default());
    }

    #[test]
    fn defaults_and_errors() {
        let s = Settings::from_json(json!({})).unwrap();
        assert_eq!(s.routes().len(), 5);
        assert_eq!(s.default_route(), "fast");
        assert!(Settings::from_json(json!({"routes": {"x": []}})).unwrap_err().contains("routes.x"));
        assert!(Settings::from_json(json!({"routes": {"x": {"modles": ["a"]}}})).unwrap_err().contains("modles"));
        assert!(Settings::from_json(json!({"bogus": 1})).unwrap_err().contains("bogus"));
        assert!(Settings::from_json(json!({"models": {"a": {"backnd": "x"}}})).unwrap_err().contains("backnd"));
        let s = Settings::from_json(json!({"routes": {"b": ["x"], "a": ["y"]}, "default-route": "a"})).unwrap();
        assert_eq!(s.default_route(), "a");
        let s = Settings::from_json(json!({"routes": {"b": ["x"], "a": ["y"]}})).unwrap();
        assert_eq!(s.default_route(), "b");
    }
}
