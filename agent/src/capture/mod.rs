//! The capture side of the agent: finger positions, the per-finger policy, and image output.

pub mod finger_record;
pub mod fingers;
pub mod png_out;
