// The CodeCollection under codecollections/ is compiled into the binary (include_dir), which
// does not make cargo notice new or changed files there; this does.
fn main() {
    println!("cargo::rerun-if-changed=../../codecollections");
}
