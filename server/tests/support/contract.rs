//! The `/api/v1` contract: every answer a test sees is checked against the OpenAPI document the
//! server serves (issue 22) — the operation its method and path name, the response its status
//! names (or its `4XX` class), and that response's JSON Schema. A field the document does not
//! promise, or a promised field missing or of another type, fails the test that saw it.

use serde_json::Value;
use std::sync::OnceLock;

/// The document, as the server generates it.
pub fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| serde_json::from_str(app::api::openapi::document()).expect("the document is JSON"))
}

/// The path template of the document that `path` (no query) matches, e.g. `/api/v1/connections/{id}`.
fn template(path: &str) -> Option<&'static str> {
    let wanted: Vec<&str> = path.split('/').collect();
    let paths = document()["paths"].as_object()?;
    let matches = |t: &str| {
        let parts: Vec<&str> = t.split('/').collect();
        parts.len() == wanted.len()
            && parts.iter().zip(&wanted).all(|(p, w)| p == w || (p.starts_with('{') && p.ends_with('}')))
    };
    // A literal path wins over a template (`/webhooks/{id}` vs a literal of the same shape).
    paths.keys().find(|t| t.as_str() == path).or_else(|| paths.keys().find(|t| matches(t))).map(String::as_str)
}

/// Checks one answer; panics naming what does not match.
pub fn check(method: &str, path_and_query: &str, status: u16, body: &Value) {
    let path = path_and_query.split('?').next().unwrap_or_default();
    let Some(template) = template(path) else {
        // No such call: the one error shape, as everywhere.
        assert!(status >= 400, "{path} answered {status} but the OpenAPI document has no such path");
        validate(&serde_json::json!({"$ref": "#/components/schemas/ApiError"}), method, path_and_query, status, body);
        return;
    };
    let operation = &document()["paths"][template][method.to_ascii_lowercase()];
    assert!(operation.is_object(), "the OpenAPI document has no {method} {template}");
    let responses = &operation["responses"];
    let class = format!("{}XX", status / 100);
    let response = [status.to_string(), class, "default".to_owned()]
        .iter()
        .map(|k| &responses[k])
        .find(|r| r.is_object())
        .unwrap_or_else(|| panic!("{method} {template}: the document promises no {status} answer"));
    let Some(schema) = response.pointer("/content/application~1json/schema") else {
        assert!(body.is_null(), "{method} {template} {status}: the document promises no body, got {body}");
        return;
    };
    validate(schema, method, path_and_query, status, body);
}

/// Validates `body` against `schema`, evaluated inside the whole document so its
/// `#/components/…` refs resolve.
fn validate(schema: &Value, method: &str, path_and_query: &str, status: u16, body: &Value) {
    let mut root = document().clone();
    root["$schema"] = "https://json-schema.org/draft/2020-12/schema".into();
    for (k, v) in schema.as_object().expect("a schema object") {
        root[k] = v.clone();
    }
    let validator = jsonschema::validator_for(&root).expect("the response schema is valid JSON Schema");
    let problems: Vec<String> = validator.iter_errors(body).map(|e| format!("{} at {}", e, e.instance_path)).collect();
    assert!(
        problems.is_empty(),
        "{method} {path_and_query} answered {status} unlike its OpenAPI schema: {problems:?}\nbody: {body}"
    );
}
