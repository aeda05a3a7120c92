//! Rebuild when a template or static file is added or removed: rust-embed embeds at
//! compile time, and only files that existed then are tracked.

fn main() {
    println!("cargo:rerun-if-changed=templates");
    println!("cargo:rerun-if-changed=static");
}
