//! The mechanism: a pinned type is one sample per variant ([`pinned!`]), each held against the
//! checked-in bytes of its fixture `tests/fixtures/wire/v<version>/<type>/<variant>.hex` with the
//! production encoder and decoder (`ticketing::actors::wire`). Nothing here knows a particular
//! type: the lists of samples are in `samples.rs`, the list of types in `main.rs`.

use serde::{de::DeserializeOwned, Serialize};
use std::collections::BTreeSet;
use std::fmt::Debug;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use ticketing::actors::wire;

/// Where the fixtures of every wire version live, with their README.
pub fn base() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wire")
}

/// This release's version directory under [`base`] (`v1`, the version byte that starts every
/// fixture in it).
pub fn version_dir() -> String {
    format!("v{}", wire::WIRE_VERSION)
}

/// Where this release's fixtures live: one directory per pinned type, one file per variant.
pub fn root() -> PathBuf {
    base().join(version_dir())
}

/// One sample per variant of `T`, each named by its variant.
pub struct Pinned<T> {
    /// The type's directory under [`root`]: its name in snake case (`AccountRequest` →
    /// `account_request`).
    pub dir: String,
    /// The variant a value is: the exhaustive match written by [`pinned!`].
    pub variant_of: fn(&T) -> &'static str,
    pub samples: Vec<(&'static str, T)>,
}

/// `pinned!(Type { Variant => sample, ... })`: a [`Pinned<Type>`] with one sample per variant.
///
/// The same list also writes `fn variant_of(&Type) -> &'static str` as one match with an arm
/// `Type::Variant { .. } => "Variant"` per line and no wildcard (`{ .. }` matches unit, tuple
/// and struct variants alike). So the list provably names every variant: a variant added to
/// `Type` without its line here fails to compile (non-exhaustive match), a variant named twice
/// fails too (unreachable pattern, denied), and the check asserts that each sample is the
/// variant its line names.
macro_rules! pinned {
    ($ty:ident { $($variant:ident => $sample:expr),+ $(,)? }) => {{
        #[deny(unreachable_patterns)]
        fn variant_of(value: &$ty) -> &'static str {
            match value {
                $($ty::$variant { .. } => stringify!($variant),)+
            }
        }
        $crate::fixtures::Pinned::<$ty> {
            dir: $crate::fixtures::snake_case(stringify!($ty)),
            variant_of,
            samples: vec![$((stringify!($variant), $sample)),+],
        }
    }};
}
pub(crate) use pinned;

/// What the tests need of a pinned type, whatever the type.
pub trait PinnedType {
    /// The type's directory under [`root`].
    fn dir(&self) -> &str;
    /// Every way the samples and the fixtures disagree (none: the wire format is as pinned).
    fn problems(&self) -> Vec<Problem>;
    /// The fixtures that do not exist yet, as they would be written: (path, bytes).
    fn missing(&self) -> Vec<(PathBuf, Vec<u8>)>;
}

#[derive(Debug)]
pub enum Problem {
    /// A sample without its fixture: a new variant (or type) whose bytes are not pinned yet.
    Missing(PathBuf),
    /// Anything else: a fixture that no longer decodes to its sample, a sample that no longer
    /// encodes to its fixture, a fixture no sample names.
    Mismatch(String),
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Missing(path) => {
                write!(f, "{}: no fixture (a new variant? see tests/fixtures/wire/README.md)", shown(path))
            }
            Self::Mismatch(text) => f.write_str(text),
        }
    }
}

impl<T: Serialize + DeserializeOwned + PartialEq + Debug> PinnedType for Pinned<T> {
    fn dir(&self) -> &str {
        &self.dir
    }

    fn problems(&self) -> Vec<Problem> {
        let dir = root().join(&self.dir);
        let mut problems = Vec::new();
        let mut mismatches = Vec::new();
        let mut mismatch = |text: String| mismatches.push(Problem::Mismatch(text));
        for (name, sample) in &self.samples {
            let path = fixture_path(&dir, name);
            let at = shown(&path);
            let actual = (self.variant_of)(sample);
            if actual != *name {
                mismatch(format!("{at}: the sample is a {actual}, not a {name}"));
            }
            let fixture = match read_hex(&path) {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    problems.push(Problem::Missing(path));
                    continue;
                }
                Err(e) => {
                    mismatch(format!("{at}: unreadable: {e}"));
                    continue;
                }
            };
            if fixture.first() != Some(&wire::WIRE_VERSION) {
                mismatch(format!(
                    "{at}: written by wire version {:?}, this release speaks {} (a bump: see the README)",
                    fixture.first(),
                    wire::WIRE_VERSION
                ));
            }
            match wire::encode(sample) {
                Ok(encoded) if encoded == fixture => {}
                Ok(encoded) => mismatch(format!(
                    "{at}: the sample no longer encodes to the fixture (first difference at byte {})\n  \
                     fixture: {}\n  encoded: {}",
                    first_difference(&encoded, &fixture),
                    hex::encode(&fixture),
                    hex::encode(&encoded)
                )),
                Err(e) => mismatch(format!("{at}: the sample does not encode: {e}")),
            }
            match wire::decode::<T>(&fixture) {
                Ok(decoded) if decoded == *sample => {}
                Ok(decoded) => {
                    mismatch(format!("{at}: the fixture decodes to\n  {decoded:?}\nnot to the sample\n  {sample:?}"))
                }
                Err(e) => mismatch(format!("{at}: the fixture does not decode: {e}")),
            }
        }
        // The other direction: every file in the directory is the fixture of a sample.
        let named: BTreeSet<PathBuf> = self.samples.iter().map(|(name, _)| fixture_path(&dir, name)).collect();
        for file in files_in(&dir) {
            if !named.contains(&file) {
                mismatch(format!(
                    "{}: no variant of {} has this name (removed: a wire version bump, see the README; renamed: \
                     `git mv` the fixture, names are not on the wire)",
                    shown(&file),
                    self.dir
                ));
            }
        }
        problems.extend(mismatches);
        problems
    }

    fn missing(&self) -> Vec<(PathBuf, Vec<u8>)> {
        let dir = root().join(&self.dir);
        let mut out = Vec::new();
        for (name, sample) in &self.samples {
            let path = fixture_path(&dir, name);
            if !path.exists() {
                // invariant: every sample encodes (the check reports it otherwise).
                out.push((path, wire::encode(sample).expect("a sample that encodes")));
            }
        }
        out
    }
}

/// `path` from the repository's root, for messages.
pub fn shown(path: &Path) -> String {
    path.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap_or(path).display().to_string()
}

/// Writes a fixture that does not exist yet; refuses (an error) to touch an existing file.
pub fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut file = OpenOptions::new().write(true).create_new(true).open(path)?;
    file.write_all(to_hex(bytes).as_bytes())
}

/// `AccountRequest` → `account_request`, `InjectPanic` → `inject_panic`.
pub fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn fixture_path(dir: &Path, variant: &str) -> PathBuf {
    dir.join(format!("{}.hex", snake_case(variant)))
}

/// The files of `dir`, sorted (none if it does not exist).
pub fn files_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries.map(|e| e.expect("a readable directory entry").path()).collect();
    files.sort();
    files
}

/// A fixture's bytes: hex digits, whitespace ignored.
fn read_hex(path: &Path) -> std::io::Result<Vec<u8>> {
    let text = std::fs::read_to_string(path)?;
    let digits: String = text.split_whitespace().collect();
    hex::decode(digits).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// 16 bytes a line, space-separated: a reordering shows in a diff as the byte that moved.
fn to_hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for line in bytes.chunks(16) {
        let words: Vec<String> = line.iter().map(|b| format!("{b:02x}")).collect();
        out.push_str(&words.join(" "));
        out.push('\n');
    }
    out
}

fn first_difference(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).position(|(x, y)| x != y).unwrap_or(a.len().min(b.len()))
}
