//! Layering of configuration sources, in SPEC §8's order: `proxy.toml` → `IMGRELAY_*`
//! environment → command-line flags. Works on a raw TOML table so that every source can set any
//! key, then hands the table to serde once; errors name the key (and the variable it came from).

use super::Config;
use std::{collections::HashMap, fmt, path::Path};
use toml::{Table, Value};

const ENV_PREFIX: &str = "IMGRELAY_";

/// A configuration problem, naming the key it concerns. Exit code 2 at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(key: &str, message: impl Into<String>) -> Self {
        ConfigError {
            key: key.to_string(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "config key `{}`: {}", self.key, self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Loads, layers, types and validates the configuration.
///
/// `file`: an explicit `--config` path (must exist); `None` reads `./proxy.toml` when present.
/// `env`: the process environment (passed in so tests do not mutate the global one).
/// `listen`: the `--listen` flag.
pub fn load(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
    listen: Option<&str>,
) -> Result<Config, ConfigError> {
    let mut table = match file {
        Some(path) => read_file(path)?,
        None if Path::new("proxy.toml").is_file() => read_file(Path::new("proxy.toml"))?,
        None => Table::new(),
    };
    let mut from_env = HashMap::new();
    for (name, raw) in env {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let path: Vec<String> = rest.split("__").map(|p| p.to_ascii_lowercase()).collect();
        if path.iter().any(String::is_empty) {
            return Err(ConfigError::new(
                &name,
                "is not a key path (use IMGRELAY_SECTION__KEY)",
            ));
        }
        set(&mut table, &path, env_value(&raw)).map_err(|m| ConfigError::new(&name, m))?;
        from_env.insert(path.join("."), name);
    }
    if let Some(addr) = listen {
        set(
            &mut table,
            &["server".into(), "listen".into()],
            Value::String(addr.into()),
        )
        .map_err(|m| ConfigError::new("--listen", m))?;
    }

    let config: Config = serde_path_to_error::deserialize(Value::Table(table)).map_err(|e| {
        let key = e.path().to_string();
        let message = e.inner().to_string();
        match from_env.get(&key) {
            Some(var) => ConfigError::new(&key, format!("{message} (from {var})")),
            None => ConfigError::new(&key, message),
        }
    })?;
    config.validate()?;
    Ok(config)
}

fn read_file(path: &Path) -> Result<Table, ConfigError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(&name, format!("cannot read config file: {e}")))?;
    text.parse::<Table>()
        .map_err(|e| ConfigError::new(&name, format!("not valid TOML: {}", e.message())))
}

/// An environment value is TOML when it parses as a TOML value (`80`, `true`, `["a","b"]`),
/// otherwise a plain string (`./cache`, `5s`, `0.0.0.0:8080`).
fn env_value(raw: &str) -> Value {
    format!("v = {raw}")
        .parse::<Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| Value::String(raw.to_string()))
}

fn set(table: &mut Table, path: &[String], value: Value) -> Result<(), String> {
    let (last, parents) = path.split_last().ok_or("empty key")?;
    let mut cur = table;
    for (i, part) in parents.iter().enumerate() {
        let entry = cur
            .entry(part.clone())
            .or_insert_with(|| Value::Table(Table::new()));
        cur = entry
            .as_table_mut()
            .ok_or_else(|| format!("`{}` is not a table", path[..=i].join(".")))?;
    }
    cur.insert(last.clone(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn file(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    #[test]
    fn file_then_environment_then_flags() {
        let f = file("[server]\nlisten = \"127.0.0.1:1\"\n[cache]\ndir = \"/from/file\"\nmemory_bytes = \"1MiB\"\n");
        let c = load(
            Some(f.path()),
            env(&[
                ("IMGRELAY_CACHE__DIR", "/from/env"),
                ("IMGRELAY_TRANSFORM__QUALITY__JPEG", "70"),
                ("IMGRELAY_SECURITY__ALLOWED_HOSTS", r#"["a.com","*.b.org"]"#),
                ("IMGRELAY_UPSTREAM__TIMEOUT", "3s"),
                ("IMGRELAY_SERVER__ADMIN_TOKEN", "123456"),
                ("UNRELATED", "x"),
            ]),
            Some("127.0.0.1:2"),
        )
        .unwrap();
        assert_eq!(c.server.listen.port(), 2);
        assert_eq!(c.cache.dir, Path::new("/from/env"));
        assert_eq!(c.cache.memory_bytes.0, 1 << 20);
        assert_eq!(c.transform.quality.jpeg, 70);
        assert_eq!(c.security.allowed_hosts.len(), 2);
        assert_eq!(c.upstream.timeout.0, Duration::from_secs(3));
        assert_eq!(c.server.admin_token.expose(), "123456");
    }

    #[test]
    fn unknown_or_bad_keys_are_named() {
        let f = file("[server]\nlisten = \"127.0.0.1:1\"\nlistne = 3\n");
        let e = load(Some(f.path()), env(&[]), None).unwrap_err();
        assert!(
            e.key.contains("listne") || e.message.contains("listne"),
            "{e}"
        );

        let f = file("[upstream]\ntimeout = \"forever\"\n");
        let e = load(Some(f.path()), env(&[]), None).unwrap_err();
        assert_eq!(e.key, "upstream.timeout", "{e}");

        let e = load(
            Some(f.path()),
            env(&[
                ("IMGRELAY_UPSTREAM__TIMEOUT", "5s"),
                ("IMGRELAY_LIMITS__MAX_FRAMES", "many"),
            ]),
            None,
        )
        .unwrap_err();
        assert_eq!(e.key, "limits.max_frames", "{e}");
        assert!(e.message.contains("IMGRELAY_LIMITS__MAX_FRAMES"), "{e}");

        let e = load(Some(Path::new("/nonexistent/proxy.toml")), env(&[]), None).unwrap_err();
        assert!(e.message.contains("cannot read"), "{e}");

        let e = load(None, env(&[]), Some("not-an-address")).unwrap_err();
        assert_eq!(e.key, "server.listen", "{e}");

        for bad in [
            "w=640&url=x",
            "fit=squash",
            "w=99999",
            "a=top&fpx=0.1",
            "w=1&w=2",
        ] {
            let f = file(&format!("[rewrite]\nthumbnail = \"{bad}\"\n"));
            let e = load(Some(f.path()), env(&[]), None).unwrap_err();
            assert_eq!(e.key, "rewrite.thumbnail", "{bad}: {e}");
        }
        let f = file("[rewrite]\nthumbnail = \"w=640&h=360&fit=cover&a=attention\"\n");
        let c = load(Some(f.path()), env(&[]), None).unwrap();
        let t = c.rewrite.thumbnail_transform(8192).unwrap().unwrap();
        assert_eq!(
            t.to_string(),
            "w=640&h=360&fit=cover&a=attention&output=webp"
        );
    }

    #[test]
    fn rewrite_placeholder_takes_its_three_words_only() {
        use crate::config::Placeholder;
        for (word, want) in [
            ("none", Placeholder::None),
            ("color", Placeholder::Color),
            ("blur", Placeholder::Blur),
        ] {
            let f = file(&format!("[rewrite]\nplaceholder = \"{word}\"\n"));
            let c = load(Some(f.path()), env(&[]), None).unwrap();
            assert_eq!(c.rewrite.placeholder, want);
        }
        for bad in ["colour", "Blur", "", "lqip"] {
            let f = file(&format!("[rewrite]\nplaceholder = \"{bad}\"\n"));
            let e = load(Some(f.path()), env(&[]), None).unwrap_err();
            assert_eq!(e.key, "rewrite.placeholder", "{bad}: {e}");
        }
    }

    #[test]
    fn the_shipped_proxy_toml_is_the_defaults() {
        let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/proxy.toml");
        let c = load(Some(Path::new(shipped)), env(&[]), None).unwrap();
        let d = Config::default();
        assert_eq!(toml::to_string(&c).unwrap(), toml::to_string(&d).unwrap());
    }
}
