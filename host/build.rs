//! Embeds what `nova plugin new` writes: every file under
//! `templates/plugin/all/KIND/`, `templates/plugin/LANG/common/` and
//! `templates/plugin/LANG/KIND/`, and
//! every file of the Rust SDK in `plugins/nova-plugin`, as tables of
//! `(path, include_str!(…))` in `$OUT_DIR/templates.rs`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn files(dir: &Path, under: &Path, out: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        // What a build or an install leaves in a template being tried.
        if matches!(
            name.as_str(),
            "node_modules"
                | "build"
                | "target"
                | ".venv"
                | "__pycache__"
                | "wit_world"
                | "package-lock.json"
        ) {
            continue;
        }
        if path.is_dir() {
            files(&path, under, out);
        } else if let Ok(rel) = path.strip_prefix(under) {
            out.push((rel.to_string_lossy().replace('\\', "/"), path.clone()));
        }
    }
}

fn table(name: &str, dirs: &[PathBuf], code: &mut String) {
    let mut found = Vec::new();
    for dir in dirs {
        files(dir, dir, &mut found);
    }
    let dir = dirs.last().expect("a directory");
    assert!(
        !found.is_empty(),
        "no template files under {}",
        dir.display()
    );
    writeln!(code, "pub const {name}: &[File] = &[").unwrap();
    for (rel, path) in found {
        let abs = path.canonicalize().unwrap_or(path);
        writeln!(
            code,
            "    File {{ path: {rel:?}, text: include_str!({:?}) }},",
            abs.display().to_string()
        )
        .unwrap();
    }
    writeln!(code, "];").unwrap();
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let templates = root.join("templates/plugin");
    let sdk = root.join("plugins/nova-plugin");
    println!("cargo:rerun-if-changed={}", templates.display());
    println!("cargo:rerun-if-changed={}", sdk.display());
    let mut code = String::new();
    // Each project: its kind's files in every language, its language's
    // common files, then its kind's.
    for (lang, dir) in [("RUST", "rust"), ("PYTHON", "python"), ("JS", "js")] {
        for (kind, kdir) in [("STEP", "step"), ("LOADER", "loader")] {
            let dirs = [
                templates.join("all").join(kdir),
                templates.join(dir).join("common"),
                templates.join(dir).join(kdir),
            ];
            table(&format!("{lang}_{kind}"), &dirs, &mut code);
        }
    }
    // The SDK as it is published: manifest, README, sources and its WIT
    // (links into wit/, read through).
    table("SDK", &[sdk], &mut code);
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR")).join("templates.rs");
    std::fs::write(out, code).expect("write templates.rs");
}
