//! The host functions a guest can import: every `proxy_*` function of ABI 0.2.1 (plus the 0.1.0
//! names some SDKs still import) in module `env`, and the WASI preview1 subset Envoy offers.
//! One linker per host; the set of provided names lets us name unknown imports before instantiating.

mod callouts;
mod context;
mod http;
mod shared;
mod wasi;

use std::collections::BTreeSet;

use wasmtime::{Caller, Engine, Linker, Module, WasmRet, WasmTy};

use super::error::HostError;
use super::state::VmState;

/// The linker with every host function, and the (module, name) pairs it provides.
pub(crate) struct Imports {
    pub linker: Linker<VmState>,
    provided: BTreeSet<(String, String)>,
    /// Import names by hostcall id, the index each call is counted under in the VM's profile.
    pub names: Vec<String>,
}

/// Registers host functions and remembers their names.
pub(crate) struct Registry<'a> {
    linker: &'a mut Linker<VmState>,
    provided: &'a mut BTreeSet<(String, String)>,
    names: &'a mut Vec<String>,
}

impl Registry<'_> {
    /// Registers `func` so that each call is first counted in the calling VM's profile.
    pub fn func<Params, Results>(
        &mut self,
        module: &str,
        name: &str,
        func: impl CountedHostFn<Params, Results>,
    ) -> wasmtime::Result<()> {
        func.register(self.linker, module, name, self.names.len())?;
        self.names.push(name.to_string());
        self.provided.insert((module.to_string(), name.to_string()));
        Ok(())
    }

    pub fn env<Params, Results>(
        &mut self,
        name: &str,
        func: impl CountedHostFn<Params, Results>,
    ) -> wasmtime::Result<()> {
        self.func("env", name, func)
    }
}

/// A hostcall body taking the `Caller` and wasm arguments, which registers itself wrapped in a
/// counter of its calls (one impl per arity, as wasmtime's `IntoFunc` has).
pub(crate) trait CountedHostFn<Params, Results>: Send + Sync + 'static {
    fn register(
        self,
        linker: &mut Linker<VmState>,
        module: &str,
        name: &str,
        id: usize,
    ) -> wasmtime::Result<()>;
}

macro_rules! counted_host_fn {
    ($($arg:ident: $ty:ident),*) => {
        impl<F, R, $($ty,)*> CountedHostFn<($($ty,)*), R> for F
        where
            F: Fn(Caller<'_, VmState>, $($ty),*) -> R + Send + Sync + 'static,
            $($ty: WasmTy,)*
            R: WasmRet,
        {
            fn register(
                self,
                linker: &mut Linker<VmState>,
                module: &str,
                name: &str,
                id: usize,
            ) -> wasmtime::Result<()> {
                linker.func_wrap(module, name, move |mut caller: Caller<'_, VmState>, $($arg: $ty),*| -> R {
                    caller.data_mut().profile.count_hostcall(id);
                    self(caller, $($arg),*)
                })?;
                Ok(())
            }
        }
    };
}

counted_host_fn!();
counted_host_fn!(a1: A1);
counted_host_fn!(a1: A1, a2: A2);
counted_host_fn!(a1: A1, a2: A2, a3: A3);
counted_host_fn!(a1: A1, a2: A2, a3: A3, a4: A4);
counted_host_fn!(a1: A1, a2: A2, a3: A3, a4: A4, a5: A5);
counted_host_fn!(a1: A1, a2: A2, a3: A3, a4: A4, a5: A5, a6: A6);
counted_host_fn!(a1: A1, a2: A2, a3: A3, a4: A4, a5: A5, a6: A6, a7: A7);
counted_host_fn!(a1: A1, a2: A2, a3: A3, a4: A4, a5: A5, a6: A6, a7: A7, a8: A8);
counted_host_fn!(a1: A1, a2: A2, a3: A3, a4: A4, a5: A5, a6: A6, a7: A7, a8: A8, a9: A9);
counted_host_fn!(a1: A1, a2: A2, a3: A3, a4: A4, a5: A5, a6: A6, a7: A7, a8: A8, a9: A9, a10: A10);
counted_host_fn!(a1: A1, a2: A2, a3: A3, a4: A4, a5: A5, a6: A6, a7: A7, a8: A8, a9: A9, a10: A10, a11: A11);
counted_host_fn!(
    a1: A1, a2: A2, a3: A3, a4: A4, a5: A5, a6: A6, a7: A7, a8: A8, a9: A9, a10: A10, a11: A11, a12: A12
);

impl Imports {
    pub fn new(engine: &Engine) -> wasmtime::Result<Self> {
        let mut linker = Linker::new(engine);
        let mut provided = BTreeSet::new();
        let mut names = Vec::new();
        let mut registry = Registry { linker: &mut linker, provided: &mut provided, names: &mut names };
        context::register(&mut registry)?;
        http::register(&mut registry)?;
        callouts::register(&mut registry)?;
        shared::register(&mut registry)?;
        wasi::register(&mut registry)?;
        Ok(Self { linker, provided, names })
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
