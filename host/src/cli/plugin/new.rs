//! `nova plugin new`: a standalone project from the templates built into
//! this binary (`templates/plugin/LANG/KIND` in nova's repository), with
//! the WIT it targets and, for Rust, the SDK vendored beside it.

use std::path::{Path, PathBuf};

use super::{Failure, Kind, Language, NewArgs, Project, check_name};

/// One file of a template: its path in the project, and its text with
/// `{{name}}`, `{{name_snake}}` and `{{kind}}` to fill in.
pub struct File {
    path: &'static str,
    text: &'static str,
}

// RUST_STEP, RUST_LOADER, PYTHON_*, JS_*: every file of
// `templates/plugin/LANG/{common,KIND}`; SDK: every file of the Rust SDK
// (`plugins/nova-plugin`, its WIT in `contract/`), vendored into Rust
// projects at `vendor/nova-plugin` (it is not on crates.io yet; the
// dependency also names its version, so a published one can replace the
// path).
include!(concat!(env!("OUT_DIR"), "/templates.rs"));

/// The contract's WIT, as every project vendors it.
pub const PLUGIN_WIT: &str = include_str!("../../../../wit/v0.1/plugin.wit");

/// Crates a Rust project depends on by name: a package of the same name
/// would shadow them.
const RUST_DEPENDENCIES: &[&str] = &["nova-plugin", "serde", "serde-json", "wit-bindgen"];

fn template(lang: Language, kind: Kind) -> &'static [File] {
    match (lang, kind) {
        (Language::Rust, Kind::Step) => RUST_STEP,
        (Language::Rust, Kind::Loader) => RUST_LOADER,
        (Language::Python, Kind::Step) => PYTHON_STEP,
        (Language::Python, Kind::Loader) => PYTHON_LOADER,
        (Language::Js, Kind::Step) => JS_STEP,
        (Language::Js, Kind::Loader) => JS_LOADER,
    }
}

pub fn new(args: &NewArgs) -> Result<(), Failure> {
    check_name(&args.name).map_err(Failure::Usage)?;
    if args.lang == Language::Rust && RUST_DEPENDENCIES.contains(&args.name.as_str()) {
        return Err(Failure::Usage(format!(
            "a Rust plugin cannot be named {:?}: the project depends on a crate of that name",
            args.name
        )));
    }
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(&args.name));
    if std::fs::read_dir(&dir).is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(Failure::Usage(format!(
            "{} already exists and is not empty",
            dir.display()
        )));
    }
    let root =
        std::path::absolute(&dir).map_err(|e| Failure::Usage(format!("{}: {e}", dir.display())))?;
    let project = Project {
        root: root.clone(),
        name: args.name.clone(),
        kind: args.kind,
        language: args.lang,
        // Rust declares it in code (`Step::CONFIG_SCHEMA`), so that plain
        // `cargo build` carries it too.
        config_schema: (args.kind == Kind::Step && args.lang != Language::Rust)
            .then(|| root.join("config.schema.json")),
        world: args.kind.as_str().to_owned(),
    };
    let fill = |text: &str| {
        text.replace("{{name}}", &project.name)
            .replace("{{name_snake}}", &project.name.replace('-', "_"))
            .replace("{{kind}}", project.kind.as_str())
    };
    for file in template(args.lang, args.kind) {
        write(&root.join(file.path), &fill(file.text))?;
    }
    write(&root.join(super::PROJECT_FILE), &project.file_text())?;
    write(&root.join("wit/plugin.wit"), PLUGIN_WIT)?;
    if args.lang == Language::Rust {
        let sdk = root.join("vendor/nova-plugin");
        for file in SDK {
            write(&sdk.join(file.path), file.text)?;
        }
    }
    let shown = dir.display();
    eprintln!(
        "created {} {} `{}` in {shown}\n\
         next:\n  \
         nova plugin build {shown}                      # builds {shown}/build/{}.wasm\n  \
         nova plugins upload {} {shown}/build/{}.wasm   # installs it in a running host\n\
         or, to rebuild and reinstall on every change:\n  \
         nova plugin dev {shown}",
        args.lang.as_str(),
        args.kind.as_str(),
        args.name,
        args.name,
        args.name,
        args.name,
    );
    Ok(())
}

fn write(path: &Path, text: &str) -> Result<(), Failure> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| Failure::Usage(format!("cannot create {}: {e}", parent.display())))?;
    }
    std::fs::write(path, text)
        .map_err(|e| Failure::Usage(format!("cannot write {}: {e}", path.display())))
}
