//! `pont system check` and `pont system prune`.

use pont::runtime::Runtime;

use crate::cli::SystemCommand;

/// Exit code of `system check` when it found differences.
const EXIT_DIFFERENCES: u8 = 1;

pub fn dispatch(rt: &Runtime, cmd: SystemCommand) -> anyhow::Result<u8> {
    match cmd {
        SystemCommand::Check => {
            let found = rt.system_check()?;
            for f in &found {
                println!("{f}");
            }
            if found.is_empty() {
                println!("ok: records and kernel agree");
                Ok(0)
            } else {
                eprintln!(
                    "pont: {} difference(s) found; `pont system prune` repairs them",
                    found.len()
                );
                Ok(EXIT_DIFFERENCES)
            }
        }
        SystemCommand::Prune => {
            for action in rt.system_prune()? {
                println!("{action}");
            }
            Ok(0)
        }
    }
}
