//! templates/, policies/ and dashboards/, embedded in the binary; `--assets DIR` overrides them.
use std::path::{Path, PathBuf};

use include_dir::{Dir, include_dir};

use crate::error::{Error, Result};

static TEMPLATES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/templates");
static POLICIES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/policies");
static DASHBOARDS: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/dashboards");

/// The asset tree in use: embedded, or a folder on disk laid out the same way.
#[derive(Debug, Clone, Default)]
pub struct Assets {
    root: Option<PathBuf>,
}

impl Assets {
    pub fn embedded() -> Self {
        Assets { root: None }
    }

    /// Assets read from `dir` (which holds templates/, policies/, dashboards/).
    pub fn from_dir(dir: &Path) -> Result<Self> {
        if !dir.is_dir() {
            return Err(Error::usage(
                format!("--assets {}: not a folder", dir.display()),
                Some(
                    "point --assets at a copy of kovenant's templates/, policies/ and dashboards/"
                        .into(),
                ),
            ));
        }
        Ok(Assets {
            root: Some(dir.to_path_buf()),
        })
    }

    fn embedded_dir(top: &str) -> Option<&'static Dir<'static>> {
        match top {
            "templates" => Some(&TEMPLATES),
            "policies" => Some(&POLICIES),
            "dashboards" => Some(&DASHBOARDS),
            _ => None,
        }
    }

    /// The text of `path` (e.g. `templates/values/grafana.yaml.tera`).
    pub fn get(&self, path: &str) -> Result<String> {
        if let Some(root) = &self.root {
            let full = root.join(path);
            return std::fs::read_to_string(&full).map_err(|e| Error::io("reading asset", full, e));
        }
        let (top, rest) = path.split_once('/').unwrap_or((path, ""));
        Self::embedded_dir(top)
            .and_then(|d| d.get_file(rest))
            .and_then(|f| f.contents_utf8())
            .map(str::to_owned)
            .ok_or_else(|| Error::step("assets", format!("no embedded asset {path}")))
    }

    /// Relative paths (from the asset root) of every file under `dir`, sorted.
    pub fn list(&self, dir: &str) -> Result<Vec<String>> {
        let mut out = Vec::new();
        if let Some(root) = &self.root {
            let base = root.join(dir);
            walk_disk(root, &base, &mut out)?;
        } else {
            let (top, rest) = dir.split_once('/').unwrap_or((dir, ""));
            if let Some(d) = Self::embedded_dir(top) {
                let start = if rest.is_empty() {
                    Some(d)
                } else {
                    d.get_dir(rest)
                };
                if let Some(start) = start {
                    walk_embedded(top, start, &mut out);
                }
            }
        }
        out.sort();
        Ok(out)
    }
}

fn walk_embedded(top: &str, dir: &Dir<'static>, out: &mut Vec<String>) {
    for f in dir.files() {
        out.push(format!("{top}/{}", f.path().display()));
    }
    for d in dir.dirs() {
        walk_embedded(top, d, out);
    }
}

fn walk_disk(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("listing", dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("listing", dir, e))?;
        let path = entry.path();
        if path.is_dir() {
            walk_disk(root, &path, out)?;
        } else if let Ok(rel) = path.strip_prefix(root) {
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
    Ok(())
}
