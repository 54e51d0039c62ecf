//! proxy_get_property / proxy_set_property: VM defaults, per-stream values, derived request data.

use tollgate_harness::host::{Host, Request};

fn get(path: &str) -> Request {
    Request::get("/items?page=2")
        .authority("api.test")
        .header("x-probe-op", "property")
        .header("x-path", path)
}

#[test]
fn vm_stream_and_derived_properties() -> anyhow::Result<()> {
    let host = Host::load(tollgate_harness::probe_wasm())?;
    let mut vm = host.plugin("").root_id("probe_root").name("probe").property("node.id", "node-7").start()?;
    let mut value = |req: Request| -> anyhow::Result<String> {
        Ok(vm.send(req).run()?.downstream.header("x-value").unwrap_or_default().to_string())
    };
    assert_eq!(value(get("plugin_root_id"))?, "probe_root");
    assert_eq!(value(get("plugin_name"))?, "probe");
    assert_eq!(value(get("node.id"))?, "node-7");
    assert_eq!(value(get("request.path"))?, "/items?page=2");
    assert_eq!(value(get("request.url_path"))?, "/items");
    assert_eq!(value(get("request.method"))?, "GET");
    assert_eq!(value(get("request.host"))?, "api.test");
    assert_eq!(value(get("source.address"))?, "127.0.0.1:50000");
    assert_eq!(value(get("source.address").property("source.address", "10.0.0.9:1234"))?, "10.0.0.9:1234");
    assert_eq!(value(get("no.such.thing"))?, "<none>");
    Ok(())
}

#[test]
fn set_property_is_readable_back() -> anyhow::Result<()> {
    let host = Host::load(tollgate_harness::probe_wasm())?;
    let mut vm = host.plugin("").start()?;
    let req = Request::get("/")
        .header("x-probe-op", "set-property")
        .header("x-path", "filter_state.tollgate.user")
        .header("x-value", "alice");
    let ex = vm.send(req).run()?;
    assert_eq!(ex.downstream.header("x-value"), Some("alice"));
    vm.set_property("tollgate.mode", "strict");
    let ex = vm.send(get("tollgate.mode")).run()?;
    assert_eq!(ex.downstream.header("x-value"), Some("strict"));
    Ok(())
}
