//! Rule packs shipped with Dozor: rule files compiled into the binary, enabled by naming
//! them as `pack:<name>` among a tenant's rule files. Their sources live in
//! `deploy/rules/` and, for the domain packs, beside their code (`crates/kkt/rules/`), where
//! users can copy them from.

/// Every shipped pack: name and rule file text.
pub const PACKS: [(&str, &str); 2] = [
    (
        "pipeline",
        include_str!("../../../deploy/rules/pipeline.yml"),
    ),
    // Cash registers under 54-FZ; `kkt.rules` loads it for the pack's own tenant.
    ("kkt-54fz", include_str!("../../kkt/rules/kkt-54fz.yml")),
];

/// The prefix that names a pack in a list of rule files.
pub const PREFIX: &str = "pack:";

/// The rule file of the pack `name`.
pub fn get(name: &str) -> Option<&'static str> {
    PACKS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| *text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pack_is_a_valid_rule_file() {
        for (name, text) in PACKS {
            let groups = crate::file::parse(text, &format!("{PREFIX}{name}"))
                .unwrap_or_else(|e| panic!("pack {name}: {e:?}"));
            assert!(!groups.is_empty(), "{name}");
        }
        assert!(get("pipeline").is_some());
        assert!(get("kkt-54fz").is_some_and(|t| t.contains("KktOfdBlocked")));
        assert!(get("nope").is_none());
    }
}
