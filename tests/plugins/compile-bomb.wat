;; A component that is cheap to send and dear to compile: one function of
;; 240,000 dependent arithmetic instructions, about 2 MB of wasm that takes
;; Cranelift seconds and hundreds of MB. It has no nova export, so a host
;; that compiles it refuses it afterwards; the point is the compilation,
;; which nova bounds in time and memory, and runs without holding up other
;; uploads or calls.
;;
;; The e2e tests expand the block between the `nova-test` markers (the
;; marker says how many times) and assemble it with the `wat` crate.
(component
  (core module
    (func (export "bomb") (param $x i32) (result i32)
      (local $y i32)
      ;; nova-test: repeat 120000
      (local.set $x (i32.add (local.get $x) (i32.mul (local.get $y) (i32.const 7))))
      (local.set $y (i32.xor (local.get $y) (local.get $x)))
      ;; nova-test: end
      (local.get $x)))
)
