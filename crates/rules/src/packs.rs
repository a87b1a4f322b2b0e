//! Rule packs shipped with Dozor: rule files compiled into the binary, enabled by naming
//! them as `pack:<name>` among a tenant's rule files. Their sources live in
//! `deploy/rules/` and, for the domain packs, beside their code (`crates/kkt/rules/`), where
//! users can copy them from. A pack may be several files: `pack:shop` keeps its LogQL
//! groups apart from its PromQL ones, which Prometheus' `promtool` reads and tests.

use crate::file::{RuleError, RuleGroup};

/// Every shipped pack: its name and its rule files (name, text).
pub const PACKS: [(&str, &[(&str, &str)]); 4] = [
    (
        "pipeline",
        &[(
            "pipeline.yml",
            include_str!("../../../deploy/rules/pipeline.yml"),
        )],
    ),
    // Cash registers under 54-FZ; `kkt.rules` loads it for the pack's own tenant.
    (
        "kkt-54fz",
        &[("kkt-54fz.yml", include_str!("../../kkt/rules/kkt-54fz.yml"))],
    ),
    // Seed 002's shop, MES and CRM: the LogQL groups, then the PromQL ones.
    (
        "shop",
        &[
            (
                "shop-logs.yml",
                include_str!("../../../deploy/rules/shop-logs.yml"),
            ),
            ("shop.yml", include_str!("../../../deploy/rules/shop.yml")),
        ],
    ),
    // Seed 004's ticket marketplace: the chain's LogQL records, then the alerts on them and
    // on the fraud detectors' findings.
    (
        "ticketing",
        &[
            (
                "ticketing-chain.yml",
                include_str!("../../../deploy/rules/ticketing-chain.yml"),
            ),
            (
                "ticketing.yml",
                include_str!("../../../deploy/rules/ticketing.yml"),
            ),
        ],
    ),
];

/// The prefix that names a pack in a list of rule files.
pub const PREFIX: &str = "pack:";

/// The rule files of the pack `name`.
pub fn get(name: &str) -> Option<&'static [(&'static str, &'static str)]> {
    PACKS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, files)| *files)
}

/// The groups of every file of the pack `name`, in order (`None`: no such pack); errors
/// name the file as `pack:<name>/<file>`.
pub fn parse(name: &str) -> Option<Result<Vec<RuleGroup>, Vec<RuleError>>> {
    let files = get(name)?;
    let mut groups = Vec::new();
    for (file, text) in files {
        match crate::file::parse(text, &format!("{PREFIX}{name}/{file}")) {
            Ok(g) => groups.extend(g),
            Err(e) => return Some(Err(e)),
        }
    }
    Some(Ok(groups))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pack_is_valid_rule_files() {
        for (name, files) in PACKS {
            let groups = parse(name)
                .unwrap_or_else(|| panic!("pack {name}"))
                .unwrap_or_else(|e| panic!("pack {name}: {e:?}"));
            assert!(!groups.is_empty(), "{name}");
            assert!(!files.is_empty(), "{name}");
        }
        assert!(get("kkt-54fz").is_some_and(|f| f[0].1.contains("KktOfdBlocked")));
        // The ticketing pack's LogQL records come before the alerts that read them.
        assert!(
            get("ticketing").is_some_and(|f| f[0].1.contains("chain:transactions:count5m")
                && f[1].1.contains("FraudFindings"))
        );
        assert!(get("nope").is_none() && parse("nope").is_none());
    }

    #[test]
    fn the_shop_pack_is_its_logql_file_then_its_promql_file() {
        let whole = parse("shop").unwrap().unwrap();
        let files = get("shop").unwrap();
        let logs = crate::file::parse(files[0].1, "shop-logs.yml").unwrap();
        let logql = |g: &RuleGroup| {
            g.rules
                .iter()
                .all(|r| matches!(r.parsed, crate::file::Expression::Logql(_)))
        };
        assert!(whole.iter().take(logs.len()).all(logql));
        assert!(!whole.iter().skip(logs.len()).any(logql));
    }
}
