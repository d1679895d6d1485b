//! Embeds the scenario suite (`features/**/*.feature` and `features/REQUIREMENTS.md`) in the
//! binary, so `pushbench run` works from any folder (see `src/bundle.rs`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let features = root.join("features");
    // A directory here makes cargo rerun the script when anything under it changes.
    println!("cargo:rerun-if-changed=features");
    let mut files = Vec::new();
    collect(&features, &mut files);
    files.sort();
    let mut out =
        String::from("/// The embedded files: (path relative to the crate root, contents).\n");
    out.push_str("pub(crate) static FILES: &[(&str, &str)] = &[\n");
    for f in &files {
        let rel = f.strip_prefix(&root).expect("under the root");
        let rel = rel
            .to_str()
            .expect("feature paths are UTF-8")
            .replace('\\', "/");
        writeln!(
            out,
            "    ({rel:?}, include_str!({:?})),",
            f.display().to_string()
        )
        .unwrap();
    }
    out.push_str("];\n");
    let dest = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets it")).join("bundle.rs");
    std::fs::write(dest, out).expect("OUT_DIR is writable");
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect(&p, out);
        } else if p.extension().is_some_and(|x| x == "feature")
            || p.file_name()
                .is_some_and(|n| n == "REQUIREMENTS.md" || n == "COVERAGE.md")
        {
            out.push(p);
        }
    }
}
