//! Route handlers, one file per area.

pub mod health;
pub mod script;
pub mod track;
