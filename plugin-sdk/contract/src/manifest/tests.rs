use super::*;

fn id(text: &str) -> Identifier {
    Identifier::new(text).expect("test identifiers are valid")
}

fn task(name: &str, dependencies: &[&str]) -> TaskDeclaration {
    TaskDeclaration {
        id: id(name),
        description: String::new(),
        dependencies: dependencies.iter().map(|d| id(d)).collect(),
        retry: RetryPolicy::default(),
        timeout_ms: None,
        invokes: None,
    }
}

fn etl_declaration() -> Declaration {
    Declaration {
        tasks: vec![
            task("extract", &[]),
            task("transform", &["extract"]),
            task("load", &["transform"]),
        ],
        workflows: vec![WorkflowDeclaration {
            name: id("etl"),
            description: "extract, transform, load".into(),
            tasks: vec![id("extract"), id("transform"), id("load")],
        }],
        ..Declaration::default()
    }
}

fn native_artifact() -> Artifact {
    Artifact {
        path: ArtifactPath::new("native/x86_64-unknown-linux-gnu/libetl.so").expect("valid"),
        kind: ArtifactKind::Native {
            target: "x86_64-unknown-linux-gnu".into(),
        },
        sha256: Sha256Digest([7; 32]),
        size: 42,
    }
}

fn package() -> PackageInfo {
    PackageInfo {
        name: id("etl"),
        version: semver::Version::new(1, 2, 3),
        description: "sample".into(),
    }
}

fn manifest_with(declaration: Declaration) -> Result<Manifest, ManifestError> {
    Manifest::new(
        package(),
        crate::HOST_ABI_VERSION,
        vec![native_artifact()],
        declaration,
    )
}

#[test]
fn canonical_bytes_round_trip() {
    let manifest = manifest_with(etl_declaration()).expect("valid manifest");
    let bytes = manifest.to_canonical_json();
    let parsed = Manifest::from_canonical_json(&bytes).expect("canonical bytes parse");
    assert_eq!(parsed, manifest);
}

#[test]
fn a_re_spelt_manifest_is_not_canonical() {
    let manifest = manifest_with(etl_declaration()).expect("valid manifest");
    let pretty = manifest.to_pretty_json();
    assert!(Manifest::from_json(pretty.as_bytes()).is_ok());
    assert!(matches!(
        Manifest::from_canonical_json(pretty.as_bytes()),
        Err(ManifestError::NotCanonical)
    ));
}

#[test]
fn unknown_fields_and_misspelt_policies_are_errors() {
    let manifest = manifest_with(etl_declaration()).expect("valid manifest");
    let text = String::from_utf8(manifest.to_canonical_json()).expect("utf-8");
    let extra = text.replacen(
        "\"format_version\":1",
        "\"format_version\":1,\"surprise\":1",
        1,
    );
    assert!(matches!(
        Manifest::from_json(extra.as_bytes()),
        Err(ManifestError::Malformed(_))
    ));
    let typo = text.replacen("\"fixed\"", "\"fixd\"", 1);
    assert_ne!(typo, text, "the fixture must contain a backoff to misspell");
    let error = Manifest::from_json(typo.as_bytes()).expect_err("misspelt backoff");
    let cause = std::error::Error::source(&error).map(ToString::to_string);
    assert!(
        cause.as_deref().is_some_and(|cause| cause.contains("fixd")),
        "{error}: {cause:?}"
    );
}

#[test]
fn a_future_format_is_named_in_the_error() {
    let error = Manifest::from_json(br#"{"format_version": 9, "whatever": true}"#)
        .expect_err("format 9 is unknown");
    assert!(matches!(
        error,
        ManifestError::UnsupportedFormat { found: 9, .. }
    ));
}

#[test]
fn cycles_are_refused_naming_their_tasks() {
    let mut declaration = etl_declaration();
    declaration.tasks[0].dependencies.push(id("load"));
    let error = manifest_with(declaration).expect_err("cycle");
    let message = error.to_string();
    assert!(
        message.contains("cycle") && message.contains("`extract`"),
        "{message}"
    );
}

#[test]
fn broken_references_are_refused() {
    let mut unknown_dependency = etl_declaration();
    unknown_dependency.tasks[1].dependencies = vec![id("nope")];
    assert!(matches!(
        manifest_with(unknown_dependency),
        Err(ManifestError::Declaration(
            DeclarationError::UnknownDependency { .. }
        ))
    ));

    let mut partial_workflow = etl_declaration();
    partial_workflow.workflows[0].tasks.remove(0);
    assert!(matches!(
        manifest_with(partial_workflow),
        Err(ManifestError::Declaration(
            DeclarationError::WorkflowMissingDependency { .. }
        ))
    ));

    let mut orphan_cron = etl_declaration();
    orphan_cron.cron_schedules.push(CronScheduleDeclaration {
        name: id("nightly"),
        workflow: id("missing"),
        expression: "0 3 * * *".into(),
        timezone: "UTC".into(),
        catch_up: CatchUp::Skip,
    });
    assert!(matches!(
        manifest_with(orphan_cron),
        Err(ManifestError::Declaration(
            DeclarationError::UnknownWorkflow { .. }
        ))
    ));
}

#[test]
fn artifacts_must_sit_in_their_folder() {
    let mut artifact = native_artifact();
    artifact.path = ArtifactPath::new("wasm/libetl.so").expect("valid path");
    let error = Manifest::new(
        package(),
        crate::HOST_ABI_VERSION,
        vec![artifact],
        etl_declaration(),
    )
    .expect_err("misplaced");
    assert!(matches!(error, ManifestError::MisplacedArtifact { .. }));
}

fn graph(nodes: Vec<GraphNodeDeclaration>) -> ComputationGraphDeclaration {
    ComputationGraphDeclaration {
        name: id("prices"),
        description: String::new(),
        accumulators: vec![AccumulatorDeclaration::new(
            id("ticks"),
            AccumulatorKind::Stream,
        )],
        reactor: ReactorDeclaration {
            reaction_mode: ReactionMode::WhenAny,
            input_strategy: InputStrategy::Latest,
            sources: Vec::new(),
        },
        nodes,
        subscriptions: Vec::new(),
    }
}

fn node(name: &str, inputs: &[&str]) -> GraphNodeDeclaration {
    GraphNodeDeclaration {
        id: id(name),
        inputs: inputs.iter().map(|i| id(i)).collect(),
    }
}

/// The etl package plus tasks for graph nodes, and `graph`.
fn with_graph(graph: ComputationGraphDeclaration) -> Result<Manifest, ManifestError> {
    let mut declaration = etl_declaration();
    for name in ["mean", "alert", "a", "b", "fx"] {
        declaration.tasks.push(task(name, &[]));
    }
    declaration.computation_graphs.push(graph);
    manifest_with(declaration)
}

fn graph_refusal(graph: ComputationGraphDeclaration) -> String {
    match with_graph(graph) {
        Err(ManifestError::Declaration(error)) => error.to_string(),
        other => panic!("expected a declaration error, got {other:?}"),
    }
}

#[test]
fn graph_inputs_must_resolve_and_not_cycle() {
    assert!(
        with_graph(graph(vec![
            node("mean", &["ticks"]),
            node("alert", &["mean"])
        ]))
        .is_ok()
    );
    assert!(matches!(
        with_graph(graph(vec![node("a", &["b", "ticks"]), node("b", &["a"])])),
        Err(ManifestError::Declaration(
            DeclarationError::GraphCycle { .. }
        ))
    ));
    // A field of a node's output routes; a field of an accumulator does not.
    assert!(
        with_graph(graph(vec![
            node("mean", &["ticks"]),
            node("alert", &["mean.high"])
        ]))
        .is_ok()
    );
    assert!(graph_refusal(graph(vec![node("mean", &["ticks.x"])])).contains("`ticks.x`"));
    assert!(
        graph_refusal(graph(vec![
            node("mean", &["ticks"]),
            node("alert", &["mean.x", "alert.y"])
        ]))
        .contains("cycle")
    );
}

#[test]
fn graph_nodes_and_pollers_must_be_tasks() {
    assert!(
        graph_refusal(graph(vec![node("nope", &["ticks"])])).contains("node `nope` is not a task")
    );
    let mut polled = graph(vec![node("mean", &["ticks", "rates"])]);
    polled.accumulators.push(AccumulatorDeclaration {
        poll_interval_ms: Some(1_000),
        ..AccumulatorDeclaration::new(id("rates"), AccumulatorKind::Polling)
    });
    assert!(graph_refusal(polled).contains("needs a task named `rates`"));
}

#[test]
fn accumulator_parameters_belong_to_their_kind() {
    let with = |accumulator: AccumulatorDeclaration| {
        let mut g = graph(vec![node("mean", &["ticks"])]);
        g.accumulators.push(accumulator);
        g
    };
    let misplaced = with(AccumulatorDeclaration {
        capacity: Some(3),
        ..AccumulatorDeclaration::new(id("fills"), AccumulatorKind::Batch)
    });
    assert!(graph_refusal(misplaced).contains("`capacity` does not apply to a batch accumulator"));
    let never_flushes = with(AccumulatorDeclaration::new(
        id("fills"),
        AccumulatorKind::Batch,
    ));
    assert!(graph_refusal(never_flushes).contains("needs `flush_interval_ms`"));
    let unpolled = with(AccumulatorDeclaration::new(
        id("fx"),
        AccumulatorKind::Polling,
    ));
    assert!(graph_refusal(unpolled).contains("needs `poll_interval_ms`"));
    let too_fast = with(AccumulatorDeclaration {
        poll_interval_ms: Some(1),
        ..AccumulatorDeclaration::new(id("fx"), AccumulatorKind::Polling)
    });
    assert!(graph_refusal(too_fast).contains("at least 10"));
    let unfed = with(AccumulatorDeclaration {
        capacity: Some(3),
        ..AccumulatorDeclaration::new(id("history"), AccumulatorKind::State)
    });
    assert!(graph_refusal(unfed).contains("needs `feed`"));
    let fed_by_stranger = with(AccumulatorDeclaration {
        capacity: Some(3),
        feed: Some(id("alert")),
        ..AccumulatorDeclaration::new(id("history"), AccumulatorKind::State)
    });
    assert!(graph_refusal(fed_by_stranger).contains("not a node of the graph"));
    let good = with(AccumulatorDeclaration {
        capacity: Some(3),
        feed: Some(id("mean")),
        ..AccumulatorDeclaration::new(id("history"), AccumulatorKind::State)
    });
    assert!(with_graph(good).is_ok());
}

#[test]
fn an_unknown_accumulator_parameter_does_not_parse() {
    let text = r#"{"name": "fills", "kind": "batch", "flush_interval": 5}"#;
    let error = serde_json::from_str::<AccumulatorDeclaration>(text).expect_err("a typo");
    assert!(error.to_string().contains("flush_interval"), "{error}");
}

#[test]
fn reactor_sources_and_subscriptions_must_resolve() {
    let mut watching = graph(vec![node("mean", &["ticks"])]);
    watching.reactor.sources = vec![id("tick")];
    assert!(graph_refusal(watching).contains("watches `tick`"));
    let mut subscribed = graph(vec![node("mean", &["ticks"])]);
    subscribed.subscriptions = vec![SubscriptionDeclaration {
        workflow: id("etl"),
    }];
    assert!(with_graph(subscribed.clone()).is_ok());
    subscribed.subscriptions = vec![SubscriptionDeclaration {
        workflow: id("elt"),
    }];
    assert!(graph_refusal(subscribed).contains("`elt` is not declared"));
}

#[test]
fn a_hand_written_toml_declaration_parses_into_the_same_types() {
    let declaration: Declaration = toml::from_str(
        r#"
        [[tasks]]
        id = "extract"
        [[tasks]]
        id = "load"
        dependencies = ["extract"]
        timeout_ms = 5000
        retry = { max_attempts = 3, backoff = "exponential", delay_ms = 100, max_delay_ms = 2000, jitter = true }
        [[workflows]]
        name = "etl"
        tasks = ["extract", "load"]
        [[cron_schedules]]
        name = "nightly"
        workflow = "etl"
        expression = "0 3 * * *"
        catch_up = { run_missed = { max_runs = 2 } }
        "#,
    )
    .expect("valid declaration");
    declaration.validate().expect("consistent declaration");
    assert_eq!(declaration.tasks[1].retry.backoff, Backoff::Exponential);
    assert_eq!(
        declaration.cron_schedules[0].catch_up,
        CatchUp::RunMissed { max_runs: 2 }
    );

    let typo = toml::from_str::<Declaration>(
        "[[tasks]]\nid = \"a\"\nretry = { max_attempts = 2, backoff = \"exponentail\", delay_ms = 1 }\n",
    );
    assert!(typo.is_err());
}

#[test]
fn invocations_name_an_invoked_graph_the_task_is_not_part_of() {
    let invoked = |nodes: Vec<GraphNodeDeclaration>| InvokedGraphDeclaration {
        name: id("pricing"),
        description: String::new(),
        inputs: vec![id("order")],
        nodes,
    };
    let with = |invokes: &str, graph: InvokedGraphDeclaration| {
        let mut declaration = etl_declaration();
        declaration.tasks[0].invokes = Some(id(invokes));
        declaration.tasks.push(task("mean", &[]));
        declaration.invoked_graphs.push(graph);
        match manifest_with(declaration) {
            Err(ManifestError::Declaration(error)) => Err(error.to_string()),
            Err(other) => panic!("{other:?}"),
            Ok(_) => Ok(()),
        }
    };
    assert_eq!(
        with("pricing", invoked(vec![node("mean", &["order"])])),
        Ok(())
    );
    let unknown =
        with("prices", invoked(vec![node("mean", &["order"])])).expect_err("no such graph");
    assert!(
        unknown.contains("no invoked graph of that name"),
        "{unknown}"
    );
    let itself =
        with("pricing", invoked(vec![node("extract", &["order"])])).expect_err("recursion");
    assert!(itself.contains("invokes graph `pricing`"), "{itself}");
    let stray = with("pricing", invoked(vec![node("mean", &["orders"])])).expect_err("bad input");
    assert!(stray.contains("`orders`"), "{stray}");
}
