//! The host functions a guest can import: every `proxy_*` function of ABI 0.2.1 (plus the 0.1.0
//! names some SDKs still import) in module `env`, and the WASI preview1 subset Envoy offers.
//! One linker per host; the set of provided names lets us name unknown imports before instantiating.

mod callouts;
mod context;
mod http;
mod shared;
mod wasi;

use std::collections::BTreeSet;

use wasmtime::{Engine, IntoFunc, Linker, Module};

use super::error::HostError;
use super::state::VmState;

/// The linker with every host function, and the (module, name) pairs it provides.
pub(crate) struct Imports {
    pub linker: Linker<VmState>,
    provided: BTreeSet<(String, String)>,
}

/// Registers host functions and remembers their names.
pub(crate) struct Registry<'a> {
    linker: &'a mut Linker<VmState>,
    provided: &'a mut BTreeSet<(String, String)>,
}

impl Registry<'_> {
    pub fn func<Params, Args>(
        &mut self,
        module: &str,
        name: &str,
        func: impl IntoFunc<VmState, Params, Args>,
    ) -> wasmtime::Result<()> {
        self.linker.func_wrap(module, name, func)?;
        self.provided.insert((module.to_string(), name.to_string()));
        Ok(())
    }

    pub fn env<Params, Args>(
        &mut self,
        name: &str,
        func: impl IntoFunc<VmState, Params, Args>,
    ) -> wasmtime::Result<()> {
        self.func("env", name, func)
    }
}

impl Imports {
    pub fn new(engine: &Engine) -> wasmtime::Result<Self> {
        let mut linker = Linker::new(engine);
        let mut provided = BTreeSet::new();
        let mut registry = Registry { linker: &mut linker, provided: &mut provided };
        context::register(&mut registry)?;
        http::register(&mut registry)?;
        callouts::register(&mut registry)?;
        shared::register(&mut registry)?;
        wasi::register(&mut registry)?;
        Ok(Self { linker, provided })
    }

    /// Fails naming every import the host lacks, which is clearer than wasmtime's first-miss error.
    pub fn check(&self, module: &Module) -> Result<(), HostError> {
        let missing: Vec<String> = module
            .imports()
            .filter(|i| !self.provided.contains(&(i.module().to_string(), i.name().to_string())))
            .map(|i| format!("`{}`.`{}` ({})", i.module(), i.name(), kind(&i.ty())))
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(HostError::UnknownImports { imports: missing })
        }
    }
}

fn kind(ty: &wasmtime::ExternType) -> &'static str {
    match ty {
        wasmtime::ExternType::Func(_) => "function",
        wasmtime::ExternType::Global(_) => "global",
        wasmtime::ExternType::Table(_) => "table",
        wasmtime::ExternType::Memory(_) => "memory",
        wasmtime::ExternType::Tag(_) => "tag",
    }
}
