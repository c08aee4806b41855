//! Packages made in memory from libraries already built, for the suites
//! that need many versions of one package quickly.

use std::path::Path;

use cloacina_contract::{ArtifactKind, Declaration, HOST_ABI_VERSION, Identifier, PackageInfo};
use cloacina_package::PackageBuilder;
use cloacina_signing::KeyPair;

/// The target triple these tests run on.
pub const HOST_TARGET: &str = env!("CLOACINA_TESTS_TARGET");

/// A package holding `library` (a native plugin built for this machine)
/// as `name` `version`, whose manifest declares `declaration`, signed by
/// `key` when given: what `cloacinactl pack` writes, minus the build.
pub fn native_package(
    library: &Path,
    name: &str,
    version: &str,
    declaration: Declaration,
    key: Option<&KeyPair>,
) -> Vec<u8> {
    let info = PackageInfo {
        name: Identifier::new(name).unwrap_or_else(|error| panic!("name {name}: {error}")),
        version: semver::Version::parse(version)
            .unwrap_or_else(|error| panic!("version {version}: {error}")),
        description: String::new(),
    };
    let file = library
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "plugin.so".to_owned());
    let bytes = std::fs::read(library)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", library.display()));
    let mut builder = PackageBuilder::new(info, HOST_ABI_VERSION, declaration);
    builder
        .add_artifact(
            ArtifactKind::Native {
                target: HOST_TARGET.into(),
            },
            &file,
            bytes,
        )
        .unwrap_or_else(|error| panic!("cannot add {file}: {error}"));
    builder
        .finish(key)
        .unwrap_or_else(|error| panic!("cannot build the package: {error}"))
        .bytes
}
