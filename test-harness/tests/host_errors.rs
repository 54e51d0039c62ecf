//! Failures a test must see clearly: traps with the guest's last logs, rejected configuration,
//! a missing module, and imports the host does not provide.

use tollgate_harness::host::{Host, HostError, Request};

#[test]
fn a_guest_panic_is_an_error_with_the_trap_and_last_logs() -> anyhow::Result<()> {
    let host = Host::load(tollgate_harness::probe_wasm())?;
    let mut vm = host.plugin("").start()?;
    let err = vm.send(Request::get("/").header("x-probe-op", "panic")).run().unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, HostError::Trap { .. }), "{text}");
    assert!(text.contains("proxy_on_request_headers"), "{text}");
    assert!(text.contains("unreachable"), "{text}");
    assert!(text.contains("about to panic on purpose"), "{text}");
    assert!(text.contains("probe panic requested"), "the SDK's panic hook logs the message: {text}");
    let again = vm.send(Request::get("/")).run().unwrap_err();
    assert!(matches!(again, HostError::Dead(_)), "{again}");
    Ok(())
}

#[test]
fn a_panic_while_configuring_fails_start() -> anyhow::Result<()> {
    let host = Host::load(tollgate_harness::probe_wasm())?;
    let text = host.plugin("panic_on_configure=1").start().err().map(|e| e.to_string()).unwrap_or_default();
    assert!(text.contains("proxy_on_configure"), "{text}");
    assert!(text.contains("about to panic in on_configure"), "{text}");
    Ok(())
}

#[test]
fn rejected_configuration_carries_the_guest_logs() -> anyhow::Result<()> {
    let host = Host::load(tollgate_harness::probe_wasm())?;
    let err = host.plugin("reject=1").start().err().expect("configuration rejected");
    assert!(matches!(err, HostError::ConfigRejected { .. }));
    assert!(err.to_string().contains("probe rejects this configuration on purpose"), "{err}");
    Ok(())
}

#[test]
fn a_missing_module_says_how_to_build_it() {
    let err = Host::load("/nonexistent/tollgate.wasm").err().expect("missing");
    assert_eq!(err.to_string(), "/nonexistent/tollgate.wasm not found: run ./build.sh first");
}

#[test]
fn unknown_imports_are_named_before_instantiation() {
    let wat = r#"(module
        (import "env" "proxy_log" (func (param i32 i32 i32) (result i32)))
        (import "env" "proxy_frobnicate" (func (param i32) (result i32)))
        (import "wasi_snapshot_preview1" "path_open" (func (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
        (memory (export "memory") 1)
        (func (export "proxy_abi_version_0_2_1")))"#;
    let err = Host::from_bytes(wat).err().expect("unknown imports");
    let text = err.to_string();
    assert!(text.contains("`env`.`proxy_frobnicate` (function)"), "{text}");
    assert!(text.contains("`wasi_snapshot_preview1`.`path_open` (function)"), "{text}");
    assert!(!text.contains("proxy_log"), "{text}");
}

#[test]
fn a_module_without_the_abi_marker_is_refused() -> anyhow::Result<()> {
    let host = Host::from_bytes(r#"(module (memory (export "memory") 1) (func (export "_initialize")))"#)?;
    let err = host.plugin("").start().err().expect("no ABI marker");
    assert!(err.to_string().contains("proxy_abi_version_0_2_1"), "{err}");
    Ok(())
}

#[test]
fn the_sdk_imports_all_link() -> anyhow::Result<()> {
    // Every proxy_* function the SDK can import, declared with its ABI 0.2.1 signature, must link.
    let imports = [
        ("proxy_log", "i32 i32 i32"),
        ("proxy_get_log_level", "i32"),
        ("proxy_get_current_time_nanoseconds", "i32"),
        ("proxy_set_tick_period_milliseconds", "i32"),
        ("proxy_get_buffer_bytes", "i32 i32 i32 i32 i32"),
        ("proxy_set_buffer_bytes", "i32 i32 i32 i32 i32"),
        ("proxy_get_header_map_pairs", "i32 i32 i32"),
        ("proxy_set_header_map_pairs", "i32 i32 i32"),
        ("proxy_get_header_map_value", "i32 i32 i32 i32 i32"),
        ("proxy_add_header_map_value", "i32 i32 i32 i32 i32"),
        ("proxy_replace_header_map_value", "i32 i32 i32 i32 i32"),
        ("proxy_remove_header_map_value", "i32 i32 i32"),
        ("proxy_get_header_map_size", "i32 i32"),
        ("proxy_continue_stream", "i32"),
        ("proxy_close_stream", "i32"),
        ("proxy_send_local_response", "i32 i32 i32 i32 i32 i32 i32 i32"),
        ("proxy_http_call", "i32 i32 i32 i32 i32 i32 i32 i32 i32 i32"),
        ("proxy_grpc_call", "i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32"),
        ("proxy_grpc_stream", "i32 i32 i32 i32 i32 i32 i32 i32 i32"),
        ("proxy_grpc_send", "i32 i32 i32 i32"),
        ("proxy_grpc_cancel", "i32"),
        ("proxy_grpc_close", "i32"),
        ("proxy_get_shared_data", "i32 i32 i32 i32 i32"),
        ("proxy_set_shared_data", "i32 i32 i32 i32 i32"),
        ("proxy_register_shared_queue", "i32 i32 i32"),
        ("proxy_resolve_shared_queue", "i32 i32 i32 i32 i32"),
        ("proxy_enqueue_shared_queue", "i32 i32 i32"),
        ("proxy_dequeue_shared_queue", "i32 i32 i32"),
        ("proxy_define_metric", "i32 i32 i32 i32"),
        ("proxy_increment_metric", "i32 i64"),
        ("proxy_record_metric", "i32 i64"),
        ("proxy_get_metric", "i32 i32"),
        ("proxy_get_property", "i32 i32 i32 i32"),
        ("proxy_set_property", "i32 i32 i32 i32"),
        ("proxy_set_effective_context", "i32"),
        ("proxy_done", ""),
        ("proxy_call_foreign_function", "i32 i32 i32 i32 i32 i32"),
        ("proxy_get_status", "i32 i32 i32"),
        ("proxy_continue_request", ""),
        ("proxy_continue_response", ""),
        ("proxy_clear_route_cache", ""),
    ];
    let mut wat = String::from("(module\n");
    for (name, params) in imports {
        wat.push_str(&format!("(import \"env\" \"{name}\" (func (param {params}) (result i32)))\n"));
    }
    wat.push_str("(memory (export \"memory\") 1) (func (export \"proxy_abi_version_0_2_1\")))");
    let host = Host::from_bytes(&wat)?;
    // No callbacks are exported, so starting only runs the lifecycle skeleton.
    host.plugin("").start()?;
    Ok(())
}
