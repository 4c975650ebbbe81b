//! Log line parsers for `auditchain ingest`: each line of an input file becomes one audit event
//! (event type, entity, data fields) or a reported parse error. Parsing is pure and
//! deterministic: the same line (and, for CSV, the same header) always gives the same event,
//! so a sidecar record can be re-checked later.
//!
//! Formats:
//! - `syslog`: BSD syslog (RFC 3164) lines `Mmm dd hh:mm:ss host program[pid]: message`, or
//!   the RFC 3339 timestamp rsyslog writes by default (`2026-11-21T10:00:00.123+00:00 host
//!   program[pid]: message`). Entity = host. sshd messages get typed events (below); other
//!   programs give `<program>.message`.
//! - `loghub-csv`: the structured CSV files of loghub (Zhu et al., ISSRE 2023): a header with
//!   at least `Content` and `EventTemplate`, one event per record. Event type = a known sshd
//!   template, else `<dataset>.<template words>`; entity = the data block id (`blk_…`) when
//!   the line names one, else the `Component` column, else the dataset.
//! - `jsonl`: one JSON object per line with string fields `event_type` and `entity`, and an
//!   optional object `data` (default: the object's other fields).
//!
//! Every event's data carries the original line under `"line"` and the fields parsed out of it
//! (`ip`, `user`, `port`, `pid`, `level`, `component`, `host`, `program`, `log_time`, …).

use std::sync::LazyLock;

use auditchain_primitives::tx::{MAX_ENTITY_ID_BYTES, MAX_EVENT_TYPE_BYTES};
use regex::Regex;
use serde_json::{Map, Value, json};

/// Input line formats.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// BSD syslog / rsyslog lines (e.g. `/var/log/auth.log`).
    Syslog,
    /// loghub's `*_structured.csv` (header line first).
    LoghubCsv,
    /// One JSON object per line.
    Jsonl,
}

/// One parsed event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Event type, `[A-Za-z0-9_.:-]{1,64}`.
    pub event_type: String,
    /// Entity id (host, service, block id), 1–256 bytes.
    pub entity: String,
    /// Data fields, including the original line under `"line"`.
    pub data: Value,
}

/// A stateful parser for one input file (the CSV format needs the file's header first).
#[derive(Debug)]
pub struct Parser {
    format: Format,
    dataset: String,
    header: Option<Vec<String>>,
}

/// What one line turned into.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    /// An event.
    Event(Event),
    /// A header or blank line: nothing to record, nothing lost.
    Skip,
}

impl Parser {
    /// A parser for a file of `format`; `dataset` (e.g. `openssh`, from the file name) names
    /// CSV event types.
    pub fn new(format: Format, dataset: &str) -> Self {
        Parser {
            format,
            dataset: sanitize_type(&dataset.to_ascii_lowercase()),
            header: None,
        }
    }

    /// The dataset name of `path`: its file name up to the first `_` or `.`, lowercased
    /// (`OpenSSH_2k.log_structured.csv` → `openssh`).
    pub fn dataset_of(path: &std::path::Path) -> String {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let stem = name.split(['_', '.']).next().unwrap_or("log");
        let stem = sanitize_type(&stem.to_ascii_lowercase());
        if stem.is_empty() { "log".into() } else { stem }
    }

    /// Parses one line (without its newline). Errors: why the line is not an event of this
    /// format (the caller reports it with the line number).
    pub fn parse(&mut self, line: &str) -> Result<Parsed, String> {
        if line.trim().is_empty() {
            return Ok(Parsed::Skip);
        }
        let ev = match self.format {
            Format::Syslog => parse_syslog(line)?,
            Format::Jsonl => parse_jsonl(line)?,
            Format::LoghubCsv => match &self.header {
                None => {
                    let header = csv_fields(line)?;
                    for need in ["Content", "EventTemplate"] {
                        if !header.iter().any(|h| h == need) {
                            return Err(format!(
                                "CSV header has no `{need}` column (expected a loghub *_structured.csv header)"
                            ));
                        }
                    }
                    self.header = Some(header);
                    return Ok(Parsed::Skip);
                }
                Some(h) => parse_csv(h, &self.dataset, line)?,
            },
        };
        if ev.entity.is_empty() || ev.entity.len() > MAX_ENTITY_ID_BYTES {
            return Err(format!(
                "entity must be 1–{MAX_ENTITY_ID_BYTES} bytes, got {}",
                ev.entity.len()
            ));
        }
        if ev.entity.chars().any(char::is_control) {
            return Err("entity contains control characters".into());
        }
        Ok(Parsed::Event(ev))
    }
}

/// Lowercase `[a-z0-9_.:-]` only; other characters become `_`, runs collapse, cut to 64.
fn sanitize_type(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let c = if c.is_ascii_alphanumeric() || "_.:-".contains(c) {
            c
        } else {
            '_'
        };
        if !(c == '_' && out.ends_with('_')) {
            out.push(c);
        }
    }
    let out = out.trim_matches('_');
    out[..out.len().min(MAX_EVENT_TYPE_BYTES)].to_string()
}

fn parse_jsonl(line: &str) -> Result<Event, String> {
    let v: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let Value::Object(mut o) = v else {
        return Err("not a JSON object".into());
    };
    let mut take = |k: &str| match o.remove(k) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(format!("`{k}` is not a string")),
        None => Err(format!("no `{k}` field")),
    };
    let event_type = take("event_type")?;
    let entity = take("entity")?;
    if sanitize_type(&event_type) != event_type.to_ascii_lowercase() || event_type.is_empty() {
        return Err(format!(
            "event_type {event_type:?} must be 1–{MAX_EVENT_TYPE_BYTES} characters of [A-Za-z0-9_.:-]"
        ));
    }
    let mut data = match o.remove("data") {
        Some(Value::Object(d)) => d,
        Some(_) => return Err("`data` is not an object".into()),
        None => o,
    };
    data.insert("line".into(), Value::String(line.to_string()));
    Ok(Event {
        event_type,
        entity,
        data: Value::Object(data),
    })
}

static SYSLOG: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?P<time>[A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?) (?P<host>\S+) (?P<prog>[^\s\[:]+)(?:\[(?P<pid>\d+)\])?: ?(?P<msg>.*)$",
    )
    .expect("syslog regex")
});

fn parse_syslog(line: &str) -> Result<Event, String> {
    let c = SYSLOG.captures(line).ok_or(
        "not a syslog line (expected `Mmm dd hh:mm:ss host program[pid]: message` or an RFC 3339 timestamp)",
    )?;
    let prog = &c["prog"];
    let msg = &c["msg"];
    let mut data = Map::new();
    data.insert("log_time".into(), json!(&c["time"]));
    if let Some(ms) = log_time_ms(&c["time"]) {
        data.insert("time_ms".into(), json!(ms));
    }
    data.insert("host".into(), json!(&c["host"]));
    data.insert("program".into(), json!(prog));
    if let Some(pid) = c.name("pid").and_then(|p| p.as_str().parse::<u64>().ok()) {
        data.insert("pid".into(), json!(pid));
    }
    let event_type = match (prog == "sshd")
        .then(|| sshd_event(msg, &mut data))
        .flatten()
    {
        Some(t) => t.to_string(),
        None => format!("{}.message", sanitize_type(&prog.to_ascii_lowercase()))
            .chars()
            .take(MAX_EVENT_TYPE_BYTES)
            .collect(),
    };
    data.insert("message".into(), json!(msg));
    data.insert("line".into(), json!(line));
    Ok(Event {
        event_type,
        entity: c["host"].to_string(),
        data: Value::Object(data),
    })
}

/// Days from 1970-01-01 to the civil date `y-m-d` (proleptic Gregorian; H. Hinnant's
/// `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The log's own time in ms, for time-window rules (`/time_ms`): since the Unix epoch for an
/// RFC 3339 timestamp (fraction and offset applied); for an RFC 3164 timestamp, which has no
/// year, as if in 1970 (ms since January 1, 00:00 UTC), so that replays are deterministic.
/// `None` if a field is out of range.
fn log_time_ms(t: &str) -> Option<u64> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let num = |s: &str| s.trim().parse::<i64>().ok();
    let (days, rest) = if t.as_bytes().first().is_some_and(u8::is_ascii_digit) {
        let (date, rest) = t.split_once('T')?;
        let mut p = date.split('-');
        let (y, m, d) = (num(p.next()?)?, num(p.next()?)?, num(p.next()?)?);
        (days_from_civil(y, m, d), rest)
    } else {
        let m = MONTHS.iter().position(|x| t.starts_with(x))? as i64 + 1;
        let d = num(t.get(4..6)?)?;
        (days_from_civil(1970, m, d), t.get(7..)?)
    };
    let (hms, tail) = rest.split_at(8.min(rest.len()));
    let mut p = hms.split(':');
    let (h, mi, s) = (num(p.next()?)?, num(p.next()?)?, num(p.next()?)?);
    if !(0..24).contains(&h) || !(0..60).contains(&mi) || !(0..61).contains(&s) {
        return None;
    }
    let mut ms = ((days * 24 + h) * 60 + mi) * 60_000 + s * 1000;
    let mut tail = tail;
    if let Some(f) = tail.strip_prefix('.') {
        let digits: String = f.chars().take_while(char::is_ascii_digit).collect();
        tail = &f[digits.len()..];
        let frac: String = digits.chars().chain("000".chars()).take(3).collect();
        ms += num(&frac)?;
    }
    if let Some(sign) = tail.chars().next().filter(|c| *c == '+' || *c == '-') {
        let off = tail[1..].replace(':', "");
        let (oh, om) = (num(off.get(0..2)?)?, num(off.get(2..4)?)?);
        let off_ms = (oh * 60 + om) * 60_000;
        ms += if sign == '+' { -off_ms } else { off_ms };
    }
    u64::try_from(ms).ok()
}

/// sshd message templates (OpenSSH 7.x wording, as in loghub's OpenSSH sample): event type and
/// the regex whose named groups become data fields.
static SSHD: LazyLock<Vec<(&'static str, Regex)>> = LazyLock::new(|| {
    [
        ("ssh_auth_failure", r"^Failed (?P<method>\S+) for (?P<invalid>invalid user )?(?P<user>.*?) from (?P<ip>\S+) port (?P<port>\d+)"),
        ("ssh_auth_failure", r"^message repeated (?P<repeated>\d+) times: \[ Failed (?P<method>\S+) for (?P<invalid>invalid user )?(?P<user>.*?) from (?P<ip>\S+) port (?P<port>\d+)"),
        ("ssh_accepted", r"^Accepted (?P<method>\S+) for (?P<user>\S+) from (?P<ip>\S+) port (?P<port>\d+)"),
        ("ssh_invalid_user", r"^Invalid user (?P<user>.*?) from (?P<ip>\S+)$"),
        ("ssh_invalid_user_preauth", r"^input_userauth_request: invalid user (?P<user>.*?) \[preauth\]"),
        ("ssh_disconnect", r"^(?:error: )?Received disconnect from (?P<ip>[^\s:]+)(?: port (?P<port>\d+))?: ?(?P<code>\d+): (?P<reason>.*?)(?: \[preauth\])?$"),
        ("ssh_connection_closed", r"^Connection closed by (?P<ip>\S+)(?: port (?P<port>\d+))?"),
        ("ssh_no_identification", r"^Did not receive identification string from (?P<ip>\S+)"),
        ("ssh_breakin_attempt", r"^reverse mapping checking getaddrinfo for (?P<hostname>\S+) \[(?P<ip>[^\]]+)\] failed - POSSIBLE BREAK-IN ATTEMPT!"),
        ("ssh_pam_auth_failure", r"^pam_unix\(sshd:auth\): authentication failure;.*?rhost=(?P<ip>\S+)(?:\s+user=(?P<user>\S+))?"),
        ("ssh_pam_user_unknown", r"^pam_unix\(sshd:auth\): check pass; user unknown"),
        ("ssh_pam_repeated_failures", r"^PAM (?P<count>\d+) more authentication failures?;.*?rhost=(?P<ip>\S+)(?:\s+user=(?P<user>\S+))?"),
        ("ssh_pam_max_retries", r"^PAM service\(sshd\) ignoring max retries; (?P<count>\d+) > (?P<max>\d+)"),
        ("ssh_too_many_failures", r"^Disconnecting: Too many authentication failures for (?P<user>\S+)"),
        ("ssh_session_opened", r"^pam_unix\(sshd:session\): session opened for user (?P<user>\S+)"),
        ("ssh_session_closed", r"^pam_unix\(sshd:session\): session closed for user (?P<user>\S+)"),
        ("ssh_connection_reset", r"^fatal: (?:Write failed|Read from socket failed): Connection reset by peer"),
    ]
    .into_iter()
    .map(|(t, r)| (t, Regex::new(r).expect("sshd regex")))
    .collect()
});

/// Types an sshd message and adds its fields to `data`; `None` for an unknown template.
fn sshd_event(msg: &str, data: &mut Map<String, Value>) -> Option<&'static str> {
    let (ty, c) = SSHD
        .iter()
        .find_map(|(t, re)| re.captures(msg).map(|c| (*t, c)))?;
    for name in SSHD_FIELDS {
        let Some(m) = c.name(name) else { continue };
        let v = match *name {
            "invalid" => json!(true),
            "port" | "count" | "max" | "repeated" | "code" => match m.as_str().parse::<u64>() {
                Ok(n) => json!(n),
                Err(_) => json!(m.as_str()),
            },
            _ => json!(m.as_str()),
        };
        let key = if *name == "invalid" {
            "invalid_user"
        } else {
            name
        };
        data.insert(key.into(), v);
    }
    Some(ty)
}

const SSHD_FIELDS: &[&str] = &[
    "method", "invalid", "user", "ip", "port", "repeated", "code", "reason", "hostname", "count",
    "max",
];

/// Splits one CSV record (RFC 4180 quoting) that sits on one line.
fn csv_fields(line: &str) -> Result<Vec<String>, String> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(line.as_bytes());
    let rec = r
        .records()
        .next()
        .ok_or("empty CSV record")?
        .map_err(|e| format!("not a CSV record: {e}"))?;
    Ok(rec.iter().map(str::to_string).collect())
}

static BLOCK_ID: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"blk_-?\d+").expect("block regex"));
static IPV4_PORT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?P<ip>\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b)(?::(?P<port>\d+))?")
        .expect("ip regex")
});

fn parse_csv(header: &[String], dataset: &str, line: &str) -> Result<Event, String> {
    let fields = csv_fields(line)?;
    if fields.len() != header.len() {
        return Err(format!(
            "{} CSV fields, the header has {}",
            fields.len(),
            header.len()
        ));
    }
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .map(|i| fields[i].as_str())
    };
    let content = col("Content").unwrap_or_default();
    let template = col("EventTemplate").unwrap_or_default();
    let mut data = Map::new();
    for (h, v) in header.iter().zip(&fields) {
        if matches!(h.as_str(), "Content" | "EventTemplate" | "LineId") {
            continue;
        }
        let key = match h.as_str() {
            "EventId" => "template_id".to_string(),
            "Pid" => "pid".to_string(),
            other => other.to_ascii_lowercase(),
        };
        let value = match (key.as_str(), v.parse::<u64>()) {
            ("pid", Ok(n)) => json!(n),
            _ => json!(v),
        };
        data.insert(key, value);
    }
    if let Some(id) = col("LineId").and_then(|v| v.parse::<u64>().ok()) {
        data.insert("line_id".into(), json!(id));
    }
    let event_type = match sshd_event(content, &mut data) {
        Some(t) => t.to_string(),
        None => {
            if let Some(c) = IPV4_PORT.captures(content) {
                data.insert("ip".into(), json!(&c["ip"]));
                if let Some(p) = c.name("port").and_then(|p| p.as_str().parse::<u64>().ok()) {
                    data.insert("port".into(), json!(p));
                }
            }
            let words: Vec<String> = template
                .split(|c: char| !c.is_ascii_alphabetic())
                .filter(|w| !w.is_empty())
                .map(str::to_ascii_lowercase)
                .collect();
            let slug = if words.is_empty() {
                "message".to_string()
            } else {
                words.join("_")
            };
            sanitize_type(&format!("{dataset}.{slug}"))
        }
    };
    let block = BLOCK_ID.find(content).map(|m| m.as_str().to_string());
    if let Some(b) = &block {
        data.insert("block".into(), json!(b));
    }
    let entity = block
        .or_else(|| col("Component").map(component_name))
        .filter(|e| !e.is_empty())
        .unwrap_or_else(|| dataset.to_string());
    data.insert("message".into(), json!(content));
    data.insert("line".into(), json!(line));
    Ok(Event {
        event_type,
        entity,
        data: Value::Object(data),
    })
}

/// The class part of a component column: `3888:QuorumCnxManager$Listener` →
/// `QuorumCnxManager$Listener`.
fn component_name(c: &str) -> String {
    c.rsplit(':').next().unwrap_or(c).trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(p: &mut Parser, line: &str) -> Event {
        match p.parse(line) {
            Ok(Parsed::Event(e)) => e,
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn sshd_syslog_lines_become_typed_events() {
        let mut p = Parser::new(Format::Syslog, "auth");
        let e = event(
            &mut p,
            "Dec 10 06:55:48 LabSZ sshd[24200]: Failed password for invalid user webmaster from 173.234.31.186 port 38926 ssh2",
        );
        assert_eq!(e.event_type, "ssh_auth_failure");
        assert_eq!(e.entity, "LabSZ");
        assert_eq!(e.data["user"], "webmaster");
        assert_eq!(e.data["ip"], "173.234.31.186");
        assert_eq!(e.data["port"], 38926);
        assert_eq!(e.data["pid"], 24200);
        assert_eq!(e.data["invalid_user"], true);
        assert!(e.data["line"].as_str().unwrap().starts_with("Dec 10"));

        let e = event(
            &mut p,
            "Dec 10 07:07:38 LabSZ sshd[24206]: Invalid user test9 from 52.80.34.196",
        );
        assert_eq!(e.event_type, "ssh_invalid_user");
        assert_eq!(e.data["user"], "test9");
        let e = event(
            &mut p,
            "Dec 10 09:32:20 LabSZ sshd[24680]: Accepted password for fztu from 119.137.62.142 port 49116 ssh2",
        );
        assert_eq!(e.event_type, "ssh_accepted");
        let e = event(
            &mut p,
            "Dec 10 06:55:46 LabSZ sshd[24200]: Received disconnect from 173.234.31.186: 11: Bye Bye [preauth]",
        );
        assert_eq!(e.event_type, "ssh_disconnect");
        assert_eq!(e.data["reason"], "Bye Bye");
        assert_eq!(e.data["code"], 11);
        // an RFC 3339 line (Debian 12 rsyslog) and a program without templates
        let e = event(
            &mut p,
            "2026-11-21T10:00:00.123456+00:00 web1 sudo: alice : TTY=pts/0 ; COMMAND=/bin/ls",
        );
        assert_eq!(e.event_type, "sudo.message");
        assert_eq!(e.entity, "web1");
        assert!(e.data.get("pid").is_none());
        // an sshd message without a template is still an event, typed by program
        let e = event(
            &mut p,
            "Dec 10 06:55:46 LabSZ sshd[1]: Server listening on 0.0.0.0",
        );
        assert_eq!(e.event_type, "sshd.message");
    }

    #[test]
    fn garbage_is_an_error_and_blank_lines_are_skipped() {
        let mut p = Parser::new(Format::Syslog, "x");
        assert!(p.parse("this is not syslog").is_err());
        assert!(p.parse("\u{0}\u{1}binary").is_err());
        assert_eq!(p.parse("   "), Ok(Parsed::Skip));
        let mut j = Parser::new(Format::Jsonl, "x");
        assert!(j.parse("{not json").unwrap_err().contains("not JSON"));
        assert!(j.parse("[1,2]").unwrap_err().contains("object"));
        assert!(
            j.parse(r#"{"entity":"e"}"#)
                .unwrap_err()
                .contains("event_type")
        );
        assert!(
            j.parse(r#"{"event_type":"bad type!","entity":"e"}"#)
                .unwrap_err()
                .contains("event_type")
        );
        assert!(j.parse(r#"{"event_type":"a","entity":""}"#).is_err());
        let e = match j.parse(r#"{"event_type":"login","entity":"web1","user":"bob"}"#) {
            Ok(Parsed::Event(e)) => e,
            o => panic!("{o:?}"),
        };
        assert_eq!(e.data["user"], "bob");
        assert!(e.data.get("event_type").is_none());
    }

    #[test]
    fn loghub_csv_rows_use_header_and_templates() {
        let mut p = Parser::new(Format::LoghubCsv, "hdfs");
        assert_eq!(
            p.parse("LineId,Date,Time,Pid,Level,Component,Content,EventId,EventTemplate"),
            Ok(Parsed::Skip)
        );
        let e = event(
            &mut p,
            "3,081109,204005,35,INFO,dfs.FSNamesystem,BLOCK* NameSystem.addStoredBlock: blockMap updated: 10.251.73.220:50010 is added to blk_7128370237687728475 size 67108864,E5,BLOCK* NameSystem.addStoredBlock: blockMap updated: <*>:<*> is added to blk_<*> size <*>",
        );
        assert_eq!(
            e.event_type,
            "hdfs.block_namesystem_addstoredblock_blockmap_updated_is_added_to_b"
                [..MAX_EVENT_TYPE_BYTES]
        );
        assert_eq!(e.entity, "blk_7128370237687728475");
        assert_eq!(e.data["ip"], "10.251.73.220");
        assert_eq!(e.data["port"], 50010);
        assert_eq!(e.data["level"], "INFO");
        assert_eq!(e.data["line_id"], 3);
        assert!(p.parse("1,2,3").unwrap_err().contains("header has 9"));

        let mut z = Parser::new(Format::LoghubCsv, "zookeeper");
        z.parse("LineId,Date,Time,Level,Node,Component,Id,Content,EventId,EventTemplate")
            .unwrap();
        let e = event(
            &mut z,
            r#"2,2015-07-29,"19:04:12,394",INFO,/10.10.34.11,3888:QuorumCnxManager$Listener,493,Received connection request /10.10.34.11:45307,E40,Received connection request /<*>:<*>"#,
        );
        assert_eq!(e.entity, "QuorumCnxManager$Listener");
        assert_eq!(e.event_type, "zookeeper.received_connection_request");
        assert_eq!(e.data["time"], "19:04:12,394");
    }

    #[test]
    fn log_times_become_ms() {
        // RFC 3164 has no year: ms since January 1 (as in 1970)
        assert_eq!(log_time_ms("Jan  1 00:00:01"), Some(1_000));
        assert_eq!(
            log_time_ms("Dec 10 06:55:46"),
            Some(((343 * 24 + 6) * 60 + 55) * 60_000 + 46_000)
        );
        assert_eq!(log_time_ms("2024-03-01T00:00:00Z"), Some(1_709_251_200_000));
        assert_eq!(
            log_time_ms("2024-03-01T02:00:00.5+02:00"),
            Some(1_709_251_200_500)
        );
        assert_eq!(log_time_ms("Dec 10 25:00:00"), None);

        let mut bad = Parser::new(Format::LoghubCsv, "x");
        assert!(bad.parse("a,b,c").unwrap_err().contains("Content"));
    }

    #[test]
    fn dataset_names_come_from_file_names() {
        use std::path::Path;
        assert_eq!(
            Parser::dataset_of(Path::new("/x/OpenSSH_2k.log_structured.csv")),
            "openssh"
        );
        assert_eq!(Parser::dataset_of(Path::new("auth.log")), "auth");
    }
}
