//! mcproof-server: a reference secure MCP server.
//!
//! The server is a function of its configuration ([`http::app`]); transports (Streamable HTTP
//! and stdio) share one protocol core ([`protocol`]). Each security control lives in its own
//! module so that it can be read, tested and fuzzed on its own.

pub mod audit;
pub mod auth;
pub mod config;
pub mod conformance;
pub mod faults;
pub mod fuzzing;
pub mod http;
pub mod jsonrpc;
pub mod oauth;
pub mod protocol;
pub mod rate_limit;
pub mod sandbox;
pub mod sanitize;
pub mod schema;
pub mod server;
pub mod session;
pub mod stdio;
pub mod store;
pub mod tools;
