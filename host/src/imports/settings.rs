//! `c41:skill/settings`: the granted services (name, kind, base URL; never
//! their auth headers) and the skill's settings table from the config.

use crate::runtime::InvocationCtx;
use crate::runtime::bindings::c41::skill::settings::{Host, Service};

impl Host for InvocationCtx {
    fn services(&mut self) -> wasmtime::Result<Vec<Service>> {
        Ok(self
            .services
            .iter()
            .map(|s| Service { name: s.name.clone(), kind: s.kind.clone(), url: s.url.clone() })
            .collect())
    }

    fn all(&mut self) -> wasmtime::Result<String> {
        Ok(serde_json::Value::Object(self.settings.clone()).to_string())
    }

    fn get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        Ok(self.settings.get(&key).map(|v| v.to_string()))
    }
}
