//! The `pushbench` command line.

fn main() -> anyhow::Result<()> {
    anyhow::bail!("pushbench: the `run` command is not built yet (see the open issues)")
}
