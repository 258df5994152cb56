//! (redis parser bench: being written.)
fn main() {}
