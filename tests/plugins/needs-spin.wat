;; A component written for Spin: it imports Spin's variables interface,
;; which nova does not serve, beside a WASI one that it does. nova refuses
;; it before compiling, naming the import it lacks and what it serves.
(component
  (import "fermyon:spin/variables@2.0.0" (instance
    (export "get" (func))
  ))
  (import "wasi:io/error@0.2.0" (instance))
)
