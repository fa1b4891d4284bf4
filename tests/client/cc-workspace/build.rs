// CACHEPOT_TEST_CXX=0 leaves the C++ part out (no C++ compiler).
fn main() {
    println!("cargo:rerun-if-changed=csrc");
    println!("cargo:rerun-if-env-changed=CACHEPOT_TEST_CXX");
    cc::Build::new()
        .file("csrc/squares.c")
        .include("csrc")
        .compile("squares");
    if std::env::var("CACHEPOT_TEST_CXX").as_deref() != Ok("0") {
        cc::Build::new()
            .cpp(true)
            .file("csrc/triangle.cpp")
            .include("csrc")
            .compile("triangle");
        println!("cargo:rustc-cfg=with_cxx");
    }
}
