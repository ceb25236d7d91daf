//! `nova plugin new|build|test|dev`: writing plugins, on the author's
//! machine. A plugin project is a directory with `nova-plugin.toml` (its
//! name, kind and language), the WIT it targets under `wit/`, and the
//! sources of its language; `build/NAME.wasm` is what it builds.
//!
//! Unlike `nova plugins …`, these verbs need no running host, except
//! `dev --url`, which installs into one.

mod build;
mod dev;
mod new;
mod test;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use serde::Deserialize;

use super::{Failure, Remote, block_on, finish};

/// The project file at a project's root.
pub const PROJECT_FILE: &str = "nova-plugin.toml";

/// `nova plugin …`
#[derive(Args, Debug)]
pub struct PluginArgs {
    #[command(subcommand)]
    pub command: PluginCommand,
}

#[derive(Subcommand, Debug)]
pub enum PluginCommand {
    /// Create a plugin project in a new directory: sources, the WIT it
    /// targets, a README and a test.
    New(NewArgs),
    /// Build the project in DIR into DIR/build/NAME.wasm with its
    /// language's toolchain; the last line printed is the component's
    /// path.
    Build(BuildArgs),
    /// Run a built component once in nova's sandbox, without a server:
    /// output, logs and timing. kv and store are in memory and empty;
    /// there is no knowledge base and no network.
    Test(TestArgs),
    /// Watch a project: on each change rebuild it, install it into a
    /// running host (--url) or a plugin directory (--plugins-dir), and
    /// print the new version and the plugin's log lines.
    Dev(DevArgs),
}

/// What a plugin is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A workflow step: JSON in, JSON out.
    Step,
    /// A document loader: a document in, chunks out.
    Loader,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Step => "step",
            Kind::Loader => "loader",
        }
    }
}

/// The language a project is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// Rust with the nova-plugin SDK, built with cargo.
    Rust,
    /// Python, built with componentize-py.
    Python,
    /// JavaScript, built with jco (componentize-js).
    Js,
}

impl Language {
    pub fn as_str(self) -> &'static str {
        match self {
            Language::Rust => "rust",
            Language::Python => "python",
            Language::Js => "js",
        }
    }
}

/// `nova plugin new NAME`
#[derive(Args, Debug)]
pub struct NewArgs {
    /// The plugin's name: lowercase letters, digits and '-', starting with
    /// a letter.
    pub name: String,
    /// What it is.
    #[arg(long, value_enum, default_value_t = Kind::Step)]
    pub kind: Kind,
    /// What it is written in.
    #[arg(long, value_enum, default_value_t = Language::Rust)]
    pub lang: Language,
    /// Where to create it [default: ./NAME]; must not exist, or be empty.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// `nova plugin build [DIR]`
#[derive(Args, Debug)]
pub struct BuildArgs {
    /// The project [default: the current directory].
    #[arg(default_value = ".")]
    pub dir: PathBuf,
}

/// `nova plugin test FILE.wasm`
#[derive(Args, Debug)]
pub struct TestArgs {
    /// The component, or a project directory (its build/NAME.wasm).
    #[arg(value_name = "FILE.wasm|DIR")]
    pub target: PathBuf,
    /// A step's input, as JSON [default: null].
    #[arg(long, value_name = "JSON", conflicts_with = "document")]
    pub input: Option<String>,
    /// A step's configuration, as JSON [default: {}].
    #[arg(long, value_name = "JSON")]
    pub config: Option<String>,
    /// A loader's document: a file, or `-` for standard input.
    #[arg(long, value_name = "FILE")]
    pub document: Option<PathBuf>,
    /// A loader's document name [default: the --document path].
    #[arg(long, value_name = "NAME")]
    pub source: Option<String>,
    /// The plugin's manifest (limits, grants, config) [default:
    /// NAME.toml beside the component, if there is one].
    #[arg(long, value_name = "FILE.toml")]
    pub manifest: Option<PathBuf>,
    /// Print the answer as JSON, as `POST /admin/plugins/{name}/invoke`
    /// gives it.
    #[arg(long)]
    pub json: bool,
}

/// `nova plugin dev [DIR]`
#[derive(Args, Debug)]
pub struct DevArgs {
    /// The project [default: the current directory].
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Install into this plugin directory (a host's `plugins_dir`, which
    /// it reloads by itself) instead of uploading to --url.
    #[arg(long, value_name = "DIR")]
    pub plugins_dir: Option<PathBuf>,
    /// Build and install once, then exit (no watching).
    #[arg(long)]
    pub once: bool,
    #[command(flatten)]
    pub remote: Remote,
}

/// Runs `nova plugin …`.
pub fn plugin(args: PluginArgs) -> ExitCode {
    finish(match args.command {
        PluginCommand::New(args) => new::new(&args),
        PluginCommand::Build(args) => {
            Project::open(&args.dir)
                .and_then(|p| build::build(&p))
                .map(|wasm| {
                    super::print(&format!("{}\n", wasm.display()));
                })
        }
        PluginCommand::Test(args) => block_on(test::test(args)),
        PluginCommand::Dev(args) => block_on(dev::dev(args)),
    })
}

/// `nova-plugin.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProjectFile {
    plugin: ProjectPlugin,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProjectPlugin {
    name: String,
    kind: Kind,
    language: Language,
    /// A step's config schema, a JSON Schema file relative to the project.
    #[serde(default)]
    config_schema: Option<PathBuf>,
    /// Python and JavaScript: the world in `wit/` to build against, when
    /// not the kind's own (`step`, `loader`): one that includes it and
    /// imports more, such as `wasi:http`.
    #[serde(default)]
    world: Option<String>,
}

/// A plugin project on disk.
#[derive(Debug, Clone)]
pub(super) struct Project {
    /// Its directory, absolute.
    pub root: PathBuf,
    pub name: String,
    pub kind: Kind,
    pub language: Language,
    /// The JSON Schema file `nova plugin build` puts into the component
    /// (absolute); Rust steps may declare theirs in code instead.
    pub config_schema: Option<PathBuf>,
    /// The WIT world Python and JavaScript builds target.
    pub world: String,
}

impl Project {
    /// Reads the project whose root is `dir`.
    pub(super) fn open(dir: &Path) -> Result<Project, Failure> {
        let root = std::path::absolute(dir)
            .map_err(|e| Failure::Usage(format!("{}: {e}", dir.display())))?;
        let file = root.join(PROJECT_FILE);
        let text = std::fs::read_to_string(&file).map_err(|e| {
            Failure::Usage(if e.kind() == std::io::ErrorKind::NotFound {
                format!(
                    "{} is not a plugin project: it has no {PROJECT_FILE} (make one with `nova plugin new NAME`)",
                    root.display()
                )
            } else {
                format!("cannot read {}: {e}", file.display())
            })
        })?;
        let parsed: ProjectFile = toml::from_str(&text)
            .map_err(|e| Failure::Usage(format!("{}: {e}", file.display())))?;
        let p = parsed.plugin;
        check_name(&p.name).map_err(|m| Failure::Usage(format!("{}: {m}", file.display())))?;
        Ok(Project {
            name: p.name,
            kind: p.kind,
            language: p.language,
            config_schema: p.config_schema.map(|f| root.join(f)),
            world: p.world.unwrap_or_else(|| p.kind.as_str().to_owned()),
            root,
        })
    }

    /// `build/NAME.wasm`.
    pub(super) fn wasm(&self) -> PathBuf {
        self.root.join("build").join(format!("{}.wasm", self.name))
    }

    fn file_text(&self) -> String {
        let mut text = format!(
            "# A nova plugin project: read by `nova plugin build|test|dev`.\n\
             [plugin]\n\
             name = \"{}\"\n\
             kind = \"{}\"        # step | loader\n\
             language = \"{}\"    # rust | python | js\n",
            self.name,
            self.kind.as_str(),
            self.language.as_str()
        );
        if let Some(schema) = &self.config_schema {
            let rel = schema.strip_prefix(&self.root).unwrap_or(schema);
            text.push_str(&format!(
                "# The JSON Schema of the step's config: `nova plugin build` puts it\n\
                 # into the component; the host checks every config against it.\n\
                 config_schema = \"{}\"\n",
                rel.display()
            ));
        }
        text
    }
}

/// A plugin name that every language's toolchain takes and the host
/// serves: a letter, then lowercase letters, digits and single '-', at
/// most 64.
fn check_name(name: &str) -> Result<(), String> {
    let ok = (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-')
        && !name.contains("--");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a plugin name: use a letter, then lowercase letters, digits and single '-' (at most 64)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for good in ["a", "hello", "csv", "word-stats2"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "1a",
            "-a",
            "a-",
            "a--b",
            "A",
            "a_b",
            "a.b",
            &"a".repeat(65),
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
