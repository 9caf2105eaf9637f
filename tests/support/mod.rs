//! Shared test support: the Genesys Cloud simulator and helpers.
#![allow(dead_code)]

pub mod genesys_sim;
pub mod moto;
