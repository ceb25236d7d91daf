//! A valid component that implements no nova world: it exports only
//! `answer: func() -> u32` from its own package `test:other`.

wit_bindgen::generate!({ path: "wit", world: "other" });

struct Component;

impl Guest for Component {
    fn answer() -> u32 {
        42
    }
}

export!(Component);
