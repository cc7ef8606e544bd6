//! Route handlers, one file per area.

pub mod health;
pub mod track;
