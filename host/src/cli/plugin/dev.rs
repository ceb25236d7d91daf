//! `nova plugin dev`: build, install, watch, repeat.
//!
//! Each change under the project (not its build outputs) rebuilds it and
//! installs the component: uploaded to the host at `--url`, which answers
//! once the new version serves, or written into `--plugins-dir`, which the
//! host there reloads by itself. Between builds it shows the plugin's log
//! lines as calls happen (`--url` only: a plugin directory's host logs
//! them itself).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

use super::{DevArgs, Failure, Project, build};
use crate::cli::UPLOAD_TIMEOUT_S;

/// Directories and files whose changes are the build's own, or tools'.
const IGNORED: &[&str] = &[
    "build",
    "target",
    "node_modules",
    ".venv",
    "__pycache__",
    ".git",
    "wit_world",
];

/// Changes this close together are one edit (an editor saving writes
/// several events).
const SETTLE: Duration = Duration::from_millis(100);

pub async fn dev(args: DevArgs) -> Result<(), Failure> {
    let project = Project::open(&args.dir)?;
    let (tx, mut changes) = mpsc::unbounded_channel::<PathBuf>();
    let root = project.root.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event
            && !matches!(event.kind, notify::EventKind::Access(_))
        {
            for path in event.paths {
                if relevant(&root, &path) {
                    let _ = tx.send(path);
                }
            }
        }
    })
    .map_err(|e| Failure::Reported(format!("cannot watch {}: {e}", project.root.display())))?;
    if !args.once {
        watcher
            .watch(&project.root, RecursiveMode::Recursive)
            .map_err(|e| {
                Failure::Reported(format!("cannot watch {}: {e}", project.root.display()))
            })?;
    }
    let into = match &args.plugins_dir {
        Some(dir) => Target::Dir(dir.clone()),
        None => Target::Host(args.remote.client_within(UPLOAD_TIMEOUT_S)?),
    };
    let mut tail: Option<tokio::task::JoinHandle<()>> = None;
    // The first round starts with the command; later ones with an edit.
    let mut since = (Instant::now(), "after starting");
    loop {
        match round(&project, &into, since).await {
            Ok(()) if args.once => return Ok(()),
            Err(e) if args.once => return Err(e),
            Ok(()) => {
                if tail.is_none()
                    && let Target::Host(client) = &into
                {
                    tail = Some(tokio::spawn(follow_logs(
                        client.clone(),
                        project.name.clone(),
                    )));
                }
            }
            Err(e) => eprintln!("nova: error: {}", e.message()),
        }
        eprintln!("watching {} (Ctrl-C to stop)", project.root.display());
        // The next edit, and whatever follows it closely.
        if changes.recv().await.is_none() {
            return Ok(());
        }
        since = (Instant::now(), "after the change");
        while let Ok(Some(_)) = tokio::time::timeout(SETTLE, changes.recv()).await {}
    }
}

/// Where each build goes.
enum Target {
    /// A plugin directory, which its host reloads by itself.
    Dir(PathBuf),
    /// A running host, by upload.
    Host(nova_client::Client),
}

/// One build and install; `since` is when the round's cause (the start,
/// or an edit) was seen, and what it was.
async fn round(
    project: &Project,
    into: &Target,
    (since, cause): (Instant, &str),
) -> Result<(), Failure> {
    let p = project.clone();
    let wasm = tokio::task::spawn_blocking(move || build::build(&p))
        .await
        .map_err(|e| Failure::Reported(format!("the build task failed: {e}")))??;
    match into {
        Target::Dir(dir) => {
            let to = dir.join(format!("{}.wasm", project.name));
            build::copy(&wasm, &to)?;
            eprintln!(
                "installed {} {:.2} s {cause}; the host watching {} reloads it",
                to.display(),
                since.elapsed().as_secs_f64(),
                dir.display()
            );
        }
        Target::Host(client) => {
            let bytes = std::fs::read(&wasm)
                .map_err(|e| Failure::Usage(format!("cannot read {}: {e}", wasm.display())))?;
            let uploaded = client.plugin_upload(&project.name, bytes).await?.value;
            let p = &uploaded.plugin;
            eprintln!(
                "serving {} {} ({}) on {}, {:.2} s {cause}: {}",
                p.name,
                p.version.as_deref().unwrap_or("-"),
                p.kind.map_or("-", |k| k.as_str()),
                client.base_url(),
                since.elapsed().as_secs_f64(),
                p.description.as_deref().unwrap_or(""),
            );
        }
    }
    Ok(())
}

/// Whether a change at `path` is an edit of the project's sources.
fn relevant(root: &Path, path: &Path) -> bool {
    let Ok(rel) = path.strip_prefix(root) else {
        return false;
    };
    let hidden_or_ignored = rel.components().any(|c| {
        let c = c.as_os_str().to_string_lossy();
        IGNORED.contains(&c.as_ref())
    });
    let name = rel
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Editors' swap and backup files.
    let scratch = name.ends_with('~')
        || name.ends_with(".swp")
        || name.ends_with(".swx")
        || name.starts_with(".#")
        || name == "4913";
    !hidden_or_ignored && !scratch
}

/// Prints the plugin's log lines as calls happen, until the host goes.
async fn follow_logs(client: nova_client::Client, name: String) {
    let result = client
        .plugin_logs(&name, |line| {
            eprintln!("{} {:<5} {}", name, line.level, line.message);
        })
        .await;
    if let Err(e) = result {
        eprintln!("nova: no more log lines of {name}: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_count_and_outputs_do_not() {
        let root = Path::new("/p");
        assert!(relevant(root, Path::new("/p/src/lib.rs")));
        assert!(relevant(root, Path::new("/p/app.py")));
        assert!(!relevant(root, Path::new("/p/build/x.wasm")));
        assert!(!relevant(root, Path::new("/p/target/release/x")));
        assert!(!relevant(root, Path::new("/p/node_modules/a/b.js")));
        assert!(!relevant(root, Path::new("/p/src/.lib.rs.swp")));
        assert!(!relevant(root, Path::new("/p/src/lib.rs~")));
        assert!(!relevant(root, Path::new("/elsewhere/lib.rs")));
    }
}
