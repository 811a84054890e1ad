//! From a route's model list to concrete attempts: which backend serves each
//! model, in which order to try them, and whether each is already loaded.

use crate::config::Settings;
use serde_json::{Value, json};

/// The two protocols a backend can speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Ollama's native API.
    Ollama,
    /// An OpenAI-compatible server.
    OpenAi,
}

impl Kind {
    /// The service kind in the c41 config.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Ollama => "ollama",
            Kind::OpenAi => "openai",
        }
    }
}

/// What discovery learned about one granted backend.
#[derive(Debug, Clone)]
pub struct Backend {
    /// The service name in the config.
    pub name: String,
    /// Its protocol.
    pub kind: Kind,
    /// Base URL.
    pub url: String,
    /// Models it lists; `None` when the listing failed.
    pub listed: Option<Vec<String>>,
    /// Models it has loaded; `None` when it cannot tell.
    pub loaded: Option<Vec<String>>,
    /// Why it is unreachable, if it is.
    pub down: Option<String>,
}

/// `x` and `x:latest` are one Ollama model; other names compare exactly.
pub fn same_model(a: &str, b: &str) -> bool {
    fn canon(s: &str) -> String {
        if s.contains(':') { s.to_string() } else { format!("{s}:latest") }
    }
    a == b || canon(a) == canon(b)
}

impl Backend {
    /// The backend's own spelling of `id`, if it lists the model.
    pub fn listed_as(&self, id: &str) -> Option<&str> {
        self.listed.as_ref()?.iter().find(|m| same_model(m, id)).map(String::as_str)
    }

    /// Whether `id` is loaded, when the backend can tell.
    pub fn is_loaded(&self, id: &str) -> Option<bool> {
        self.loaded.as_ref().map(|l| l.iter().any(|m| same_model(m, id)))
    }

    /// As output data.
    pub fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "kind": self.kind.as_str(),
            "url": self.url,
            "up": self.down.is_none(),
            "error": self.down,
            "models": self.listed.as_ref().map(Vec::len),
            "loaded": self.loaded,
        })
    }
}

/// One model on one backend, to be tried.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// The model's name in the routes.
    pub model: String,
    /// The id sent to the backend.
    pub id: String,
    /// Index into the backends; `None` when the configured backend is not
    /// granted (the attempt then fails without a request).
    pub backend: Option<usize>,
    /// Whether it is loaded (`None`: unknown).
    pub loaded: Option<bool>,
    /// How the backend was chosen: `configured`, `listed` or `unlisted`.
    pub placement: &'static str,
}

/// The candidates for `models`, in the order to try them, and a note when
/// load awareness changed that order.
pub fn candidates(
    settings: &Settings,
    models: &[String],
    backends: &[Backend],
    prefer_loaded: bool,
) -> (Vec<Candidate>, Option<String>) {
    let mut out: Vec<Candidate> = Vec::new();
    for model in models {
        let ms = settings.model(model);
        let wanted = ms.id.clone().unwrap_or_else(|| model.clone());
        let mut push = |backend: Option<usize>, placement: &'static str| {
            let (id, loaded) = match backend.map(|i| &backends[i]) {
                // The backend's spelling, unless it only adds Ollama's `:latest`.
                Some(b) => match b.listed_as(&wanted) {
                    Some(listed) if listed.strip_suffix(":latest") != Some(wanted.as_str()) => {
                        (listed.to_string(), b.is_loaded(&wanted))
                    }
                    _ => (wanted.clone(), b.is_loaded(&wanted)),
                },
                None => (wanted.clone(), None),
            };
            let c = Candidate { model: model.clone(), id, backend, loaded, placement };
            if !out.iter().any(|o| o.backend == c.backend && o.id == c.id) {
                out.push(c);
            }
        };
        if let Some(name) = &ms.backend {
            push(backends.iter().position(|b| &b.name == name), "configured");
            continue;
        }
        let listing: Vec<usize> = (0..backends.len()).filter(|&i| backends[i].listed_as(&wanted).is_some()).collect();
        if listing.is_empty() {
            // Nobody lists it. It may be on a backend whose listing failed
            // (a down one shows up as a `down` attempt); otherwise ask the
            // first reachable backend anyway: some servers list lazily, and a
            // missing model then fails with the server's own "not found".
            let unknown: Vec<usize> = (0..backends.len()).filter(|&i| backends[i].listed.is_none()).collect();
            let picks = if unknown.is_empty() {
                (0..backends.len())
                    .find(|&i| backends[i].down.is_none())
                    .or(if backends.is_empty() { None } else { Some(0) })
                    .into_iter()
                    .collect()
            } else {
                unknown
            };
            for i in picks {
                push(Some(i), "unlisted");
            }
            continue;
        }
        // Where several backends have it, a loaded copy goes first.
        let mut listing = listing;
        listing.sort_by_key(|&i| backends[i].is_loaded(&wanted) != Some(true));
        for i in listing {
            push(Some(i), "listed");
        }
    }
    if !prefer_loaded {
        return (out, None);
    }
    let first = out.first().cloned();
    let mut reordered: Vec<Candidate> = out.iter().filter(|c| c.loaded == Some(true)).cloned().collect();
    reordered.extend(out.iter().filter(|c| c.loaded != Some(true)).cloned());
    let note = match (first, reordered.first()) {
        (Some(f), Some(n)) if f != *n => Some(format!(
            "{} is loaded, so it goes before {} ({})",
            n.model,
            f.model,
            if f.loaded == Some(false) { "not loaded" } else { "load state unknown" }
        )),
        _ => None,
    };
    (reordered, note)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend(name: &str, listed: &[&str], loaded: Option<&[&str]>) -> Backend {
        Backend {
            name: name.into(),
            kind: Kind::Ollama,
            url: format!("http://{name}"),
            listed: Some(listed.iter().map(|s| s.to_string()).collect()),
            loaded: loaded.map(|l| l.iter().map(|s| s.to_string()).collect()),
            down: None,
        }
    }

    fn names(c: &[Candidate]) -> Vec<String> {
        c.iter().map(|c| format!("{}@{}", c.id, c.backend.map(|b| b.to_string()).unwrap_or("-".into()))).collect()
    }

    fn models(m: &[&str]) -> Vec<String> {
        m.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn placement_and_load_awareness() {
        let s = Settings::from_json(json!({"models": {"big": {"backend": "exo", "id": "org/Big"}}})).unwrap();
        let bs = vec![
            backend("a", &["qwen3-coder:latest", "gpt-oss:120b"], Some(&["gpt-oss:120b"])),
            backend("b", &["qwen3-coder"], None),
            Backend { kind: Kind::OpenAi, ..backend("exo", &["org/Big"], None) },
        ];
        let (c, note) = candidates(&s, &models(&["qwen3-coder", "gpt-oss:120b", "big", "nope"]), &bs, false);
        assert_eq!(names(&c), vec!["qwen3-coder@0", "qwen3-coder@1", "gpt-oss:120b@0", "org/Big@2", "nope@0"]);
        assert_eq!(note, None);
        assert_eq!(c[3].placement, "configured");
        assert_eq!(c[4].placement, "unlisted");
        let (c, note) = candidates(&s, &models(&["qwen3-coder", "gpt-oss:120b"]), &bs, true);
        assert_eq!(names(&c), vec!["gpt-oss:120b@0", "qwen3-coder@0", "qwen3-coder@1"]);
        assert!(note.unwrap().contains("gpt-oss:120b is loaded"));
        assert_eq!(c[0].loaded, Some(true));
        assert_eq!(c[1].loaded, Some(false));
        assert_eq!(c[2].loaded, None);
    }

    #[test]
    fn unlisted_models_go_to_a_reachable_backend() {
        let s = Settings::from_json(json!({"models": {"x": {"backend": "gone"}}})).unwrap();
        let mut down = backend("a", &[], None);
        down.down = Some("connection refused".into());
        down.listed = None;
        let bs = vec![down, backend("b", &[], None)];
        let (c, _) = candidates(&s, &models(&["m", "x"]), &bs, true);
        assert_eq!(names(&c), vec!["m@0", "x@-"], "a backend that could not list may have it");
        let (c, _) = candidates(&s, &models(&["m"]), &bs[1..], true);
        assert_eq!(names(&c), vec!["m@0"], "all listings known: the first reachable backend");
        let mut bs = bs;
        bs[1].down = Some("refused".into());
        bs[1].listed = None;
        bs[0].down = None;
        bs[0].listed = Some(vec![]);
        let (c, _) = candidates(&s, &models(&["m"]), &bs, true);
        assert_eq!(names(&c), vec!["m@1"], "its listing is unknown");
        assert!(same_model("a", "a:latest") && !same_model("a:1b", "a"));
    }
}
