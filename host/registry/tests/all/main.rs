//! The registry on SQLite and on PostgreSQL (`CLOACINA_TEST_POSTGRES_URL`,
//! default the local server; skipped with a message when unreachable, a
//! failure under `CI=true`).

use cloacina_contract::manifest::{TaskDeclaration, WorkflowDeclaration};
use cloacina_contract::{ArtifactKind, Declaration, HOST_ABI_VERSION, Identifier, PackageInfo};
use cloacina_database::{Database, TenantId};
use cloacina_package::{Package, PackageBuilder, ReadLimits, SignaturePolicy, VerifiedPackage};
use cloacina_registry::{PackageStatus, Registry, RegistryError, TrustKeys};
use cloacina_signing::{KeyPair, TrustScope, TrustStore};

fn signer() -> KeyPair {
    KeyPair::from_seed("release", &[7; 32])
}

/// A signed package `name` `version` whose library holds `content`.
fn package(name: &str, version: &str, content: &[u8]) -> (Vec<u8>, VerifiedPackage) {
    package_declaring(name, version, content, None)
}

/// The same, declaring workflow `workflow` (of its one task) when given.
fn package_declaring(
    name: &str,
    version: &str,
    content: &[u8],
    workflow: Option<&str>,
) -> (Vec<u8>, VerifiedPackage) {
    let info = PackageInfo {
        name: Identifier::new(name).expect("name"),
        version: semver::Version::parse(version).expect("version"),
        description: String::new(),
    };
    let declaration = Declaration {
        tasks: vec![TaskDeclaration {
            id: Identifier::new("only").expect("id"),
            description: String::new(),
            dependencies: vec![],
            retry: Default::default(),
            timeout_ms: None,
            invokes: None,
        }],
        workflows: workflow
            .map(|name| WorkflowDeclaration {
                name: Identifier::new(name).expect("workflow"),
                description: String::new(),
                tasks: vec![Identifier::new("only").expect("id")],
            })
            .into_iter()
            .collect(),
        ..Declaration::default()
    };
    let mut builder = PackageBuilder::new(info, HOST_ABI_VERSION, declaration);
    builder
        .add_artifact(
            ArtifactKind::Native {
                target: "x86_64-unknown-linux-gnu".into(),
            },
            "libp.so",
            content.to_vec(),
        )
        .expect("artifact")
        .add_artifact(ArtifactKind::Wasm, "p.wasm", b"\0asm".to_vec())
        .expect("artifact");
    let key = signer();
    let bytes = builder.finish(Some(&key)).expect("built").bytes;
    let mut trust = TrustStore::new();
    trust
        .add(key.name(), key.public_key(), TrustScope::Global)
        .expect("trust");
    let verified = Package::read(&bytes, &ReadLimits::default())
        .expect("readable")
        .verify(&trust, None, SignaturePolicy::Required)
        .expect("verified");
    (bytes, verified)
}

async fn scenario(url: &str, tenant: TenantId) {
    let db = Database::connect(url, &tenant).await.expect("database");
    let registry = Registry::open(&db).await.expect("registry");
    let v1 = semver::Version::new(1, 0, 0);
    let v2 = semver::Version::new(1, 10, 0);

    let (bytes, verified) = package("etl", "1.0.0", b"first");
    let first = registry.upload(&verified, &bytes).await.expect("uploads");
    assert!(first.created);
    assert_eq!(first.record.status, PackageStatus::Pending);
    assert_eq!(first.record.size, bytes.len() as u64);
    assert_eq!(
        first.record.runtimes,
        ["native:x86_64-unknown-linux-gnu", "wasm"]
    );
    assert_eq!(
        first.record.signer_key_id,
        Some(signer().public_key().id().to_string())
    );

    // The same bytes again: idempotent.
    let again = registry
        .upload(&verified, &bytes)
        .await
        .expect("idempotent");
    assert!(!again.created);
    assert_eq!(again.record, first.record);

    // Other bytes under the same name and version: refused, nothing changed.
    let (other_bytes, other) = package("etl", "1.0.0", b"different");
    let conflict = registry.upload(&other, &other_bytes).await;
    assert!(
        matches!(conflict, Err(RegistryError::Conflict { ref existing, .. }) if *existing == first.record.sha256),
        "{conflict:?}"
    );
    assert_eq!(registry.archive("etl", &v1).await.expect("archive"), bytes);

    // Versions side by side; "latest" is the highest loaded by semver.
    let (bytes2, verified2) = package("etl", "1.10.0", b"second");
    registry.upload(&verified2, &bytes2).await.expect("uploads");
    assert_eq!(
        registry
            .list()
            .await
            .expect("lists")
            .iter()
            .map(|r| r.version.clone())
            .collect::<Vec<_>>(),
        [v1.clone(), v2.clone()]
    );
    assert_eq!(registry.latest_loaded("etl").await.expect("reads"), None);
    registry
        .set_status("etl", &v1, &PackageStatus::Loaded)
        .await
        .expect("status");
    assert_eq!(
        registry
            .latest_loaded("etl")
            .await
            .expect("reads")
            .map(|r| r.version),
        Some(v1.clone())
    );
    registry
        .set_status("etl", &v2, &PackageStatus::Loaded)
        .await
        .expect("status");
    assert_eq!(
        registry
            .latest_loaded("etl")
            .await
            .expect("reads")
            .map(|r| r.version),
        Some(v2.clone())
    );
    registry
        .set_status("etl", &v2, &PackageStatus::Failed("bad ABI".into()))
        .await
        .expect("status");
    let failed = registry
        .get("etl", &v2)
        .await
        .expect("reads")
        .expect("present");
    assert_eq!(failed.status, PackageStatus::Failed("bad ABI".into()));
    assert_eq!(
        registry
            .latest_loaded("etl")
            .await
            .expect("reads")
            .map(|r| r.version),
        Some(v1.clone())
    );

    // Removing: the row goes, and its bytes with it.
    assert!(registry.remove("etl", &v1).await.expect("removes"));
    assert!(!registry.remove("etl", &v1).await.expect("answers"));
    assert!(matches!(
        registry.archive("etl", &v1).await,
        Err(RegistryError::NotFound { .. })
    ));
    assert!(matches!(
        registry
            .set_status("etl", &v1, &PackageStatus::Loaded)
            .await,
        Err(RegistryError::NotFound { .. })
    ));
    // A second registry on the same database (another host) sees the same.
    let other_host = Registry::open(&Database::connect(url, &tenant).await.expect("database"))
        .await
        .expect("registry");
    assert_eq!(other_host.list().await.expect("lists").len(), 1);
    assert_eq!(
        other_host.archive("etl", &v2).await.expect("archive"),
        bytes2
    );
    ownership_scenario(&registry).await;
    trust_scenario(&db).await;
}

/// A workflow name belongs to one package: another package declaring it
/// is refused naming both; the owner's new versions are not; once the
/// owner is removed, the name is free.
async fn ownership_scenario(registry: &Registry) {
    let (bytes, orders) = package_declaring("orders", "0.1.5", b"o1", Some("orders"));
    registry.upload(&orders, &bytes).await.expect("registers");
    let (bytes, mistakes) = package_declaring("mistakes", "0.3.0", b"m", Some("orders"));
    let refused = registry
        .upload(&mistakes, &bytes)
        .await
        .expect_err("another package's workflow");
    let message = refused.to_string();
    assert!(
        matches!(refused, RegistryError::WorkflowOwned(_))
            && message.contains("orders 0.1.5")
            && message.contains("mistakes 0.3.0"),
        "{message}"
    );
    assert!(
        registry
            .get("mistakes", &semver::Version::new(0, 3, 0))
            .await
            .expect("reads")
            .is_none(),
        "nothing of the refused package is stored"
    );
    let (bytes, newer) = package_declaring("orders", "0.2.0", b"o2", Some("orders"));
    registry
        .upload(&newer, &bytes)
        .await
        .expect("the owner's new version");
    for version in [semver::Version::new(0, 1, 5), semver::Version::new(0, 2, 0)] {
        registry.remove("orders", &version).await.expect("removes");
    }
    registry
        .upload(
            &mistakes,
            &package_declaring("mistakes", "0.3.0", b"m", Some("orders")).0,
        )
        .await
        .expect("a free name may be taken");
}

async fn trust_scenario(db: &Database) {
    let trust = TrustKeys::open(db).await.expect("trust store");
    let key = signer();
    let (bytes, _) = package("etl", "2.0.0", b"x");
    let verify = |store: &TrustStore, tenant: &str| {
        Package::read(&bytes, &ReadLimits::default())
            .expect("readable")
            .verify(store, Some(tenant), SignaturePolicy::Required)
            .is_ok()
    };
    assert!(
        !verify(&trust.store().await.expect("store"), "acme"),
        "nothing trusted yet"
    );

    let acme = TenantId::new("acme").expect("tenant");
    trust
        .add("release", &key.public_key(), Some(&acme))
        .await
        .expect("trusts");
    let store = trust.store().await.expect("store");
    assert!(verify(&store, "acme"));
    assert!(
        !verify(&store, "other"),
        "a tenant's key is not trusted elsewhere"
    );

    trust
        .add("release", &key.public_key(), None)
        .await
        .expect("trusts");
    assert!(
        verify(&trust.store().await.expect("store"), "other"),
        "now trusted for all"
    );
    let listed = trust.list().await.expect("lists");
    assert_eq!(listed.len(), 2);
    assert!(
        listed
            .iter()
            .all(|e| e.key_id == key.public_key().id().to_string() && !e.revoked)
    );

    assert!(trust.revoke(&key.public_key().id()).await.expect("revokes"));
    assert!(
        !verify(&trust.store().await.expect("store"), "acme"),
        "revoked everywhere"
    );
    assert!(matches!(
        trust.add("release", &key.public_key(), None).await,
        Err(RegistryError::Revoked(_))
    ));
    let listed = trust.list().await.expect("lists");
    assert_eq!((listed.len(), listed[0].revoked), (1, true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite() {
    let dir = tempfile::tempdir().expect("dir");
    scenario(
        &format!("sqlite://{}", dir.path().join("r.db").display()),
        TenantId::public(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    let Some(url) = cloacina_tests::postgres_url() else {
        return;
    };
    let schema = cloacina_tests::unique_schema("reg");
    scenario(&url, TenantId::new(schema.clone()).expect("tenant")).await;
    cloacina_tests::drop_schema(&url, &schema);
}
