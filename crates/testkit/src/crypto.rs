//! The TLS crypto provider of test processes.

/// Installs rustls' `ring` provider as the process default unless one is installed already.
///
/// The workspace builds reqwest and alloy without a bundled provider, and library crates
/// never choose one: a binary installs it at start-up, and a test calls this before it
/// builds a client. Safe to call any number of times from any thread.
pub fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // a concurrent install that won the race is just as good
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}
