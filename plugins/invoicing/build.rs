//! A 128 KiB stack instead of Rust's default 1 MiB: the component's linear
//! memory starts small, so a fresh instance per call touches (and the
//! pooling allocator resets) far fewer pages. serde_json's recursion limit
//! (128 levels) fits well within it.

fn main() {
    println!("cargo:rustc-cdylib-link-arg=-zstack-size=131072");
}
