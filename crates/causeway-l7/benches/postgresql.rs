//! (postgresql parser bench: being written.)
fn main() {}
