//! The wire format is pinned by fixtures: for every variant of every type that crosses
//! between nodes, the bytes the production encoder (`ticketing::actors::wire`) wrote are
//! checked in under `tests/fixtures/wire/v<version>/<type>/<variant>.hex`. The test decodes each with the
//! production decoder and expects its sample, encodes each sample and expects exactly the
//! fixture's bytes, and never writes a fixture: reordering, removing or reshaping a variant
//! fails here. Version bumps and rolling upgrades: `tests/fixtures/wire/README.md`.
//!
//! * `fixtures.rs`: the mechanism ([`fixtures::Pinned`], the `pinned!` list with its
//!   exhaustive match, the check, the writer of new fixtures).
//! * `samples.rs`: one sample per variant of each type.
//!
//! **Pinning another type** (the routing layer's commands and replies, say): write its list
//! in `samples.rs`,
//!
//! ```text
//! pub fn route_command() -> Pinned<RouteCommand> {
//!     pinned!(RouteCommand { Reserve => RouteCommand::Reserve { .. }, ... })
//! }
//! ```
//!
//! add `Box::new(samples::route_command())` to [`pinned_types`], then write its fixtures:
//! `WIRE_FIXTURES=write-new cargo test --test wire -- --ignored write_the_fixtures_of_new_variants`.
//! The type needs `Serialize`, `DeserializeOwned`, `PartialEq` and `Debug`.

mod fixtures;
mod samples;

use fixtures::{PinnedType, Problem};
use std::collections::BTreeSet;

/// Every pinned type.
fn pinned_types() -> Vec<Box<dyn PinnedType>> {
    vec![
        Box::new(samples::pay_reply()),
        Box::new(samples::entity_error()),
        Box::new(samples::domain_error()),
        Box::new(samples::rule()),
        Box::new(samples::field()),
        Box::new(samples::order_status()),
        Box::new(samples::entity()),
        Box::new(samples::cancel_reason()),
        Box::new(samples::event()),
        Box::new(samples::app_error()),
        Box::new(samples::command()),
        Box::new(samples::account_request()),
        Box::new(samples::claim()),
        Box::new(samples::key_outcome()),
    ]
}

#[test]
fn every_variant_decodes_from_its_checked_in_bytes_and_encodes_to_them() {
    let problems: Vec<String> = pinned_types().iter().flat_map(|t| t.problems()).map(|p| p.to_string()).collect();
    assert!(
        problems.is_empty(),
        "the wire format moved ({} problems; fixtures are never rewritten by this test, see \
         tests/fixtures/wire/README.md):\n\n{}",
        problems.len(),
        problems.join("\n\n")
    );
}

#[test]
fn the_fixture_directory_holds_exactly_the_pinned_types_of_this_wire_version() {
    let names = |dir: &std::path::Path| -> BTreeSet<String> {
        fixtures::files_in(dir).iter().filter_map(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned()).collect()
    };
    let versions: BTreeSet<String> = ["README.md".to_string(), fixtures::version_dir()].into();
    assert_eq!(
        names(&fixtures::base()),
        versions,
        "tests/fixtures/wire holds fixtures of a wire version this release does not speak (a bump: see its README)"
    );
    let pinned: BTreeSet<String> = pinned_types().iter().map(|t| t.dir().to_string()).collect();
    assert_eq!(pinned.len(), pinned_types().len(), "two pinned types share a directory");
    assert_eq!(
        names(&fixtures::root()),
        pinned,
        "a directory of fixtures is not a pinned type, or a pinned type has no directory"
    );
}

/// Writes the fixture of each sample that has none (a new variant, a new type), never touching
/// an existing one, and only while every existing fixture still holds: a new variant's bytes
/// are pinned as this release encodes them, so they must not be written by a release whose
/// encoding moved. Run by hand, with `WIRE_FIXTURES=write-new`; review the new files (`git
/// diff`), then commit them.
#[test]
#[ignore = "writes fixtures: run by hand with WIRE_FIXTURES=write-new for a new variant"]
fn write_the_fixtures_of_new_variants() {
    let types = pinned_types();
    let moved: Vec<String> = types
        .iter()
        .flat_map(|t| t.problems())
        .filter(|p| !matches!(p, Problem::Missing(_)))
        .map(|p| p.to_string())
        .collect();
    assert!(moved.is_empty(), "existing fixtures do not hold; nothing written:\n\n{}", moved.join("\n\n"));
    let missing: Vec<_> = types.iter().flat_map(|t| t.missing()).collect();
    let listed: Vec<String> = missing.iter().map(|(path, _)| fixtures::shown(path)).collect();
    if std::env::var("WIRE_FIXTURES").as_deref() != Ok("write-new") {
        assert!(missing.is_empty(), "would write (set WIRE_FIXTURES=write-new to do it):\n{}", listed.join("\n"));
        return;
    }
    for (path, bytes) in &missing {
        fixtures::write_new(path, bytes).unwrap_or_else(|e| panic!("{}: not written: {e}", path.display()));
    }
    println!("written:\n{}", listed.join("\n"));
}
