//! Networking for PatchCTL: TLS 1.3-only rustls configurations, the
//! development PKI, and the HTTPS JSON client used by the agent and the CLI.
//!
//! The promises this crate carries: only TLS 1.3 is ever negotiated (client
//! and server); server certificates are always verified, against the system
//! roots or against a configured CA bundle alone, and there is no way to turn
//! that off; development certificates are ECDSA P-256; plain `http://` is
//! refused; and bearer tokens never appear in error text or `Debug` output.
//! Every configuration is built with the `ring` crypto provider passed
//! explicitly, so no process-wide default provider needs installing.

pub mod client;
pub mod devca;
pub mod download;
pub mod fetch;
pub mod inspect;
pub mod tls;

pub use client::{ClientError, DEFAULT_TIMEOUT, Dated, HttpsClient, MAX_RESPONSE_BYTES};
pub use devca::{DevPki, ensure_dev_pki, testing};
pub use tls::{TlsError, client_config, crypto_provider, server_config};
