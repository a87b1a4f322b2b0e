//! LogQL tests: the parser over Loki's documented examples and bad input, and evaluation
//! against a real store, before and after its head is flushed into parts.

use dozor_model::{Labels, LogRecord};

use super::*;
use crate::{Direction, LogDb, Options};

const S: i64 = 1_000_000_000;

#[test]
fn parses_lokis_documented_queries() {
    for q in [
        r#"{container="query-frontend",namespace="loki-dev"} |= "metrics.go" | logfmt | duration > 10s and throughput_mb < 500"#,
        r#"{job="mysql"} |= "error" != "timeout""#,
        r#"{name=~"mysql.+"} |~ "error=\\w+" or "panic""#,
        r#"{app="foo"} | json | line_format "{{.message}}""#,
        r#"{app="foo"} | json first_server="servers[0]", ua="request.headers[\"User-Agent\"]""#,
        r#"{app="foo"} | regexp "(?P<method>\\w+) (?P<path>[\\w|/]+) \\((?P<status>\\d+?)\\) (?P<duration>.*)""#,
        r#"{job="nginx"} | pattern `<ip> - - <_> "<method> <uri> <_>" <status> <size> <_> "<agent>" <_>`"#,
        r#"{app="foo"} | logfmt | level="error" or (status >= 500 and status < 600), user!="" | label_format who=user | drop pod, stream="stderr""#,
        r#"count_over_time({job="mysql"}[5m])"#,
        r#"sum by (host) (rate({job="mysql"} |= "error" != "timeout" | json | duration > 10s [1m]))"#,
        r#"topk(10, sum(rate({region="us-east1"}[5m])) by (name))"#,
        r#"quantile_over_time(0.99, {cluster="ops-tools1",container="ingress-nginx"} | json | __error__ = "" | unwrap request_time [1m]) by (path)"#,
        r#"sum_over_time({app="shop"} | logfmt | unwrap bytes(size) | size > 0 [5m] offset 1h) by (user)"#,
        r#"sum(count_over_time({level="error"}[3m])) >= 20"#,
        r#"sum(rate({app="a"}[1m])) / sum(rate({app=~".+"}[1m])) * 100"#,
        r#"sum by (user_id) (count_over_time({service="payments"} | json | amount > 10000 [5m])) > bool 3"#,
        r#"count_over_time({a="b"}[5m]) or vector(0)"#,
        r#"label_replace(rate({a="b"}[1m]), "x", "$1", "a", "(.*)")"#,
        r#"-sum(count_over_time({a="b"}[1m])) + 2 ^ 3 ^ 2"#,
        r#"count_over_time(({a="b"} | json)[1m])"#,
        r#"count_over_time({a="b"}[1m] |= "x")"#,
        r#"{a="b"} | logfmt --strict | decolorize | keep a, b | unpack"#,
    ] {
        parse(q).unwrap_or_else(|e| panic!("{q}: {e}"));
    }
}

#[test]
fn precedence_and_associativity() {
    let Expr::Metric(ast::MetricExpr::Binary(b)) = parse("1 + 2 * 3").unwrap() else {
        panic!("not binary")
    };
    assert_eq!(b.op, ast::BinOp::Add);
    let Expr::Metric(ast::MetricExpr::Binary(b)) = parse("2 ^ 3 ^ 2").unwrap() else {
        panic!("not binary")
    };
    assert!(
        matches!(b.rhs, ast::MetricExpr::Binary(_)),
        "^ is right associative"
    );
    let Expr::Metric(ast::MetricExpr::Binary(b)) =
        parse(r#"vector(1) or vector(2) and vector(3)"#).unwrap()
    else {
        panic!("not binary")
    };
    assert_eq!(b.op, ast::BinOp::Or);
}

#[test]
fn bad_queries_say_what_and_where() {
    for (q, needle) in [
        ("", "empty query"),
        ("{}", "at least one matcher"),
        (r#"{a=""}"#, "at least one matcher"),
        (r#"{a="b""#, "`,` or `}`"),
        (r#"{a~"b"}"#, "unexpected character"),
        (r#"{a="b"} |= 5"#, "quoted string"),
        (r#"{a="b"} | nope"#, "unknown stage"),
        (r#"{a="b"} |~ "(""#, "invalid regex"),
        (r#"{a="b"} | regexp "\\d+""#, "named capture"),
        (r#"count_over_time({a="b"})"#, "range such as [5m]"),
        (r#"count_over_time({a="b"}[0s])"#, "positive"),
        (r#"sum_over_time({a="b"}[5m])"#, "unwrap"),
        (
            r#"count_over_time({a="b"} | unwrap x [5m])"#,
            "takes no | unwrap",
        ),
        (r#"{a="b"} | unwrap x"#, "inside a range aggregation"),
        (r#"sum({a="b"})"#, "wrap the log query"),
        (r#"{a="b"} + 1"#, "metric queries on both sides"),
        (r#"1 and 2"#, "vectors on both sides"),
        (
            r#"topk(0, count_over_time({a="b"}[1m]))"#,
            "positive integer",
        ),
        (r#"nope({a="b"})"#, "unknown function"),
        (r#"{a="b"} | line_format "{{ if .a }}""#, "not supported"),
        (
            r#"count_over_time({a="b"}[1m]) + on(a) group_left count_over_time({a="b"}[1m])"#,
            "group_left",
        ),
        (r#"{a="b"} extra"#, "after the end"),
    ] {
        let e = parse(q).expect_err(q);
        assert!(e.message.contains(needle), "{q}: {e}");
        assert!(e.offset <= q.len(), "{q}: offset {} past the end", e.offset);
    }
    let deep = format!("{}vector(1){}", "(".repeat(200), ")".repeat(200));
    assert!(parse(&deep).unwrap_err().message.contains("nested deeper"));
    // Long chains would make evaluation and drop recurse as deep: refused by count.
    for long in [
        format!("vector(1){}", " + 1".repeat(2000)),
        format!("{}1", "-".repeat(2000)),
        format!(r#"{{a="b"}} | x="1"{}"#, r#" and x="1""#.repeat(2000)),
        format!(r#"{{a="b"}} | x="1"{}"#, r#" or x="1""#.repeat(2000)),
    ] {
        assert!(
            parse(&long).unwrap_err().message.contains("operators"),
            "{}",
            &long[..40]
        );
    }
    assert!(parse(&format!("vector(1){}", " + 1".repeat(100))).is_ok());
    // Regexes nested past the limit (found by the fuzzer: a stack overflow in debug builds).
    let starry = format!(r#"{{a="b"}} |~ "x{}""#, "*".repeat(300));
    assert!(
        parse(&starry)
            .unwrap_err()
            .message
            .contains("invalid regex")
    );
    let starry = format!(r#"{{a=~"x{}"}}"#, "*".repeat(300));
    assert!(parse(&starry).is_err());
}

fn shop_db(dir: &std::path::Path) -> LogDb {
    let db = LogDb::open(dir, Options::default()).unwrap();
    let stream =
        |svc: &str, level: &str| Labels::from_pairs([("service", svc), ("level", level)]).unwrap();
    let mut records = Vec::new();
    // 0..600 s: an error every 10 s from checkout (user alternates), an info every 5 s
    // from shop with a JSON body, one payment line with a big amount.
    for i in 0..60 {
        let mut r = LogRecord::new(
            i * 10 * S,
            stream("checkout", "error"),
            format!(
                "level=error msg=\"payment failed\" user={} took={}ms",
                i % 2,
                100 * i
            ),
        );
        r.fields = vec![("trace_id".into(), format!("t{i}"))];
        records.push(r);
    }
    for i in 0..120 {
        records.push(LogRecord::new(
            i * 5 * S + 1,
            stream("shop", "info"),
            format!(
                r#"{{"path":"/cart","status":{},"user":{{"id":"{}"}},"amount":{}}}"#,
                if i % 40 == 0 { 502 } else { 200 },
                i % 3,
                i * 100
            ),
        ));
    }
    records.push(LogRecord::new(
        300 * S,
        stream("shop", "info"),
        "not json at all",
    ));
    db.append(records.clone()).unwrap();
    db
}

fn instant(db: &LogDb, q: &str, at_s: i64) -> Vec<(Key, f64)> {
    let range = Range {
        start_ns: at_s * S,
        end_ns: at_s * S,
        step_ns: 0,
        limit: 1000,
        direction: Direction::Backward,
    };
    match evaluate(db, &parse(q).unwrap(), range).unwrap().0 {
        QueryResult::Vector(v) => v.into_iter().map(|s| (s.labels, s.points[0].1)).collect(),
        QueryResult::Scalar(_, v) => vec![(Vec::new(), v)],
        other => panic!("{q}: {other:?}"),
    }
}

fn labels(pairs: &[(&str, &str)]) -> Key {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn check_metric_queries(db: &LogDb) {
    // Errors in the 3 minutes up to t=600, the window (420 s, 600 s]: lines at 430..=590.
    assert_eq!(
        instant(db, r#"sum(count_over_time({level="error"}[3m]))"#, 600),
        vec![(vec![], 17.0)]
    );
    assert_eq!(
        instant(
            db,
            r#"sum(count_over_time({level="error"}[3m])) >= 20"#,
            600
        ),
        vec![]
    );
    assert_eq!(
        instant(
            db,
            r#"sum(count_over_time({level="error"}[3m])) >= bool 20"#,
            600
        ),
        vec![(vec![], 0.0)]
    );
    // Per-user error counts through logfmt, and the fields stay out of the labels.
    assert_eq!(
        instant(
            db,
            r#"sum by (user) (count_over_time({service="checkout"} |= "failed" | logfmt [10m]))"#,
            599
        ),
        vec![
            (labels(&[("user", "0")]), 30.0),
            (labels(&[("user", "1")]), 30.0)
        ]
    );
    // Fields are labels of the series, as Loki's structured metadata (one trace per line
    // here), until an aggregation groups them away.
    let per_trace = instant(db, r#"count_over_time({service="checkout"}[1m])"#, 599);
    assert_eq!(per_trace.len(), 6);
    assert_eq!(
        per_trace[0],
        (
            labels(&[
                ("level", "error"),
                ("service", "checkout"),
                ("trace_id", "t54")
            ]),
            1.0
        )
    );
    assert_eq!(
        instant(
            db,
            r#"sum by (service, level) (count_over_time({service="checkout"}[1m]))"#,
            599
        ),
        vec![(labels(&[("level", "error"), ("service", "checkout")]), 6.0)]
    );
    assert_eq!(
        instant(
            db,
            r#"sum without (trace_id) (count_over_time({service="checkout"}[1m]))"#,
            599
        ),
        vec![(labels(&[("level", "error"), ("service", "checkout")]), 6.0)]
    );
    // A field (structured metadata) can be grouped by and filtered on.
    assert_eq!(
        instant(
            db,
            r#"sum by (trace_id) (count_over_time({service="checkout"} | trace_id="t7" [10m]))"#,
            599
        ),
        vec![(labels(&[("trace_id", "t7")]), 1.0)]
    );
    // JSON: nested members flatten, numbers compare, parse errors are left out of metrics.
    assert_eq!(
        instant(
            db,
            r#"sum(count_over_time({service="shop"} | json | status >= 500 [10m]))"#,
            599
        ),
        vec![(vec![], 3.0)]
    );
    assert_eq!(
        instant(
            db,
            r#"sum by (user_id) (count_over_time({service="shop"} | json | user_id="2" [10m]))"#,
            599
        ),
        vec![(labels(&[("user_id", "2")]), 40.0)]
    );
    // `sum by` over a non-additive operation sums the per-series results (one series per
    // line here: every line has its own trace id): 5.4 s + … + 5.9 s = 33.9 s, not 5.9 s.
    let sum_of_max = instant(
        db,
        r#"sum by (service) (max_over_time({service="checkout"} | logfmt | unwrap duration(took) [1m]))"#,
        599,
    );
    assert_eq!(sum_of_max.len(), 1);
    assert!((sum_of_max[0].1 - 33.9).abs() < 1e-9, "{sum_of_max:?}");
    // Unwrapped values: durations in seconds, sums, maxima, quantiles.
    assert_eq!(
        instant(
            db,
            r#"max_over_time({service="checkout"} | logfmt | unwrap duration(took) [10m]) by (service)"#,
            599
        ),
        vec![(labels(&[("service", "checkout")]), 5.9)]
    );
    assert_eq!(
        instant(
            db,
            r#"sum(sum_over_time({service="shop"} | json | amount > 10000 | unwrap amount [10m]))"#,
            599
        ),
        vec![(vec![], (101..120).map(|i| i as f64 * 100.0).sum())]
    );
    let q = instant(
        db,
        r#"quantile_over_time(0.5, {service="shop"} | json | unwrap amount [10m]) by (service)"#,
        599,
    );
    assert_eq!(q, vec![(labels(&[("service", "shop")]), 5950.0)]);
    // rate is per second; bytes count the line.
    assert_eq!(
        instant(db, r#"sum(rate({service="checkout"}[1m]))"#, 599),
        vec![(vec![], 0.1)]
    );
    let bytes = "level=error msg=\"payment failed\" user=1 took=5900ms".len() as f64;
    assert_eq!(
        instant(
            db,
            r#"sum(bytes_over_time({service="checkout"} |= "took=5900ms" [1m]))"#,
            599
        ),
        vec![(vec![], bytes)]
    );
    // topk, binary operators between vectors, scalars, absent_over_time.
    assert_eq!(
        instant(
            db,
            r#"topk(1, sum by (service) (count_over_time({service=~".+"}[10m])))"#,
            599
        ),
        vec![(labels(&[("service", "shop")]), 121.0)]
    );
    assert_eq!(
        instant(
            db,
            r#"sum(count_over_time({service="checkout"}[10m])) / sum(count_over_time({service=~".+"}[10m])) * 100"#,
            599
        ),
        vec![(vec![], 60.0 / 181.0 * 100.0)]
    );
    assert_eq!(
        instant(db, r#"absent_over_time({service="gone"}[1m])"#, 599),
        vec![(labels(&[("service", "gone")]), 1.0)]
    );
    assert_eq!(
        instant(db, r#"absent_over_time({service="shop"}[1m])"#, 599),
        vec![]
    );
    assert_eq!(
        instant(
            db,
            r#"count_over_time({service="gone"}[1m]) or vector(0)"#,
            599
        ),
        vec![(vec![], 0.0)]
    );
    assert_eq!(instant(db, "2 * 3 + 1", 0), vec![(vec![], 7.0)]);
    // offset moves the window back.
    assert_eq!(
        instant(
            db,
            r#"sum(count_over_time({service="checkout"}[1m] offset 10m))"#,
            1199
        ),
        vec![(vec![], 6.0)]
    );

    // A range query: one value per step, steps without lines left out.
    let range = Range {
        start_ns: 0,
        end_ns: 1200 * S,
        step_ns: 60 * S,
        limit: 0,
        direction: Direction::Backward,
    };
    let (r, stats) = evaluate(
        db,
        &parse(r#"sum(count_over_time({service="checkout"}[1m]))"#).unwrap(),
        range,
    )
    .unwrap();
    let QueryResult::Matrix(m) = r else {
        panic!("a range query gives a matrix")
    };
    assert_eq!(m.len(), 1);
    let pts = &m[0].points;
    assert_eq!(pts[0], (0, 1.0));
    assert_eq!(pts[1], (60 * S, 6.0));
    assert_eq!(
        pts.len(),
        11,
        "steps 0..=600 s have lines, later ones do not: {pts:?}"
    );
    assert!(stats.lines_scanned >= 60);
}

fn check_log_queries(db: &LogDb) {
    let run = |q: &str, limit: usize, direction: Direction| {
        let range = Range {
            start_ns: 0,
            end_ns: 1000 * S,
            step_ns: 0,
            limit,
            direction,
        };
        match evaluate(db, &parse(q).unwrap(), range).unwrap().0 {
            QueryResult::Streams(s) => s,
            other => panic!("{q}: {other:?}"),
        }
    };
    // Newest first, limited; extracted labels join the stream's labels.
    let s = run(
        r#"{service="checkout"} |= "failed" | logfmt | user="1" | line_format "{{.user}} took {{.took}}" | drop trace_id, took"#,
        2,
        Direction::Backward,
    );
    assert_eq!(s.len(), 1);
    assert_eq!(
        s[0].entries,
        vec![
            (590 * S, "1 took 5900ms".to_owned()),
            (570 * S, "1 took 5700ms".to_owned())
        ]
    );
    let names: Vec<&str> = s[0].labels.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["level", "level_extracted", "msg", "service", "user"]
    );
    // Oldest first; JSON errors flow with __error__ and can be filtered out.
    let s = run(
        r#"{service="shop"} | json | __error__ != """#,
        10,
        Direction::Forward,
    );
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].entries, vec![(300 * S, "not json at all".to_owned())]);
    assert!(
        s[0].labels
            .contains(&("__error__".to_owned(), "JSONParserErr".to_owned()))
    );
    let s = run(
        r#"{service="shop"} != "cart" or "json""#,
        10,
        Direction::Forward,
    );
    assert!(
        s.is_empty(),
        "!= with alternatives drops lines containing any of them"
    );
    let s = run(
        r#"{service=~"shop|checkout"} |~ "status\":502" | json | keep status"#,
        10,
        Direction::Forward,
    );
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].labels, labels(&[("status", "502")]));
    assert_eq!(s[0].entries.len(), 3);
}

#[test]
fn evaluates_the_same_from_the_head_and_from_parts() {
    let dir = tempfile::tempdir().unwrap();
    let db = shop_db(dir.path());
    check_metric_queries(&db);
    check_log_queries(&db);
    db.flush().unwrap();
    assert_eq!(db.head_len(), 0);
    check_metric_queries(&db);
    check_log_queries(&db);
}

#[test]
fn limits_are_errors_not_exhaustion() {
    let dir = tempfile::tempdir().unwrap();
    let db = shop_db(dir.path());
    let range = Range {
        start_ns: 0,
        end_ns: 100_000 * S,
        step_ns: S,
        limit: 0,
        direction: Direction::Backward,
    };
    let e = evaluate(
        &db,
        &parse(r#"count_over_time({service="shop"}[1m])"#).unwrap(),
        range,
    )
    .unwrap_err();
    assert!(e.to_string().contains("steps exceed"), "{e}");
    let range = Range {
        start_ns: 10 * S,
        end_ns: 0,
        step_ns: S,
        limit: 0,
        direction: Direction::Backward,
    };
    assert!(evaluate(&db, &parse("vector(1)").unwrap(), range).is_err());
}

#[test]
fn timestamps_format_like_go() {
    assert_eq!(rfc3339_ns(0), "1970-01-01T00:00:00Z");
    assert_eq!(
        rfc3339_ns(1_700_000_000_123_000_000),
        "2023-11-14T22:13:20.123Z"
    );
    assert_eq!(rfc3339_ns(-1), "1969-12-31T23:59:59.999999999Z");
}
