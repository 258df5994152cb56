//! (mysql parser bench: being written.)
fn main() {}
