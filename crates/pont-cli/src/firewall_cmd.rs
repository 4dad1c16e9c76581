//! `pont firewall show` and `pont firewall reload`.

use anyhow::bail;
use pont::runtime::Runtime;

use crate::cli::FirewallCommand;

pub fn dispatch(rt: &Runtime, cmd: FirewallCommand) -> anyhow::Result<()> {
    let engine = rt.engine();
    match cmd {
        FirewallCommand::Show => {
            println!("# backend: {}", engine.firewall());
            print!("{}", engine.firewall().show(&engine.planned_rules()?)?);
        }
        FirewallCommand::Reload => {
            let lock = engine.store().lock()?;
            if engine.store().networks()?.is_empty() {
                bail!(
                    "nothing to reload: pont has no networks in {}",
                    engine.store().root().display()
                );
            }
            rt.reconcile(&lock)?;
            engine.sync_firewall(&lock)?;
            println!(
                "reloaded {} rules for {} network(s)",
                engine.firewall(),
                engine.store().networks()?.len()
            );
        }
    }
    Ok(())
}
