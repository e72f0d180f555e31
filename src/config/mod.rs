//! The TOML configuration (SPEC.md section 5): a typed tree where every key is optional and has a
//! documented default, unknown keys are rejected with file:line, and every error in the file is
//! reported at once. The binary maps these sections onto each stage crate's own config.
//!
//! `weir.example.toml` at the repository root documents every key; a test keeps the two in step.

mod errors;
mod schema;
mod size;

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

pub use errors::{ConfigError, ConfigErrors};
pub use schema::*;
#[cfg(test)]
pub use size::ByteSize;

impl Config {
    /// Reads and validates a config file, collecting every error in it.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors::single(ConfigError { file: path.to_path_buf(), line: None, message: format!("cannot read: {e}") })
        })?;
        Config::parse(&text, path)
    }

    /// Parses config text; `path` only names the source in errors and anchors relative paths.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigErrors> {
        let mut errors = Collector { file: path.to_path_buf(), text, errors: Vec::new() };
        let (doc, syntax_errors) = DeTable::parse_recoverable(text);
        for e in syntax_errors {
            errors.toml(&e);
        }
        if !errors.errors.is_empty() {
            return Err(ConfigErrors(errors.errors));
        }
        let mut config = Config::default();
        for (name, value) in doc.into_inner() {
            let section = name.get_ref().as_ref();
            let span = name.span();
            match section {
                "capture" => config.capture = errors.section(section, value, span),
                "vars" => config.vars = errors.section(section, value, span),
                "stream" => config.stream = errors.section(section, value, span),
                "app_layer" => config.app_layer = errors.section(section, value, span),
                "detect" => config.detect = errors.section(section, value, span),
                "output" => config.output = errors.section(section, value, span),
                "sandbox" => config.sandbox = errors.section(section, value, span),
                "central" => config.central = errors.section(section, value, span),
                "exclusions" => config.exclusions = errors.section(section, value, span),
                "icap" => config.icap = errors.section(section, value, span),
                "exception_policy" => config.exception_policy = errors.section(section, value, span),
                other => errors.at(
                    span.start,
                    format!(
                        "unknown section [{other}] (expected one of: capture, vars, stream, app_layer, detect, \
                         output, sandbox, central, exclusions, icap, exception_policy)"
                    ),
                ),
            }
        }
        for (section, message) in config.validate() {
            errors.errors.push(ConfigError { file: path.to_path_buf(), line: None, message: format!("[{section}] {message}") });
        }
        // Report in file order, as a person reads the file; cross-key errors come last.
        errors.errors.sort_by_key(|e| e.line.unwrap_or(usize::MAX));
        if errors.errors.is_empty() {
            config.resolve_paths(path.parent().unwrap_or(Path::new(".")));
            Ok(config)
        } else {
            Err(ConfigErrors(errors.errors))
        }
    }

    /// The file names that check-config reads besides the config itself.
    pub fn referenced_files(&self) -> Vec<PathBuf> {
        let mut files = self.detect.rules.clone();
        files.extend(self.detect.classification.clone());
        files.extend(self.detect.feeds.iter().map(|f| f.path.clone()));
        files
    }
}

struct Collector<'t> {
    file: PathBuf,
    text: &'t str,
    errors: Vec<ConfigError>,
}

impl Collector<'_> {
    fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count() + 1
    }

    fn at(&mut self, offset: usize, message: String) {
        let line = Some(self.line_of(offset));
        self.errors.push(ConfigError { file: self.file.clone(), line, message });
    }

    fn toml(&mut self, e: &toml::de::Error) {
        let line = e.span().map(|s| self.line_of(s.start));
        self.errors.push(ConfigError { file: self.file.clone(), line, message: e.message().trim().to_string() });
    }

    /// Deserializes one section. Each key is first checked on its own (every key has a default, so
    /// a table holding one key is a valid section), which is how one pass reports every bad key
    /// with its own line rather than stopping at the first.
    fn section<T: DeserializeOwned + Default>(
        &mut self,
        name: &str,
        value: Spanned<DeValue<'_>>,
        name_span: std::ops::Range<usize>,
    ) -> T {
        let DeValue::Table(table) = value.get_ref() else {
            self.at(name_span.start, format!("[{name}] must be a table"));
            return T::default();
        };
        let before = self.errors.len();
        for (key, item) in table.iter() {
            let mut single = DeTable::new();
            single.insert(key.clone(), item.clone());
            let span = key.span().start..item.span().end;
            let probe = Spanned::new(span, DeValue::Table(single));
            if let Err(e) = T::deserialize(ValueDeserializer::from(probe)) {
                let line = e.span().map(|s| self.line_of(s.start)).or(Some(self.line_of(key.span().start)));
                self.errors.push(ConfigError {
                    file: self.file.clone(),
                    line,
                    message: format!("[{name}] {}", e.message().trim()),
                });
            }
        }
        if self.errors.len() > before {
            return T::default();
        }
        match T::deserialize(ValueDeserializer::from(value)) {
            Ok(v) => v,
            Err(e) => {
                self.toml(&e);
                T::default()
            }
        }
    }
}

#[cfg(test)]
mod tests;
