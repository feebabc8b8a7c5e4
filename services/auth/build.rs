//! Builds the assets of the server's pages (the sign-in page and the console) into `$OUT_DIR/assets`, which
//! `src/assets.rs` embeds: the pages' own files from `web/src`, and hash-wasm's Argon2id build from the npm
//! registry, installed with npm from `web/package-lock.json` (`npm ci`, once per lockfile; npm's cache makes later
//! installs local). Nothing is fetched when the server runs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::{env, fs};

/// The file of the npm package that the worker loads as `/oauth/assets/argon2.js`.
const ARGON2_BUILD: &str = "node_modules/hash-wasm/dist/argon2.umd.min.js";

fn main() {
    let web = Path::new(&env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it")).join("web");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets it"));
    for watched in ["package.json", "package-lock.json", "src"] {
        println!("cargo::rerun-if-changed=web/{watched}");
    }

    let npm = out.join("npm");
    let lock = read(&web.join("package-lock.json"));
    let installed = npm.join("installed-package-lock.json");
    if fs::read(&installed).ok().as_ref() != Some(&lock) || !npm.join(ARGON2_BUILD).is_file() {
        fs::create_dir_all(&npm).expect("OUT_DIR is writable");
        for file in ["package.json", "package-lock.json"] {
            fs::copy(web.join(file), npm.join(file)).expect("OUT_DIR is writable");
        }
        let status = Command::new("npm")
            .args(["ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&npm)
            .status()
            .unwrap_or_else(|e| {
                panic!(
                    "the sign-in page's assets are built with npm (Node.js), which could not be run: {e}; install \
                     Node.js and npm"
                )
            });
        assert!(status.success(), "`npm ci` of services/auth/web failed ({status}): is the npm registry reachable?");
        fs::write(&installed, &lock).expect("OUT_DIR is writable");
    }

    let assets = out.join("assets");
    fs::create_dir_all(&assets).expect("OUT_DIR is writable");
    fs::copy(npm.join(ARGON2_BUILD), assets.join("argon2.js")).expect("npm installed hash-wasm");
    for entry in fs::read_dir(web.join("src")).expect("web/src exists") {
        let path = entry.expect("web/src is readable").path();
        fs::copy(&path, assets.join(path.file_name().expect("a file"))).expect("OUT_DIR is writable");
    }
}

fn read(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|e| panic!("{} cannot be read: {e}", path.display()))
}
