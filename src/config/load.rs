//! Reading `.env` and the environment into a `Config`. (Placeholder: defaults only; the full
//! loader with validation lands with the configuration work.)
use std::collections::BTreeMap;
use std::path::Path;

use super::{Config, ConfigError};

/// Loads the configuration: `env_file` (or `./.env` when it exists) overlaid by the process
/// environment.
pub fn load(env_file: Option<&Path>) -> Result<Config, ConfigError> {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    load_from(env_file, &env)
}

/// Loads from a file and an explicit environment map (what tests drive).
pub fn load_from(
    _env_file: Option<&Path>,
    _env: &BTreeMap<String, String>,
) -> Result<Config, ConfigError> {
    Ok(Config::default())
}
