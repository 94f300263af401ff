//! Validation of tool arguments against each tool's JSON Schema 2020-12 `inputSchema`.
//! (Being filled in; see the tools helper.)

use serde_json::Value;

/// A schema could not be compiled.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SchemaError(pub String);

/// A compiled input schema.
pub struct InputValidator {
    validator: jsonschema::Validator,
}

impl InputValidator {
    pub fn compile(schema: &Value) -> Result<Self, SchemaError> {
        let validator = jsonschema::draft202012::new(schema).map_err(|e| SchemaError(e.to_string()))?;
        Ok(Self { validator })
    }

    /// Checks an instance; on failure returns one actionable message per violation.
    pub fn validate(&self, instance: &Value) -> Result<(), Vec<String>> {
        let errors: Vec<String> = self.validator.iter_errors(instance).map(|e| format!("{}", e.instance_path())).collect();
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }
}
