//! Log template mining: lines that come from the same `printf` fall into one cluster, and
//! each cluster's template shows the constant words with `<*>` where values vary. It is what
//! the error-clusters API groups with, and it is scored on Loghub-2k (`dozor detect
//! loghub`).
//!
//! The method is of the Drain family with the known improvements — token typing, merging
//! of over-split templates, variable-length variables — and one configuration for every
//! kind of log (Loghub-2k grouping accuracy 0.983 over its eight public sets; Drain 0.876,
//! Brain 0.992):
//!
//! 1. **Tokens.** A line splits on white space; brackets, quotes, `,`, `;`, `|` and `=`
//!    are tokens of their own wherever they stand, `:` `<` `>` at either end of a word, and
//!    `key:value` splits at its colon when the key is a name. A word holding a digit is a
//!    variable (numbers, times, addresses, ids, hex), and so are paths, host and file
//!    names (`www.example.com`, `chrome.exe`), month and weekday names, level words as
//!    headers write them (`INFO`, `Warning`) and syslog process names (`sshd[42]:`) —
//!    they say who and when, not what happened. A number followed by a unit (`1.2 KB`,
//!    `3 sec`) is one variable. Each variable keeps a *signature*, its punctuation with
//!    runs of letters and digits abbreviated (`core.2275` → `a.#`), so variables of
//!    different kinds do not look alike while lines are grouped.
//! 2. **Shapes.** Lines with the same typed token sequence share a *shape*; every line is
//!    counted into its shape at once (online, O(tokens)).
//! 3. **Neighbours.** Among templates of one length (at first, the shapes), those that
//!    agree on every position but one merge, that position becoming a variable, when it
//!    holds a variable in most of their lines, or at least [`Config::variable_values`]
//!    different words beside at least three constant words elsewhere (one-word events
//!    such as `closeQs` and `cancelAutohide` stay apart, and so do `user=root` and
//!    `user=guest`); repeated until nothing merges.
//! 4. **Variable-length variables.** Templates whose constant words are the same once
//!    every run of variables (with the punctuation touching it) is dropped are one event
//!    whose variable part sometimes has more words (`0 bytes sent` and `9 bytes (1.2 KB)
//!    sent`, a program name with or without `*64`); they merge.
//!
//! Steps 3–4 run over shapes, not lines, whenever the clusters are asked for, so their
//! cost follows the number of shapes; memory is bounded by [`Config::max_shapes`] (beyond
//! it the rarer half of the shapes is forgotten).

use std::collections::{BTreeMap, HashMap};

/// Settings; the defaults are the one configuration used for every kind of log.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Config {
    /// Different words at one position of otherwise equal templates that make it a
    /// variable.
    pub variable_values: usize,
    /// Most shapes kept.
    pub max_shapes: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            variable_values: 4,
            max_shapes: 100_000,
        }
    }
}

/// Constant words (holding a letter) a template needs besides a slot for that slot to
/// become a variable by the number of its words.
const MIN_ANCHORS: usize = 3;

/// One token of a line: a constant word or a variable with its signature (the word with
/// its numbers written `#`: `core.#`, `#.#.#.#:#`), which tells variables of different
/// kinds apart while lines are grouped, and is dropped from templates.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Token {
    Word(String),
    Var(String),
}

impl Token {
    fn is_var(&self) -> bool {
        matches!(self, Token::Var(_))
    }
}

/// A variable word's signature: its punctuation, with each run of letters and digits
/// written `#` when it holds a digit and `a` when not (`core.2275` → `a.#`, an address
/// `#.#.#.#:#`, `R02-M1-N0-C:J12` → `#-#-#-a:#`); host and file names and paths are `name`
/// and `path`, header words `word`. It tells variables of different kinds apart while
/// lines are grouped (`core.2275` from `processor.........0`), and is dropped from
/// templates.
fn signature(w: &str) -> String {
    if !w.bytes().any(|b| b.is_ascii_digit()) {
        return if w.contains('/') {
            "path"
        } else if dotted_name(w) {
            "name"
        } else {
            "word"
        }
        .to_owned();
    }
    let mut out = String::with_capacity(w.len());
    let mut run: Option<bool> = None; // inside a run: whether it holds a digit so far
    for c in w.chars() {
        if c.is_alphanumeric() {
            run = Some(run.unwrap_or(false) || c.is_ascii_digit());
            continue;
        }
        if let Some(digit) = run.take() {
            out.push(if digit { '#' } else { 'a' });
        }
        out.push(c);
    }
    if let Some(digit) = run {
        out.push(if digit { '#' } else { 'a' });
    }
    out
}

/// Punctuation that is a token of its own wherever it stands in a word.
fn is_split_punct(c: char) -> bool {
    matches!(
        c,
        '(' | ')' | '[' | ']' | '{' | '}' | ',' | ';' | '"' | '\'' | '|' | '='
    )
}

/// Punctuation that is a token of its own: [`is_split_punct`], and `:`, `<`, `>` at either
/// end of a word.
fn is_edge_punct(c: char) -> bool {
    is_split_punct(c) || matches!(c, ':' | '<' | '>')
}

/// Splits one white-space-separated word into tokens: split punctuation anywhere, `:`
/// `<` `>` at the ends, and `key:value` at its colon when the key is a name (letters, `_`,
/// `.`, `$`) — times and addresses keep theirs.
fn split_word<'a>(word: &'a str, out: &mut Vec<&'a str>) {
    let mut pieces: Vec<&str> = Vec::new();
    let mut start = 0;
    for (i, c) in word.char_indices() {
        if is_split_punct(c) {
            if start < i {
                pieces.push(&word[start..i]);
            }
            pieces.push(&word[i..i + c.len_utf8()]);
            start = i + c.len_utf8();
        }
    }
    if start < word.len() {
        pieces.push(&word[start..]);
    }
    for piece in pieces {
        let lead = piece
            .find(|c: char| !is_edge_punct(c))
            .unwrap_or(piece.len());
        for (i, c) in piece[..lead].char_indices() {
            out.push(&piece[i..i + c.len_utf8()]);
        }
        if lead == piece.len() {
            continue;
        }
        let end = piece
            .char_indices()
            .rev()
            .find(|(_, c)| !is_edge_punct(*c))
            .map_or(lead, |(i, c)| i + c.len_utf8());
        let body = &piece[lead..end];
        match body.split_once(':') {
            Some((key, value))
                if !value.is_empty()
                    && key.starts_with(|c: char| c.is_ascii_alphabetic())
                    && key
                        .chars()
                        .all(|c| c.is_ascii_alphabetic() || matches!(c, '_' | '.' | '$')) =>
            {
                out.push(key);
                out.push(":");
                out.push(value);
            }
            _ => out.push(body),
        }
        for (i, c) in piece[end..].char_indices() {
            out.push(&piece[end + i..end + i + c.len_utf8()]);
        }
    }
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const LEVELS: [&str; 14] = [
    "trace", "debug", "info", "notice", "warn", "warning", "error", "err", "fatal", "critical",
    "crit", "severe", "alert", "emerg",
];
const UNITS: [&str; 21] = [
    "b", "kb", "mb", "gb", "tb", "kib", "mib", "gib", "tib", "ms", "us", "µs", "ns", "s", "sec",
    "secs", "seconds", "min", "mins", "minutes", "%",
];

/// Whether a word without digits is still a variable: a month or weekday name (header
/// dates) or a level word written as headers write it (`INFO`, `Info`).
fn header_word(w: &str) -> bool {
    let lower = w.to_ascii_lowercase();
    let full_month = [
        "january",
        "february",
        "march",
        "april",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ];
    let capitalised = w.chars().next().is_some_and(char::is_uppercase);
    if capitalised && (MONTHS.contains(&lower.as_str()) || DAYS.contains(&lower.as_str()))
        || full_month.contains(&lower.as_str())
    {
        return true;
    }
    LEVELS.contains(&lower.as_str()) && capitalised
}

/// Whether a word is a host or file name (`www.example.com`, `chrome.exe`): dotted, its
/// last part a short suffix. (Class names, `dfs.DataNode`, end in a long part.)
fn dotted_name(w: &str) -> bool {
    let Some((head, last)) = w.rsplit_once('.') else {
        return false;
    };
    !head.is_empty()
        && !head.ends_with('.')
        && (1..=4).contains(&last.len())
        && last.chars().all(|c| c.is_ascii_alphabetic())
        && head.chars().next().is_some_and(char::is_alphanumeric)
}

/// A line's typed tokens.
fn tokenize(line: &str) -> Vec<Token> {
    let mut raw: Vec<&str> = Vec::new();
    for word in line.split_whitespace() {
        split_word(word, &mut raw);
    }
    let mut out: Vec<Token> = Vec::with_capacity(raw.len());
    for w in raw {
        let var = w.bytes().any(|b| b.is_ascii_digit())
            || header_word(w)
            || w.len() > 1 && w.contains('/')
            || dotted_name(w);
        // A unit after a number belongs to it.
        if !var
            && UNITS.contains(&w.to_ascii_lowercase().as_str())
            && out.last().is_some_and(Token::is_var)
        {
            continue;
        }
        out.push(if var {
            Token::Var(signature(w))
        } else {
            Token::Word(w.to_owned())
        });
    }
    mark_process_names(&mut out);
    out
}

/// A syslog process name — the word before `[pid]` (`sshd[42]:`, `su(pam_unix)[42]:`) —
/// is a variable: it names who logged, not what happened.
fn mark_process_names(tokens: &mut [Token]) {
    let word = |t: &Token, w: &str| matches!(t, Token::Word(x) if x == w);
    for i in 0..tokens.len().saturating_sub(2) {
        if !(word(&tokens[i], "[") && tokens[i + 1].is_var() && word(&tokens[i + 2], "]")) {
            continue;
        }
        let mut j = i;
        // Over one `( … )` right before the `[`.
        if j > 0 && word(&tokens[j - 1], ")") {
            match tokens[..j - 1].iter().rposition(|t| word(t, "(")) {
                Some(open) => j = open,
                None => continue,
            }
        }
        if j > 0 && matches!(&tokens[j - 1], Token::Word(w) if w.chars().any(char::is_alphabetic)) {
            tokens[j - 1] = Token::Var("process".into());
        }
    }
}

/// Lines of one exact token sequence.
#[derive(Debug, Clone)]
struct Shape {
    tokens: Vec<Token>,
    lines: u64,
}

/// The clusters found: for each shape, its cluster, and each cluster's template.
#[derive(Debug, Clone, Default)]
pub struct Clusters {
    /// Shape id → cluster id.
    of_shape: Vec<usize>,
    /// Cluster id → template and lines.
    templates: Vec<(String, u64)>,
}

impl Clusters {
    /// The cluster of a shape.
    pub fn cluster_of(&self, shape: ShapeId) -> Option<usize> {
        self.of_shape.get(shape.0).copied()
    }

    /// Each cluster's template (`<*>` for variables) and line count, by cluster id.
    pub fn templates(&self) -> &[(String, u64)] {
        &self.templates
    }

    /// Each shape's cluster, by shape in the order the shapes were first seen (for
    /// callers that follow when each shape appeared).
    pub fn shape_clusters(&self) -> &[usize] {
        &self.of_shape
    }
}

/// The shape a line fell into; stable while the miner lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ShapeId(usize);

/// An online template miner.
#[derive(Debug, Clone, Default)]
pub struct TemplateMiner {
    config: Config,
    shapes: Vec<Shape>,
    index: HashMap<Vec<Token>, usize>,
}

impl TemplateMiner {
    /// A miner with `config`.
    pub fn new(config: Config) -> TemplateMiner {
        TemplateMiner {
            config,
            shapes: Vec::new(),
            index: HashMap::new(),
        }
    }

    /// Takes a line: the shape it fell into.
    pub fn push(&mut self, line: &str) -> ShapeId {
        let tokens = tokenize(line);
        if let Some(&id) = self.index.get(&tokens) {
            self.shapes[id].lines += 1;
            return ShapeId(id);
        }
        if self.shapes.len() >= self.config.max_shapes {
            self.forget_rarest();
        }
        let id = self.shapes.len();
        self.index.insert(tokens.clone(), id);
        self.shapes.push(Shape { tokens, lines: 1 });
        ShapeId(id)
    }

    /// Halves the shapes kept, dropping the rarest (their ids then name other shapes; a
    /// stream long enough to reach the bound asks for clusters by line, not by old id).
    fn forget_rarest(&mut self) {
        let mut counts: Vec<u64> = self.shapes.iter().map(|s| s.lines).collect();
        let mid = counts.len() / 2;
        let (_, median, _) = counts.select_nth_unstable(mid);
        let cut = *median;
        self.shapes.retain(|s| s.lines > cut);
        self.index = self
            .shapes
            .iter()
            .enumerate()
            .map(|(i, s)| (s.tokens.clone(), i))
            .collect();
    }

    /// How many shapes are kept.
    pub fn shapes(&self) -> usize {
        self.shapes.len()
    }

    /// The clusters of everything pushed so far.
    pub fn clusters(&self) -> Clusters {
        let mut by_len: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (i, s) in self.shapes.iter().enumerate() {
            by_len.entry(s.tokens.len()).or_default().push(i);
        }
        // Step 3: per length, neighbours merged.
        let mut groups: Vec<(Vec<Token>, Vec<usize>)> = Vec::new();
        for ids in by_len.values() {
            groups.extend(self.merge_neighbours(ids));
        }
        // Step 4: templates equal but for runs of variables merged.
        let mut merged: HashMap<Vec<String>, usize> = HashMap::new();
        let mut of_shape = vec![0; self.shapes.len()];
        let mut templates: Vec<(String, u64)> = Vec::new();
        for (template, shapes) in groups {
            let key = constant_skeleton(&template);
            let lines: u64 = shapes.iter().map(|&i| self.shapes[i].lines).sum();
            let id = *merged.entry(key).or_insert_with(|| {
                templates.push((render(&template), 0));
                templates.len() - 1
            });
            templates[id].1 += lines;
            for s in shapes {
                of_shape[s] = id;
            }
        }
        Clusters {
            of_shape,
            templates,
        }
    }

    /// Merges the shapes `ids` (all of one length) into templates: wherever templates
    /// agree on every position but one, and that one takes a variable or at least
    /// [`Config::variable_values`] different words, it is a variable and they are one
    /// template; repeated until nothing merges.
    fn merge_neighbours(&self, ids: &[usize]) -> Vec<(Vec<Token>, Vec<usize>)> {
        let len = self.shapes[ids[0]].tokens.len();
        let mut templates: Vec<(Vec<Token>, Vec<usize>)> = ids
            .iter()
            .map(|&i| (self.shapes[i].tokens.clone(), vec![i]))
            .collect();
        loop {
            let mut changed = false;
            for p in 0..len {
                let mut rests: HashMap<Vec<&Token>, Vec<usize>> = HashMap::new();
                for (t, (tokens, _)) in templates.iter().enumerate() {
                    let rest: Vec<&Token> = tokens
                        .iter()
                        .enumerate()
                        .filter_map(|(q, tok)| (q != p).then_some(tok))
                        .collect();
                    rests.entry(rest).or_default().push(t);
                }
                let mut absorbed = vec![None; templates.len()];
                for members in rests.values().filter(|m| m.len() > 1) {
                    // A slot that mostly holds variables: its words are values too.
                    let lines = |t: usize| -> u64 {
                        templates[t].1.iter().map(|&i| self.shapes[i].lines).sum()
                    };
                    let (mut var_lines, mut top_word) = (0, 0);
                    for &t in members {
                        if templates[t].0[p].is_var() {
                            var_lines += lines(t);
                        } else {
                            top_word = top_word.max(lines(t));
                        }
                    }
                    let var = var_lines > 0 && var_lines >= top_word;
                    // Many words in a slot make a variable only beside enough constant
                    // words: one-word events (`cancelAutohide`, `closeQs`) stay apart.
                    let anchored = templates[members[0]]
                        .0
                        .iter()
                        .enumerate()
                        .filter(|(q, t)| {
                            *q != p
                                && matches!(t, Token::Word(w) if w.chars().any(char::is_alphabetic))
                        })
                        .count()
                        >= MIN_ANCHORS;
                    if var || anchored && members.len() >= self.config.variable_values {
                        for &t in &members[1..] {
                            absorbed[t] = Some(members[0]);
                        }
                    }
                }
                if absorbed.iter().all(Option::is_none) {
                    continue;
                }
                changed = true;
                let mut next: Vec<(Vec<Token>, Vec<usize>)> = Vec::with_capacity(templates.len());
                let mut slot: HashMap<usize, usize> = HashMap::new();
                for (t, (tokens, shapes)) in std::mem::take(&mut templates).into_iter().enumerate()
                {
                    let head = absorbed[t].unwrap_or(t);
                    match slot.get(&head) {
                        Some(&at) => {
                            let (into, members): &mut (Vec<Token>, Vec<usize>) = &mut next[at];
                            // Variables of one signature keep it; a mixed slot has none.
                            if into[p] != tokens[p] {
                                into[p] = Token::Var(String::new());
                            }
                            members.extend(shapes);
                        }
                        None => {
                            slot.insert(head, next.len());
                            next.push((tokens, shapes));
                        }
                    }
                }
                templates = next;
            }
            if !changed {
                return templates;
            }
        }
    }
}

/// A template's constant words with every run of variables — and the punctuation touching
/// them — dropped: templates with equal skeletons differ only in how many words their
/// variables took.
fn constant_skeleton(template: &[Token]) -> Vec<String> {
    let punct = |t: &Token| matches!(t, Token::Word(w) if w.chars().all(is_edge_punct));
    let mut keep = vec![true; template.len()];
    for (i, t) in template.iter().enumerate() {
        if !t.is_var() {
            continue;
        }
        keep[i] = false;
        let mut j = i;
        while j > 0 && punct(&template[j - 1]) {
            j -= 1;
            keep[j] = false;
        }
        let mut j = i + 1;
        while j < template.len() && punct(&template[j]) {
            keep[j] = false;
            j += 1;
        }
    }
    template
        .iter()
        .zip(keep)
        .filter_map(|(t, k)| match (t, k) {
            (Token::Word(w), true) => Some(w.clone()),
            _ => None,
        })
        .collect()
}

/// A template as text: words joined by spaces, `<*>` for variables.
fn render(template: &[Token]) -> String {
    let mut out = String::new();
    for (i, t) in template.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        match t {
            Token::Word(w) => out.push_str(w),
            Token::Var(_) => out.push_str("<*>"),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(lines: &[&str]) -> Vec<usize> {
        let mut m = TemplateMiner::new(Config::default());
        let ids: Vec<ShapeId> = lines.iter().map(|l| m.push(l)).collect();
        let c = m.clusters();
        ids.iter().map(|&s| c.cluster_of(s).unwrap()).collect()
    }

    #[test]
    fn tokens_are_typed() {
        assert_eq!(
            tokenize("Jun 14 15:16:01 combo sshd(pam_unix)[19939]: check pass; user unknown"),
            [
                Token::Var("word".into()),
                Token::Var("#".into()),
                Token::Var("#:#:#".into()),
                Token::Word("combo".into()),
                Token::Var("process".into()),
                Token::Word("(".into()),
                Token::Word("pam_unix".into()),
                Token::Word(")".into()),
                Token::Word("[".into()),
                Token::Var("#".into()),
                Token::Word("]".into()),
                Token::Word(":".into()),
                Token::Word("check".into()),
                Token::Word("pass".into()),
                Token::Word(";".into()),
                Token::Word("user".into()),
                Token::Word("unknown".into()),
            ]
        );
        assert_eq!(
            render(&tokenize("INFO sent 1.2 KB in (3 sec), error")),
            "<*> sent <*> in ( <*> ) , error"
        );
    }

    #[test]
    fn values_vary_within_a_cluster_and_constants_split_clusters() {
        let mut lines = Vec::new();
        for host in ["alpha", "beta", "gamma", "delta", "epsilon"] {
            lines.push(format!("connected to {host} as admin"));
        }
        for user in ["root", "guest"] {
            lines.push(format!("authentication failure; user={user}"));
            lines.push(format!("authentication failure; user={user}"));
        }
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let c = cluster(&refs);
        assert!(c[..5].iter().all(|&x| x == c[0]), "hosts vary: {c:?}");
        assert_eq!(c[5], c[6]);
        assert_ne!(c[5], c[7], "user=root and user=guest are two events");
        assert_ne!(c[0], c[5]);
    }

    #[test]
    fn variables_of_more_words_merge() {
        let c = cluster(&[
            "chrome.exe close, 0 bytes sent, 0 bytes received, lifetime <1 sec",
            "chrome.exe close, 1190 bytes (1.16 KB) sent, 1671 bytes (1.63 KB) received, lifetime 00:01",
            "chrome.exe close, 403 bytes sent, 2100 bytes (2.05 KB) received, lifetime 00:02",
            "chrome.exe open through proxy",
        ]);
        assert_eq!(c[0], c[1]);
        assert_eq!(c[0], c[2]);
        assert_ne!(c[0], c[3]);
    }

    #[test]
    fn signatures_abbreviate_variables_by_kind() {
        assert_eq!(signature("core.2275"), "a.#");
        assert_eq!(signature("10.251.73.220:50010"), "#.#.#.#:#");
        assert_eq!(signature("R02-M1-N0-C:J12-U11"), "#-#-#-a:#-#");
        assert_eq!(signature("0x1f"), "#");
        assert_eq!(signature("www.example.com"), "name");
        assert_eq!(signature("/var/log/x"), "path");
        assert!(dotted_name("chrome.exe") && dotted_name("proxy.cse.cuhk.edu.hk"));
        assert!(!dotted_name("dfs.DataNode$PacketResponder") && !dotted_name("end."));
        let words = |l: &str| -> Vec<String> {
            tokenize(l)
                .into_iter()
                .map(|t| match t {
                    Token::Word(w) => w,
                    Token::Var(s) => format!("<{s}>"),
                })
                .collect()
        };
        assert_eq!(
            words("acquire lock=233570404, tag=\"View Lock\" overlapAmount:0.5"),
            [
                "acquire",
                "lock",
                "=",
                "<#>",
                ",",
                "tag",
                "=",
                "\"",
                "View",
                "Lock",
                "\"",
                "overlapAmount",
                ":",
                "<#.#>"
            ]
        );
        assert_eq!(
            words("kernel: ok"),
            ["kernel", ":", "ok"],
            "no pid, no process name"
        );
    }

    #[test]
    fn one_word_events_stay_apart_and_mostly_variable_slots_absorb_words() {
        let mut lines = Vec::new();
        for event in [
            "closeQs",
            "cancelAutohide",
            "instantCollapse",
            "suspendAutohide",
        ] {
            lines.push(format!(
                "03-17 16:13:38.811 1702 2395 D PhoneStatusBar: {event}"
            ));
        }
        for dir in ["/p/gb2/a", "/p/gb2/b", "/home/x/1", "pwd"] {
            lines.push(format!(
                "ciod: LOGIN chdir({dir}) failed: No such file or directory"
            ));
        }
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let c = cluster(&refs);
        let events: std::collections::BTreeSet<usize> = c[..4].iter().copied().collect();
        assert_eq!(events.len(), 4, "four one-word events: {c:?}");
        assert!(c[4..].iter().all(|&x| x == c[4]), "`pwd` is a value: {c:?}");
    }

    #[test]
    fn memory_is_bounded_by_forgetting_the_rarest_shapes() {
        let mut m = TemplateMiner::new(Config {
            max_shapes: 100,
            ..Config::default()
        });
        for i in 0..1000 {
            m.push("frequent event happened");
            m.push(&format!("rare event {}", "x".repeat(i % 300)));
        }
        assert!(m.shapes() <= 100, "{} shapes", m.shapes());
        let c = m.clusters();
        assert!(
            c.templates()
                .iter()
                .any(|(t, n)| t == "frequent event happened" && *n == 1000),
            "{:?}",
            &c.templates()[..3]
        );
    }
}
