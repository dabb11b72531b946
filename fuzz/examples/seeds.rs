//! Writes the seed inputs of every target to `fuzz/seeds/<target>/<name>`:
//! `cargo run --manifest-path fuzz/Cargo.toml --example seeds`.

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("seeds");
    for (target, name, bytes) in micro_fuzz::seeds::all() {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(name), &bytes)?;
    }
    println!(
        "wrote {} seeds under {}",
        micro_fuzz::seeds::all().len(),
        root.display()
    );
    Ok(())
}
