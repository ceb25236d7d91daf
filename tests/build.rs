//! The knowledge tests' Qdrant-server variants run only against a server:
//! `QDRANT_URL` at build time turns them on (cfg `qdrant_server`); without
//! it they are compiled as ignored tests, counted as skipped.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(qdrant_server)");
    println!("cargo::rerun-if-env-changed=QDRANT_URL");
    if std::env::var("QDRANT_URL").is_ok_and(|u| !u.is_empty()) {
        println!("cargo::rustc-cfg=qdrant_server");
    }
}
