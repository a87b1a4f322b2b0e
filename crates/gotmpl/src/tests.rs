//! The language through a small dialect: fields, maps, methods, control flow, functions,
//! Go's formatting, HTML escaping, libraries of named templates, and every mistake an error.

use std::collections::BTreeMap;

use super::*;

/// A dialect with one function and one method, as Prometheus' and Alertmanager's add theirs.
struct Shop;

impl Dialect for Shop {
    fn has(&self, name: &str) -> bool {
        name == "double"
    }

    fn call(&self, _: &str, args: Vec<Value>) -> Result<Value, String> {
        let [a] = <[Value; 1]>::try_from(args).map_err(|_| "one argument".to_owned())?;
        Ok(Value::Float(a.float()? * 2.0))
    }

    fn member(&self, v: &Value, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
        match (v, name, args) {
            (Value::Map(m), "Without", [Value::Str(k)]) => {
                let mut m = m.clone();
                m.remove(k);
                Some(Ok(Value::Map(m)))
            }
            _ => None,
        }
    }
}

/// A dialect that refuses `define`, as Prometheus' alert templates do.
struct NoDefines;

impl Dialect for NoDefines {
    fn has(&self, _: &str) -> bool {
        false
    }

    fn call(&self, name: &str, _: Vec<Value>) -> Result<Value, String> {
        Err(format!("function {name:?} not defined"))
    }

    fn definitions(&self) -> bool {
        false
    }
}

fn data() -> Value {
    let labels = BTreeMap::from([
        ("instance".to_owned(), "db:9100".to_owned()),
        ("job".to_owned(), "shop".to_owned()),
    ]);
    Value::record([
        ("Status", Value::Str("firing".into())),
        ("Labels", Value::Map(labels)),
        (
            "Items",
            Value::List(vec![Value::Int(3), Value::Int(5), Value::Int(8)]),
        ),
        ("Value", Value::Float(0.5)),
        ("Empty", Value::List(Vec::new())),
        ("At", Value::Time(Some(1_796_500_000_123))),
        ("Never", Value::Time(None)),
        ("Note", Value::Str("<b>&</b>".into())),
    ])
}

fn render_with(src: &str, html: bool, library: Option<&Library>) -> Result<String, String> {
    let t = Template::parse(src, &Shop)?;
    t.render(
        &data(),
        &Render {
            dialect: &Shop,
            library,
            html,
            vars: vec![("$answer".into(), Value::Int(42))],
        },
    )
}

fn render(src: &str) -> Result<String, String> {
    render_with(src, false, None)
}

#[test]
fn fields_maps_methods_and_variables() {
    assert_eq!(
        render("{{ .Status }} {{ .Labels.job }}").unwrap(),
        "firing shop"
    );
    assert_eq!(render("{{ .Labels.missing }}|").unwrap(), "|");
    assert_eq!(render("{{ $answer }} {{ $.Status }}").unwrap(), "42 firing");
    assert_eq!(
        render(r#"{{ .Labels.Without "job" }}"#).unwrap(),
        "map[instance:db:9100]"
    );
    assert_eq!(
        render("{{ .Labels }}").unwrap(),
        "map[instance:db:9100 job:shop]"
    );
    assert_eq!(
        render("{{ double .Value }} {{ .Value | double }}").unwrap(),
        "1 1"
    );
    assert_eq!(
        render("{{ (index .Items 1) }} {{ len .Items }}").unwrap(),
        "5 3"
    );
    assert_eq!(
        render(r#"{{ .At.Format "2006-01-02T15:04:05.000Z07:00 Mon Jan _2 3PM" }}"#).unwrap(),
        "2026-12-05T19:46:40.123Z Sat Dec  5 7PM"
    );
    assert_eq!(
        render("{{ .At }}|{{ .Never }}|{{ .At.Unix }}|{{ .Never.IsZero }}").unwrap(),
        "2026-12-05 19:46:40.123 +0000 UTC|0001-01-01 00:00:00 +0000 UTC|1796500000|true"
    );
}

#[test]
fn control_flow_and_trimming() {
    let t = "{{ if eq .Status \"resolved\" }}ok{{ else if gt (len .Items) 2 }}many{{ else }}few{{ end }}";
    assert_eq!(render(t).unwrap(), "many");
    assert_eq!(
        render("{{ with .Labels.none }}{{ . }}{{ else with .Labels.job }}[{{ . }}]{{ end }}")
            .unwrap(),
        "[shop]"
    );
    assert_eq!(render("a  {{- 1 -}}  b {{/* note */}}c").unwrap(), "a1b c");
    assert_eq!(render("a {{- /* note */ -}} b").unwrap(), "ab");
    assert_eq!(
        render("{{ $n := 0 }}{{ range .Items }}{{ $n = . }}{{ end }}{{ $n }}").unwrap(),
        "8"
    );
    assert_eq!(
        render("{{ range $i, $e := .Items }}{{ if eq $e 5 }}{{ continue }}{{ end }}{{ if gt $e 6 }}{{ break }}{{ end }}{{ $i }}:{{ $e }};{{ end }}").unwrap(),
        "0:3;"
    );
    assert_eq!(
        render("{{ range $k, $v := .Labels }}{{ $k }}={{ $v }};{{ end }}").unwrap(),
        "instance=db:9100;job=shop;"
    );
    assert_eq!(
        render("{{ range .Empty }}x{{ else }}none{{ end }}").unwrap(),
        "none"
    );
    assert_eq!(render("{{ range 3 }}{{ . }}{{ end }}").unwrap(), "012");
    assert_eq!(
        render(r#"{{ define "x" }}<{{ . }}>{{ end }}{{ template "x" .Status }}{{ block "y" 3 }}[{{ . }}]{{ end }}"#).unwrap(),
        "<firing>[3]"
    );
    assert_eq!(
        render(r#"{{ and 1 0 }} {{ or 0 "" "z" }} {{ not .Items }} {{ and 1 2 }}"#).unwrap(),
        "0 z false 2"
    );
}

#[test]
fn functions_and_go_formatting() {
    assert_eq!(
        render(r#"{{ "a b" | toUpper }} {{ title "hello wide world" }} {{ toLower "X" }}"#)
            .unwrap(),
        "A B Hello Wide World x"
    );
    assert_eq!(
        render(r#"{{ reReplaceAll "(\\w+):(\\d+)" "$2@$1" .Labels.instance }}"#).unwrap(),
        "9100@db"
    );
    assert_eq!(
        render(r#"{{ match "^d" "db" }} {{ match "^b" "db" }}"#).unwrap(),
        "true false"
    );
    assert_eq!(
        render(r#"{{ printf "%s=%5.1f|%-4d|%03d|%q|%v|%x|%.2e|%g" "x" 3.14159 7 5 "hi" 0.5 255 1234.5 1e6 }}"#).unwrap(),
        r#"x=  3.1|7   |005|"hi"|0.5|ff|1.23e+03|1e+06"#
    );
    assert_eq!(render(r#"{{ printf "%d" }}"#).unwrap(), "%!d(MISSING)");
    assert_eq!(
        render(r#"{{ printf "%d" 1 2 }}"#).unwrap(),
        "1%!(EXTRA int=2)"
    );
    assert_eq!(render(r#"{{ print 1 2 "a" 3 }}"#).unwrap(), "1 2a3");
    assert_eq!(render(r#"{{ println 1 "a" }}"#).unwrap(), "1 a\n");
    assert_eq!(
        render(r#"{{ "a&b c" | urlquery }} {{ html "<i>" }} {{ js "it's" }}"#).unwrap(),
        r"a%26b+c &lt;i&gt; it\'s"
    );
    assert_eq!(
        render("{{ 1e3 }} {{ 0x10 }} {{ -2 }} {{ 1.5 }} {{ 1e6 }} {{ 0.00001 }}").unwrap(),
        "1000 16 -2 1.5 1e+06 1e-05"
    );
    assert_eq!(go_v(123_456.0), "123456");
    assert_eq!(go_v(1_234_567.0), "1.234567e+06");
    assert_eq!(go_g(0.000_012_34, 3), "1.23e-05");
}

#[test]
fn html_escapes_what_safe_html_does_not_mark() {
    assert_eq!(
        render_with(r#"<p>{{ .Note }}{{ "<br>" | safeHtml }}</p>"#, true, None).unwrap(),
        "<p>&lt;b&gt;&amp;&lt;/b&gt;<br></p>"
    );
    assert_eq!(render_with("{{ .Note }}", false, None).unwrap(), "<b>&</b>");
}

#[test]
fn libraries_hold_named_templates() {
    let mut lib = Library::default();
    lib.add(
        r#"ignored {{ define "title" }}[{{ .Status | toUpper }}]{{ end }}"#,
        &Shop,
    )
    .unwrap();
    lib.add(r#"{{ define "title" }}<{{ .Status }}>{{ end }}{{ define "t2" }}{{ template "title" . }}!{{ end }}"#, &Shop)
        .unwrap();
    assert!(lib.has("t2") && lib.names().count() == 2);
    assert_eq!(
        render_with(r#"{{ template "t2" . }}"#, false, Some(&lib)).unwrap(),
        "<firing>!",
        "a later definition replaces an earlier one"
    );
    assert!(lib.add("{{ define \"x\" }}", &Shop).is_err());
}

#[test]
fn mistakes_are_errors_naming_them_never_panics() {
    for (src, want) in [
        ("{{ .Nope }}", "can't evaluate field Nope"),
        ("{{ if .Status }}", "{{if}} without {{end}}"),
        ("{{ range .Items }}{{ else }}", "{{range}} without {{end}}"),
        ("{{ end }}", "unexpected {{end}}"),
        ("{{ else }}", "unexpected {{else}}"),
        ("{{ nosuch 1 }}", "function \"nosuch\" not defined"),
        ("{{ template \"missing\" }}", "no template"),
        ("{{ \"x\" | .Status }}", "can't call Status"),
        ("{{ .Status", "unclosed action"),
        ("{{ \"abc }}", "unterminated quoted string"),
        ("{{ (1 }}", "unclosed ("),
        ("{{ | x }}", "missing command"),
        ("{{ $x }}", "undefined variable"),
        (
            "{{ define \"r\" }}{{ template \"r\" }}{{ end }}{{ template \"r\" }}",
            "too deep",
        ),
        ("{{ range 1.5 }}{{ end }}", "can't iterate"),
        ("{{ range 1000000 }}x{{ end }}", "too long"),
        ("{{ len 3 }}", "len of int"),
        ("{{ lt 1 \"a\" }}", "incompatible"),
        ("{{ match \"(\" \"a\" }}", "regex"),
        ("{{ index .Items 7 }}", "out of range"),
        (
            "{{ .Labels.job.x }}",
            "can't evaluate field x in type string",
        ),
        ("{{ 1 2 }}", "can't give arguments"),
        ("{{ 1.2.3 }}", "bad number"),
        ("{{ # }}", "unexpected"),
    ] {
        let e = render(src).unwrap_err();
        assert!(e.contains(want), "{src}: {e}");
    }
    let e = Template::parse("{{ define \"x\" }}{{ end }}", &NoDefines).unwrap_err();
    assert!(e.contains("not supported"), "{e}");
    assert!(Template::parse("{{ template \"x\" }}", &NoDefines).is_err());
    assert!(Template::parse("plain", &Plain).unwrap().is_plain());
    assert!(!Template::parse("{{ 1 }}", &Plain).unwrap().is_plain());
}
