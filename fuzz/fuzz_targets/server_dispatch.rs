#![no_main]

#[path = "../checks/server_dispatch.rs"]
mod server_dispatch;

libfuzzer_sys::fuzz_target!(|data: &[u8]| server_dispatch::check(data));
