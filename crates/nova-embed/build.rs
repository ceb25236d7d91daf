//! Tells the tests whether the CPU they are built on has AVX-512: the
//! AVX-512 kernel's own tests are then ignored, and counted as ignored,
//! where it has none (rather than passing without running). Tests run on
//! the machine that builds them; one that does not says so and fails.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(avx512_cpu)");
    println!("cargo::rerun-if-changed=build.rs");
    #[cfg(target_arch = "x86_64")]
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("x86_64")
        && std::arch::is_x86_feature_detected!("avx512f")
    {
        println!("cargo::rustc-cfg=avx512_cpu");
    }
}
