//! A hostile step: `run` allocates without bound. Tests the host's memory
//! limit: growth is refused, the allocator fails and the guest traps.

wit_bindgen::generate!({ path: "../../../wit/v0.1", world: "step" });

use exports::nova::plugin::workflow_step::{Guest, Info, PluginError};
use std::hint::black_box;

struct Component;

const BLOCK: usize = 1 << 20;
const PAGE: usize = 4096;

impl Guest for Component {
    fn describe() -> Info {
        Info {
            name: "evil-alloc".to_owned(),
            version: "1.0.0".to_owned(),
            description: "Allocates memory until it is stopped.".to_owned(),
        }
    }

    /// Keeps 1 MiB blocks, each written to, forever; never returns. Ends in
    /// a trap ("memory allocation of 1048576 bytes failed" on stderr) once
    /// the host refuses to grow memory.
    fn run(_input: String, _config: String) -> Result<String, PluginError> {
        let mut blocks: Vec<Vec<u8>> = Vec::new();
        let mut n = 0u8;
        loop {
            let mut block = vec![0u8; BLOCK];
            // Touch every page so the memory is really used.
            for i in (0..BLOCK).step_by(PAGE) {
                block[i] = n;
            }
            n = n.wrapping_add(1);
            blocks.push(black_box(block));
            black_box(&blocks);
        }
    }
}

export!(Component);
