//! `nova plugin build`: each language's toolchain, run in the project,
//! into `build/NAME.wasm`.
//!
//! - Rust: `cargo build --release --target wasm32-wasip2`.
//! - Python: `componentize-py` ([`COMPONENTIZE_PY`]): the one on `PATH`
//!   when it is that version, else one installed into the project's
//!   `.venv` on first build.
//! - JavaScript: `jco componentize --bundle` from the project's
//!   `node_modules` (`npm install` on first build; `package.json` pins
//!   jco).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use super::{Failure, Language, Project};

/// The componentize-py release Python projects build with.
pub const COMPONENTIZE_PY: &str = "0.25.1";

/// Builds `project`; returns the component's path.
pub fn build(project: &Project) -> Result<PathBuf, Failure> {
    let start = Instant::now();
    let out = project.wasm();
    let build_dir = project.root.join("build");
    std::fs::create_dir_all(&build_dir)
        .map_err(|e| Failure::Usage(format!("cannot create {}: {e}", build_dir.display())))?;
    match project.language {
        Language::Rust => rust(project, &out)?,
        Language::Python => python(project, &out)?,
        Language::Js => js(project, &out)?,
    }
    if let Some(schema) = &project.config_schema {
        embed_schema(project, schema, &out)?;
    }
    let size = std::fs::metadata(&out)
        .map_err(|e| {
            Failure::Reported(format!(
                "the build ran but {} is not there: {e}",
                out.display()
            ))
        })?
        .len();
    eprintln!(
        "built {} ({} {}, {:.1} MB) in {:.1} s",
        project.name,
        project.language.as_str(),
        project.kind.as_str(),
        size as f64 / 1e6,
        start.elapsed().as_secs_f64()
    );
    Ok(out)
}

/// Puts the project's config schema into the component, checked first as
/// the host will check it (so a bad schema fails the build, not the load).
fn embed_schema(project: &Project, schema: &Path, out: &Path) -> Result<(), Failure> {
    use crate::plugins::schema::{self, ConfigSchema};
    if project.kind != super::Kind::Step {
        return Err(Failure::Usage(format!(
            "{}: config_schema: only steps take a config",
            super::PROJECT_FILE
        )));
    }
    let text = std::fs::read(schema)
        .map_err(|e| Failure::Usage(format!("cannot read {}: {e}", schema.display())))?;
    ConfigSchema::compile(&text)
        .map_err(|e| Failure::Usage(format!("{}: {e}", schema.display())))?;
    let mut bytes = std::fs::read(out)
        .map_err(|e| Failure::Reported(format!("cannot read {}: {e}", out.display())))?;
    schema::append_section(&mut bytes, &text);
    ConfigSchema::find(&bytes).map_err(|e| {
        Failure::Usage(format!(
            "the component {e}: declare the schema either in code (Rust's \
             `CONFIG_SCHEMA`) or as {}'s config_schema, not both",
            super::PROJECT_FILE
        ))
    })?;
    let tmp = out.with_extension("wasm.part");
    std::fs::write(&tmp, &bytes)
        .and_then(|()| std::fs::rename(&tmp, out))
        .map_err(|e| Failure::Reported(format!("cannot write {}: {e}", out.display())))
}

/// Runs `command` in the project with the tool's output on stderr (so the
/// component's path stays the last line of stdout).
fn run(mut command: Command, what: &str) -> Result<(), Failure> {
    let status = command
        .stdout(std::io::stderr())
        .status()
        .map_err(|e| Failure::Usage(format!("cannot run {what}: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(Failure::Reported(format!("{what} failed ({status})")))
    }
}

fn rust(project: &Project, out: &Path) -> Result<(), Failure> {
    // cargo tells where it put the cdylib (CARGO_TARGET_DIR and
    // workspace settings move it) in its JSON messages.
    let mut child = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--message-format=json-render-diagnostics",
        ])
        .current_dir(&project.root)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| Failure::Usage(format!("cannot run cargo (is Rust installed?): {e}")))?;
    let mut wasm = None;
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let Ok(message) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            let is_cdylib = message["target"]["kind"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k == "cdylib"));
            if message["reason"] == "compiler-artifact" && is_cdylib {
                wasm = message["filenames"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|f| f.as_str())
                    .find(|f| f.ends_with(".wasm"))
                    .map(PathBuf::from)
                    .or(wasm);
            }
        }
    }
    let status = child
        .wait()
        .map_err(|e| Failure::Reported(format!("cargo: {e}")))?;
    if !status.success() {
        return Err(Failure::Reported(format!("cargo build failed ({status})")));
    }
    let wasm = wasm.ok_or_else(|| {
        Failure::Reported(
            "cargo built no .wasm: is the crate a cdylib (`[lib] crate-type = [\"cdylib\"]`)?"
                .into(),
        )
    })?;
    copy(&wasm, out)
}

/// Copies `from` to `to` whole or not at all: through a hidden temporary
/// file beside `to`, renamed, so that a host watching that directory (a
/// plugin directory, with `nova plugin dev --plugins-dir`) never reads
/// half a component, and ignores the temporary file.
pub(super) fn copy(from: &Path, to: &Path) -> Result<(), Failure> {
    let name = to
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = to.with_file_name(format!(".{name}.part"));
    std::fs::copy(from, &tmp)
        .and_then(|_| std::fs::rename(&tmp, to))
        .map_err(|e| {
            Failure::Reported(format!(
                "cannot copy {} to {}: {e}",
                from.display(),
                to.display()
            ))
        })
}

/// The componentize-py to use, installing it into `.venv` when there is
/// none of the pinned version.
fn componentize_py(project: &Project) -> Result<PathBuf, Failure> {
    let wanted = |exe: &Path| {
        Command::new(exe).arg("--version").output().is_ok_and(|o| {
            o.status.success() && String::from_utf8_lossy(&o.stdout).contains(COMPONENTIZE_PY)
        })
    };
    if let Some(exe) = std::env::var_os("NOVA_COMPONENTIZE_PY") {
        return Ok(exe.into());
    }
    let venv = project.root.join(".venv");
    let local = venv.join("bin/componentize-py");
    if local.exists() && wanted(&local) {
        return Ok(local);
    }
    if wanted(Path::new("componentize-py")) {
        return Ok("componentize-py".into());
    }
    eprintln!(
        "installing componentize-py {COMPONENTIZE_PY} into {} (once)",
        venv.display()
    );
    let python = std::env::var_os("PYTHON").unwrap_or_else(|| "python3".into());
    let mut venv_cmd = Command::new(python);
    venv_cmd.args(["-m", "venv"]).arg(&venv);
    run(venv_cmd, "python3 -m venv (is Python 3 installed?)")?;
    let mut pip = Command::new(venv.join("bin/pip"));
    pip.args([
        "install",
        "--quiet",
        "--disable-pip-version-check",
        &format!("componentize-py=={COMPONENTIZE_PY}"),
    ]);
    run(pip, "pip install componentize-py")?;
    Ok(local)
}

fn python(project: &Project, out: &Path) -> Result<(), Failure> {
    let exe = componentize_py(project)?;
    let tmp = out.with_extension("part.wasm");
    let mut command = Command::new(exe);
    command
        .current_dir(&project.root)
        .args([
            "-d",
            "wit",
            "-w",
            &project.world,
            "componentize",
            "app",
            "-o",
        ])
        .arg(&tmp);
    run(command, "componentize-py")?;
    rename(&tmp, out)
}

fn js(project: &Project, out: &Path) -> Result<(), Failure> {
    let jco = project.root.join("node_modules/.bin/jco");
    if !jco.exists() {
        eprintln!("installing jco and componentize-js with npm (once)");
        let mut npm = Command::new("npm");
        npm.current_dir(&project.root).args([
            "install",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
        ]);
        run(npm, "npm install (is Node.js installed?)")?;
    }
    let tmp = out.with_extension("part.wasm");
    let mut command = Command::new(jco);
    command.current_dir(&project.root).args([
        "componentize",
        "src/index.js",
        "--wit",
        "wit",
        "--world-name",
        &project.world,
    ]);
    // Bundled (esbuild), so that src/ may hold several modules and use npm
    // packages; `nova:` imports stay imports.
    if project.root.join("bundle.config.js").exists() {
        command.args(["--bundle", "--bundle-config", "bundle.config.js"]);
    }
    command.arg("-o").arg(&tmp);
    run(command, "jco componentize")?;
    rename(&tmp, out)
}

fn rename(from: &Path, to: &Path) -> Result<(), Failure> {
    std::fs::rename(from, to).map_err(|e| {
        Failure::Reported(format!(
            "cannot move {} to {}: {e}",
            from.display(),
            to.display()
        ))
    })
}
