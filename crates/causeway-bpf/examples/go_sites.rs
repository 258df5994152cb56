//! Prints where Causeway would probe a Go executable, or why it would not:
//! `cargo run -p causeway-bpf --example go_sites -- PATH...`
fn main() {
    for path in std::env::args().skip(1) {
        let data = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) => {
                println!("{path}: {e}");
                continue;
            }
        };
        println!("{path}:");
        println!("  runtime: {:?}", causeway_bpf::go_runtime::analyse(&data));
        println!("  crypto/tls: {:?}", causeway_bpf::go_tls::analyse(&data));
    }
}
