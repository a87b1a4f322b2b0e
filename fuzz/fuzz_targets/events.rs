//! Fuzzes the business-event decoder and the ingest pipeline (logfmt, JSON and regex rules,
//! level normalisation): records or an error naming the field, never a panic.
#![no_main]

use std::sync::OnceLock;

fn pipeline() -> &'static dozor_ingest::pipeline::Pipeline {
    static P: OnceLock<dozor_ingest::pipeline::Pipeline> = OnceLock::new();
    P.get_or_init(|| {
        let rule = |sel: &str, parse: &str, regex: Option<&str>| dozor_ingest::pipeline::RuleConfig {
            selector: sel.into(),
            parse: Some(parse.into()),
            regex: regex.map(Into::into),
            message: Some("msg".into()),
            time: Some("ts".into()),
            level: None,
        };
        let selector = |s: &str| match dozor_logs::logql::parse(s).map_err(|e| e.to_string())? {
            dozor_logs::logql::Expr::Log(l) => Ok(l.selector),
            dozor_logs::logql::Expr::Metric(_) => Err("not a selector".to_owned()),
        };
        dozor_ingest::pipeline::Pipeline::compile(
            &[
                rule(r#"{event="transaction"}"#, "json", None),
                rule(r#"{event=~"user.*"}"#, "regex", Some(r"^(?P<ts>\S+) (?P<level>\w+) (?P<msg>.*)$")),
                rule(r#"{event=~".+"}"#, "logfmt", None),
            ],
            &selector,
        )
        .unwrap_or_default()
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(records) = dozor_ingest::events::parse(data, 1_796_119_200_000_000_000, None) {
        for mut r in records {
            pipeline().apply(&mut r);
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = dozor_model::logfmt::parse(text);
        let _ = dozor_ingest::pipeline::normalize_level(text);
    }
});
