//! The whole filter configuration, as Envoy hands it to `on_configure`, compiled by the pipeline: any bytes
//! must give a pipeline or a `ConfigError` naming a JSON path, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate_pipeline::Pipeline;

fuzz_target!(|data: &[u8]| {
    match Pipeline::from_json(data) {
        Ok(pipeline) => {
            let _ = pipeline.stream();
        }
        Err(error) => {
            let _ = error.to_string();
        }
    }
});
