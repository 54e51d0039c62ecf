//! Provider-level tests with keys generated at test time; the pieces have their own tests beside them.

mod algorithms;
mod caching;
mod config;
mod rejections;
mod remote;
mod support;

#[test]
fn compiled_providers_can_move_to_another_thread() {
    fn assert_send<T: Send>() {}
    assert_send::<super::JwtProviders>();
}
