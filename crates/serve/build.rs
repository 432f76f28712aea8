// The page's files are embedded at compile time: rebuild when one is added, removed or edited.
fn main() {
    println!("cargo:rerun-if-changed=assets");
}
