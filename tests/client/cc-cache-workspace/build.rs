// A header generated into OUT_DIR (an absolute -I, as build scripts that configure C code
// make them), included by mix.c; the rest lives in csrc/.
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=csrc");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    std::fs::write(
        out.join("generated.h"),
        "#ifndef GENERATED_H\n#define GENERATED_H\n#define GENERATED_OFFSET 7\n\
         static int generated_unused;\n#endif\n",
    )
    .unwrap();
    cc::Build::new()
        .file("csrc/squares.c")
        .file("csrc/cubes.c")
        .file("csrc/mix.c")
        .include("csrc")
        .include(&out)
        .define("SCALE", "2")
        .compile("shapes");
    cc::Build::new()
        .cpp(true)
        .file("csrc/triangle.cpp")
        .include("csrc")
        .compile("triangle");
}
