//! The host's files, read under a root directory: `/` on a real host, a fixture tree in tests.

use std::path::{Path, PathBuf};

/// Reads `/proc` and `/sys` (and a few `/dev` files) under a root.
#[derive(Clone, Debug)]
pub struct Host {
    root: PathBuf,
}

impl Host {
    /// A host whose `/` is `root`.
    pub fn new(root: &Path) -> Self {
        Host { root: root.to_path_buf() }
    }

    /// The path of host file `rel` (given without the leading `/`).
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel.trim_start_matches('/'))
    }

    /// The file's text, trimmed; `None` if it is absent or unreadable.
    pub fn read(&self, rel: &str) -> Option<String> {
        std::fs::read_to_string(self.path(rel)).ok().map(|s| s.trim().to_string())
    }

    /// The file's bytes; `None` if absent or unreadable.
    pub fn read_bytes(&self, rel: &str) -> Option<Vec<u8>> {
        std::fs::read(self.path(rel)).ok()
    }

    /// Names in directory `rel`, sorted; empty if it is absent.
    pub fn list(&self, rel: &str) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.path(rel))
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        names.sort();
        names
    }

    /// Whether `rel` exists.
    pub fn exists(&self, rel: &str) -> bool {
        self.path(rel).exists()
    }

    /// The value of kernel command-line parameter `name` (`name=value`), if given.
    pub fn cmdline_param(&self, name: &str) -> Option<String> {
        let cmdline = self.read("proc/cmdline")?;
        let prefix = format!("{name}=");
        cmdline.split_whitespace().rev().find_map(|w| w.strip_prefix(&prefix)).map(str::to_string)
    }
}
