//! A hostile step: `run` tries to reach outside its sandbox (a file, the
//! root directory, an environment variable) and reports what it saw. The
//! host asserts that nothing leaks without grants, and that what a manifest
//! grants is visible.

wit_bindgen::generate!({ path: "../../../wit/v0.1", world: "step" });

use exports::nova::plugin::workflow_step::{Guest, Info, PluginError};
use minijson::{Value, quote_opt};

struct Component;

const DEFAULT_PATH: &str = "/etc/hostname";
const DEFAULT_ENV: &str = "HOME";

/// The string field `key` of `config`, else of `input`, else `default`.
fn field(config: &Option<Value>, input: &Option<Value>, key: &str, default: &str) -> String {
    [config, input]
        .into_iter()
        .flatten()
        .find_map(|v| v.get(key).and_then(Value::as_str))
        .unwrap_or(default)
        .to_owned()
}

impl Guest for Component {
    fn describe() -> Info {
        Info {
            name: "evil-escape".to_owned(),
            version: "1.0.0".to_owned(),
            description: "Tries to read a file, list /, read an environment variable, connect out and read the clock."
                .to_owned(),
        }
    }

    /// Reads `path` (default "/etc/hostname") and env var `env` (default
    /// "HOME"), taken from config, else from input, else the defaults;
    /// unparsable JSON counts as absent. Lists "/" too. Always returns Ok:
    /// `{"path": P, "file": <contents or null>, "file_error": <msg or null>,
    ///   "env_name": E, "env": <value or null>,
    ///   "dir_entries": <count of entries in "/" or null>, "dir_error": <msg or null>,
    ///   "net": <reply or null>, "net_error": <msg or null>, "clock_secs": <wall clock>}`.
    /// With `connect` ("host:port"), it also connects there and sends "ping".
    fn run(input: String, config: String) -> Result<String, PluginError> {
        let config = minijson::parse(&config).ok();
        let input = minijson::parse(&input).ok();
        let path = field(&config, &input, "path", DEFAULT_PATH);
        let env_name = field(&config, &input, "env", DEFAULT_ENV);

        let (file, file_error) = match std::fs::read(&path) {
            Ok(bytes) => (Some(String::from_utf8_lossy(&bytes).into_owned()), None),
            Err(e) => (None, Some(e.to_string())),
        };
        let env = std::env::var_os(&env_name).map(|v| v.to_string_lossy().into_owned());
        let (dir_entries, dir_error) = match std::fs::read_dir("/") {
            Ok(entries) => (Some(entries.count()), None),
            Err(e) => (None, Some(e.to_string())),
        };
        // Only with a `connect` address: send "ping", read the reply.
        let connect = field(&config, &input, "connect", "");
        let (net, net_error) = if connect.is_empty() {
            (None, None)
        } else {
            match ping(&connect) {
                Ok(reply) => (Some(reply), None),
                Err(e) => (None, Some(e.to_string())),
            }
        };
        let clock_secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());

        Ok(format!(
            "{{\"path\": {}, \"file\": {}, \"file_error\": {}, \"env_name\": {}, \"env\": {}, \
             \"dir_entries\": {}, \"dir_error\": {}, \"net\": {}, \"net_error\": {}, \
             \"clock_secs\": {clock_secs}}}",
            minijson::quote(&path),
            quote_opt(file.as_deref()),
            quote_opt(file_error.as_deref()),
            minijson::quote(&env_name),
            quote_opt(env.as_deref()),
            dir_entries.map_or_else(|| "null".to_owned(), |n| n.to_string()),
            quote_opt(dir_error.as_deref()),
            quote_opt(net.as_deref()),
            quote_opt(net_error.as_deref()),
        ))
    }
}

/// Connects to `addr`, sends "ping" and returns what comes back.
fn ping(addr: &str) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.write_all(b"ping")?;
    stream.shutdown(std::net::Shutdown::Write)?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply)?;
    Ok(reply)
}

export!(Component);
