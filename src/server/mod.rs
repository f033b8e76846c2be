//! The licensing server: accounts by mailed code, devices, tokens, the
//! content registry, use-licence issuing, audit and mail. It uses the
//! policy and crypto layers and never runs an RSA private operation.

mod account;
mod app;
mod audit;
mod audit_queue;
mod auth;
mod certificates;
pub mod config;
mod content;
mod cursor;
mod error;
mod headers;
mod json;
mod json_depth;
mod keys;
mod licence;
mod listing;
mod mail;
mod mail_limits;
mod metrics;
mod openapi;
mod private_files;
mod send;
mod sent;
mod serve;
mod state;
#[cfg(test)]
mod tests;
mod viewer;

pub use app::{BODY_LIMIT, router};
pub use error::ApiError;
pub use openapi::document as openapi_document;
pub use serve::serve;
