//! Components the SDK would never build, assembled from WAT and WIT: the
//! loader must refuse or contain them whatever they do.

use std::path::Path;

use cloacina_loader::wasm::{WasmRuntime, WasmSettings};
use cloacina_loader::{CallControl, LoadError, Plugin, TaskFailure};
use wit_component::{ComponentEncoder, StringEncoding, embed_component_metadata};
use wit_parser::Resolve;

/// A core module from `wat`, given the component type of `world` in the
/// WIT package `wit`, made a component.
fn component(wat: &str, wit: &str, world: &str) -> Vec<u8> {
    let mut resolve = Resolve::default();
    let package = if wit.ends_with(".wit") {
        resolve
            .push_file(Path::new(wit))
            .expect("contract WIT parses")
    } else {
        resolve
            .push_str("handmade.wit", wit)
            .expect("test WIT parses")
    };
    let world = resolve
        .select_world(&[package], Some(world))
        .expect("world exists");
    let mut module = wat::parse_str(wat).expect("valid WAT");
    embed_component_metadata(&mut module, &resolve, world, StringEncoding::UTF8)
        .expect("metadata embeds");
    ComponentEncoder::default()
        .module(&module)
        .and_then(|encoder| encoder.validate(true).encode())
        .expect("valid component")
}

fn contract_wit() -> String {
    cloacina_tests::repo_root()
        .join("plugin-sdk/contract/wit/plugin.wit")
        .display()
        .to_string()
}

fn runtime() -> WasmRuntime {
    WasmRuntime::new(WasmSettings::default()).expect("runtime")
}

#[test]
fn a_component_importing_what_the_host_does_not_grant_is_refused() {
    let evil = component(
        r#"(module
             (import "evil:x/steal" "take" (func $take))
             (func (export "abi-minor") (result i32) call $take i32.const 0))"#,
        "package evil:x;\n\
         interface steal { take: func(); }\n\
         world evil { import steal; export abi-minor: func() -> u16; }\n",
        "evil",
    );
    let error = runtime().load(&evil, None).expect_err("forbidden import");
    assert!(matches!(error, LoadError::ForbiddenImport(_)), "{error}");
    assert!(error.to_string().contains("evil:x/steal"), "{error}");
}

/// A guest implementing the real contract by hand: declares nothing and
/// answers every call with `output` (raw bytes, not necessarily JSON).
fn plugin_answering(output: &str) -> String {
    let escaped: String = output.bytes().map(|b| format!("\\{b:02x}")).collect();
    let len = output.len();
    format!(
        r#"(module
             (memory (export "memory") 1)
             (global $next (mut i32) (i32.const 4096))
             (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
               (local $at i32)
               global.get $next
               local.set $at
               global.get $next
               local.get 3
               i32.add
               global.set $next
               local.get $at)
             ;; the declaration: "{{}}" (nothing declared)
             (data (i32.const 16) "{{}}")
             (data (i32.const 64) "\10\00\00\00\02\00\00\00")
             ;; the task output
             (data (i32.const 128) "{escaped}")
             ;; result<string, _>: ok (tag 0), pointer 128, length
             (data (i32.const 96) "\00\00\00\00\80\00\00\00")
             (data (i32.const 104) "{len_bytes}")
             (func (export "abi-minor") (result i32) i32.const 0)
             (func (export "declaration") (result i32) i32.const 64)
             (func (export "call-task") (param i32 i32 i32 i32) (result i32) i32.const 96))"#,
        len_bytes = (len as u32)
            .to_le_bytes()
            .iter()
            .map(|b| format!("\\{b:02x}"))
            .collect::<String>(),
    )
}

#[test]
fn a_task_returning_invalid_json_is_a_typed_error() {
    let runtime = runtime();
    let liar = runtime
        .load(
            &component(&plugin_answering("{not json"), &contract_wit(), "plugin"),
            None,
        )
        .expect("a well-formed component");
    let error = liar
        .call("anything", "{}", &CallControl::new())
        .expect_err("bad output");
    assert!(matches!(error, TaskFailure::InvalidOutput(_)), "{error}");

    // The same guest answering valid JSON is fine: the check is on content.
    let honest = runtime
        .load(
            &component(
                &plugin_answering(r#"{"ok":true}"#),
                &contract_wit(),
                "plugin",
            ),
            None,
        )
        .expect("a well-formed component");
    assert_eq!(
        honest
            .call("anything", "{}", &CallControl::new())
            .expect("valid JSON"),
        r#"{"ok":true}"#
    );
}
