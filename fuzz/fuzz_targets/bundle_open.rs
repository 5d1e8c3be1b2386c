//! Opening arbitrary text as a sealed bundle, and arbitrary bytes as the archive and the manifest JWS inside it:
//! typed errors, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    static KEY: std::sync::OnceLock<p256::SecretKey> = std::sync::OnceLock::new();
    let key = KEY.get_or_init(|| p256::SecretKey::from_slice(&[7u8; 32]).unwrap_or_else(|_| std::process::abort()));
    let text = String::from_utf8_lossy(data);
    let _ = tamga_bundle::jwe::open(&text, key);
    let _ = tamga_bundle::archive::read(data);
    let _ = tamga_bundle::jws::parse(&text);
});
