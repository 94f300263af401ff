//! A path guard that confines file access to one directory.
//!
//! A requested path is checked twice: lexically (it must be a plain relative path: no
//! absolute paths, drive letters, UNC prefixes, backslashes, NUL or control characters, `..`)
//! and then physically (its canonical form, with every symlink resolved, must lie under the
//! canonical root). The lexical check gives precise, actionable refusals; the physical check is
//! the one that cannot be fooled by symlinks.
//!
//! Errors never contain the root's real location: telling a caller where the server keeps its
//! files helps an attacker and is of no use to an honest client.
//!
//! Residual risk: someone who can write inside the sandbox can race a symlink swap between the
//! checks and the open. [`Sandbox::read`] narrows that window by comparing the opened file's
//! identity with the checked path's, but the sandbox directory must not be writable by
//! untrusted parties.

use std::fs::{self, File};
use std::io::{self, Read as _};
use std::path::{Component, Path, PathBuf};

/// Longest accepted request, in bytes.
pub const MAX_PATH_BYTES: usize = 1024;
/// Deepest accepted request, in components.
pub const MAX_COMPONENTS: usize = 32;

/// Why a path or a read was refused. Messages name the rule broken, never the real location.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("path must not be empty")]
    Empty,
    #[error("path must be at most {MAX_PATH_BYTES} bytes and {MAX_COMPONENTS} components")]
    TooLong,
    #[error("path must not contain NUL or control characters")]
    ControlCharacter,
    #[error("path must be relative to the sandbox root (no leading '/', drive letter or UNC prefix)")]
    Absolute,
    #[error("path must use '/' as the separator; backslashes are not allowed")]
    Backslash,
    #[error("path must not contain '..' components")]
    ParentComponent,
    #[error("path resolves outside the sandbox")]
    Escape,
    #[error("no such file in the sandbox")]
    NotFound,
    #[error("path is not a regular file")]
    NotAFile,
    #[error("file is larger than the {limit}-byte limit")]
    TooLarge { limit: u64 },
    #[error("file is not valid UTF-8 text")]
    NotUtf8,
    #[error("file changed while it was being opened; retry")]
    Changed,
    /// The detail is for the server log (it may name the path); the message is generic.
    #[error("file could not be read")]
    Io(#[source] io::Error),
}

impl SandboxError {
    /// Whether the refusal is about where the path points (traversal, absolute, symlink
    /// escape) rather than about the file itself. Tools answer all of these with one message.
    pub fn is_confinement(&self) -> bool {
        matches!(self, Self::Absolute | Self::Backslash | Self::ParentComponent | Self::Escape | Self::ControlCharacter)
    }
}

/// A directory that file access is confined to.
#[derive(Debug, Clone)]
pub struct Sandbox {
    /// Canonical (absolute, symlink-free) root.
    root: PathBuf,
}

impl Sandbox {
    /// Opens the sandbox at `root`, which must be an existing directory.
    pub fn new(root: impl AsRef<Path>) -> io::Result<Self> {
        let root = fs::canonicalize(root)?;
        if !fs::metadata(&root)?.is_dir() {
            return Err(io::Error::new(io::ErrorKind::NotADirectory, "sandbox root is not a directory"));
        }
        Ok(Self { root })
    }

    /// The canonical root, for the operator (never for a caller).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The canonical location of `requested`, which must exist and stay inside the root.
    pub fn resolve(&self, requested: &str) -> Result<PathBuf, SandboxError> {
        check_lexically(requested)?;
        let canonical = fs::canonicalize(self.root.join(requested)).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => SandboxError::NotFound,
            _ => SandboxError::Io(e),
        })?;
        if canonical.starts_with(&self.root) { Ok(canonical) } else { Err(SandboxError::Escape) }
    }

    /// Reads `requested` as UTF-8 text: a regular file inside the sandbox of at most
    /// `max_bytes` bytes.
    pub fn read(&self, requested: &str, max_bytes: u64) -> Result<String, SandboxError> {
        let canonical = self.resolve(requested)?;
        let checked = fs::metadata(&canonical).map_err(SandboxError::Io)?;
        check_file(&checked, max_bytes)?;
        let file = File::open(&canonical).map_err(SandboxError::Io)?;
        // Re-check what was actually opened: the same file, still regular, still small enough.
        let opened = file.metadata().map_err(SandboxError::Io)?;
        check_file(&opened, max_bytes)?;
        if !same_file(&checked, &opened) || self.resolve(requested)? != canonical {
            return Err(SandboxError::Changed);
        }
        // The file may grow after the checks: read one byte past the limit to notice.
        let mut bytes = Vec::new();
        file.take(max_bytes.saturating_add(1)).read_to_end(&mut bytes).map_err(SandboxError::Io)?;
        if bytes.len() as u64 > max_bytes {
            return Err(SandboxError::TooLarge { limit: max_bytes });
        }
        String::from_utf8(bytes).map_err(|_| SandboxError::NotUtf8)
    }
}

/// Refuses anything that is not a plain relative path before touching the filesystem.
fn check_lexically(requested: &str) -> Result<(), SandboxError> {
    if requested.is_empty() {
        return Err(SandboxError::Empty);
    }
    if requested.len() > MAX_PATH_BYTES {
        return Err(SandboxError::TooLong);
    }
    if requested.chars().any(char::is_control) {
        return Err(SandboxError::ControlCharacter);
    }
    if requested.contains('\\') {
        return Err(SandboxError::Backslash);
    }
    let bytes = requested.as_bytes();
    let drive = bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':';
    if requested.starts_with('/') || drive || Path::new(requested).is_absolute() {
        return Err(SandboxError::Absolute);
    }
    let mut components = 0;
    for component in Path::new(requested).components() {
        components += 1;
        match component {
            Component::Normal(_) | Component::CurDir => {}
            Component::ParentDir => return Err(SandboxError::ParentComponent),
            Component::RootDir | Component::Prefix(_) => return Err(SandboxError::Absolute),
        }
    }
    if components > MAX_COMPONENTS {
        return Err(SandboxError::TooLong);
    }
    Ok(())
}

fn check_file(meta: &fs::Metadata, max_bytes: u64) -> Result<(), SandboxError> {
    if !meta.is_file() {
        return Err(SandboxError::NotAFile);
    }
    if meta.len() > max_bytes {
        return Err(SandboxError::TooLarge { limit: max_bytes });
    }
    Ok(())
}

#[cfg(unix)]
fn same_file(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    a.dev() == b.dev() && a.ino() == b.ino()
}

#[cfg(not(unix))]
fn same_file(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    a.len() == b.len() && a.modified().ok() == b.modified().ok()
}

/// Writes the demo files a fresh server serves from its sandbox (creating `dir` if needed).
pub fn seed(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir.join("docs"))?;
    fs::create_dir_all(dir.join("data"))?;
    fs::write(
        dir.join("readme.txt"),
        "mcproof-server sandbox\n\nThe read_file tool can read the files in this directory and below it.\n\
         Try docs/guide.md or data/inventory.csv.\n",
    )?;
    fs::write(
        dir.join("docs/guide.md"),
        "# Guide\n\nThis server is the reference secure MCP server of mcproof.\n\n\
         - Paths are relative to the sandbox root; `..`, absolute paths and symlinks that leave the\n  \
         sandbox are refused.\n- Files larger than 64 KiB or not UTF-8 are refused.\n",
    )?;
    fs::write(dir.join("data/inventory.csv"), "sku,name,stock\nHAM-01,Claw hammer,34\nTRW-02,Garden trowel,12\n")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> (tempfile::TempDir, Sandbox) {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let root = dir.path().join("root");
        seed(&root).unwrap_or_else(|e| panic!("{e}"));
        fs::write(dir.path().join("outside.txt"), "TOP SECRET").unwrap_or_else(|e| panic!("{e}"));
        let sandbox = Sandbox::new(&root).unwrap_or_else(|e| panic!("{e}"));
        (dir, sandbox)
    }

    #[test]
    fn reads_seeded_files() {
        let (_dir, sandbox) = fixture();
        for path in ["readme.txt", "docs/guide.md", "./docs/guide.md", "data//inventory.csv", "docs/./guide.md"] {
            let text = sandbox.read(path, 64 * 1024).unwrap_or_else(|e| panic!("{path}: {e}"));
            assert!(!text.is_empty());
        }
    }

    #[test]
    fn refuses_lexically_bad_paths() {
        let (_dir, sandbox) = fixture();
        type Check = fn(&SandboxError) -> bool;
        let cases: &[(&str, Check)] = &[
            ("", |e| matches!(e, SandboxError::Empty)),
            ("a\0b", |e| matches!(e, SandboxError::ControlCharacter)),
            ("docs\n/guide.md", |e| matches!(e, SandboxError::ControlCharacter)),
            ("/etc/passwd", |e| matches!(e, SandboxError::Absolute)),
            ("//server/share/x", |e| matches!(e, SandboxError::Absolute)),
            ("C:/Windows/win.ini", |e| matches!(e, SandboxError::Absolute)),
            ("c:boot.ini", |e| matches!(e, SandboxError::Absolute)),
            ("..\\..\\etc\\passwd", |e| matches!(e, SandboxError::Backslash)),
            ("\\\\server\\share", |e| matches!(e, SandboxError::Backslash)),
            ("../outside.txt", |e| matches!(e, SandboxError::ParentComponent)),
            ("docs/../../outside.txt", |e| matches!(e, SandboxError::ParentComponent)),
            ("docs/..", |e| matches!(e, SandboxError::ParentComponent)),
            ("..", |e| matches!(e, SandboxError::ParentComponent)),
        ];
        for (path, expected) in cases {
            match sandbox.resolve(path) {
                Err(e) => assert!(expected(&e), "{path:?}: {e:?}"),
                Ok(p) => panic!("{path:?} resolved to {}", p.display()),
            }
        }
        assert!(matches!(sandbox.resolve(&"a/".repeat(40)), Err(SandboxError::TooLong)));
        assert!(matches!(sandbox.resolve(&"a".repeat(MAX_PATH_BYTES + 1)), Err(SandboxError::TooLong)));
    }

    #[test]
    fn refuses_non_files_large_files_and_binary() {
        let (_dir, sandbox) = fixture();
        assert!(matches!(sandbox.read("docs", 1024), Err(SandboxError::NotAFile)));
        assert!(matches!(sandbox.read(".", 1024), Err(SandboxError::NotAFile)));
        assert!(matches!(sandbox.read("missing.txt", 1024), Err(SandboxError::NotFound)));
        assert!(matches!(sandbox.read("readme.txt/x", 1024), Err(SandboxError::NotFound)));
        assert!(matches!(sandbox.read("readme.txt", 10), Err(SandboxError::TooLarge { limit: 10 })));
        fs::write(sandbox.root().join("bin.dat"), [0xff, 0xfe, 0x00]).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(sandbox.read("bin.dat", 1024), Err(SandboxError::NotUtf8)));
    }

    #[cfg(unix)]
    #[test]
    fn refuses_symlinks_that_leave_the_root() {
        use std::os::unix::fs::symlink;
        let (dir, sandbox) = fixture();
        let root = sandbox.root().to_path_buf();
        symlink(dir.path().join("outside.txt"), root.join("leak.txt")).unwrap_or_else(|e| panic!("{e}"));
        symlink(dir.path(), root.join("parent")).unwrap_or_else(|e| panic!("{e}"));
        symlink("/etc", root.join("etc")).unwrap_or_else(|e| panic!("{e}"));
        symlink("../outside.txt", root.join("relative-leak")).unwrap_or_else(|e| panic!("{e}"));
        for path in ["leak.txt", "parent/outside.txt", "etc/hostname", "relative-leak"] {
            match sandbox.read(path, 1024) {
                Err(SandboxError::Escape | SandboxError::NotFound) => {}
                other => panic!("{path}: {other:?}"),
            }
        }
        assert!(matches!(sandbox.read("leak.txt", 1024), Err(SandboxError::Escape)));
        // Symlinks that stay inside are fine.
        symlink(root.join("docs"), root.join("manual")).unwrap_or_else(|e| panic!("{e}"));
        symlink("readme.txt", root.join("hello.txt")).unwrap_or_else(|e| panic!("{e}"));
        assert!(sandbox.read("manual/guide.md", 1024).is_ok());
        assert!(sandbox.read("hello.txt", 1024).is_ok());
    }

    #[cfg(unix)]
    #[test]
    fn a_symlinked_root_is_followed_once() {
        use std::os::unix::fs::symlink;
        let (dir, sandbox) = fixture();
        let link = dir.path().join("root-link");
        symlink(sandbox.root(), &link).unwrap_or_else(|e| panic!("{e}"));
        let via_link = Sandbox::new(&link).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(via_link.root(), sandbox.root());
        assert!(via_link.read("readme.txt", 1024).is_ok());
        assert!(matches!(via_link.read("../outside.txt", 1024), Err(SandboxError::ParentComponent)));
    }

    #[test]
    fn errors_do_not_reveal_the_root() {
        let (dir, sandbox) = fixture();
        let secret_parts = [dir.path().display().to_string(), sandbox.root().display().to_string()];
        for path in ["../outside.txt", "/etc/passwd", "missing", "docs", "readme.txt"] {
            if let Err(e) = sandbox.read(path, 4) {
                let message = e.to_string();
                for part in &secret_parts {
                    assert!(!message.contains(part.as_str()), "{message}");
                }
            }
        }
    }

    #[test]
    fn new_refuses_missing_or_non_directory_roots() {
        let (dir, _sandbox) = fixture();
        assert!(Sandbox::new(dir.path().join("nope")).is_err());
        assert!(Sandbox::new(dir.path().join("outside.txt")).is_err());
    }
}
