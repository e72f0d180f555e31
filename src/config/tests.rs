use std::path::Path;

use super::*;

fn parse(text: &str) -> Result<Config, ConfigErrors> {
    Config::parse(text, Path::new("/etc/weir/weir.toml"))
}

fn messages(text: &str) -> Vec<String> {
    parse(text).unwrap_err().0.iter().map(ToString::to_string).collect()
}

#[test]
fn an_empty_file_gives_the_defaults() {
    assert_eq!(parse("").unwrap(), Config::default());
    let c = Config::default();
    assert_eq!(c.output.dir, Path::new("weir-out"));
    assert!(c.stream.midstream);
    assert_eq!(c.central.retention_days, 21);
    assert_eq!(c.stream.depth, ByteSize(0), "files are extracted whole by default");
    assert_eq!(c.stream.inspect_depth, ByteSize(1 << 20));
}

#[test]
fn spec_keys_parse() {
    let c = parse(
        r#"
[output]
dir = "weir-out"

[detect]
rules = ["/etc/weir/rules/emerging-all.rules"]
classification = "/etc/weir/classification.config"

[[detect.feeds]]
name = "urlhaus"
path = "/var/lib/weir/feeds/urlhaus.csv"
format = "urlhaus-csv"
category = "malware"

[sandbox]
enabled = true
api = "cape"
url = "http://127.0.0.1:8000/"
token = "secret"
spool_dir = "/var/lib/weir/sandbox"

[central]
enabled = true
url = "https://cn.example:8443/"
sensor_id = "sensor-1"
ca = "/etc/weir/cn-ca.pem"
cert = "/etc/weir/sensor.pem"
key = "/etc/weir/sensor.key"
spool_dir = "/var/lib/weir/central"
retention_days = 21
"#,
    )
    .unwrap();
    assert_eq!(c.detect.feeds[0].format, FeedFormat::UrlhausCsv);
    assert_eq!(c.sandbox.api, SandboxApi::Cape);
    assert_eq!(c.central.sensor_id.as_deref(), Some("sensor-1"));
}

#[test]
fn unknown_keys_are_rejected_with_their_line() {
    let errs = messages("[stream]\nmidstream = true\nmidstreem = false\n");
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].starts_with("/etc/weir/weir.toml:3: [stream] unknown field `midstreem`"), "{}", errs[0]);
}

#[test]
fn every_error_is_reported_at_once() {
    let errs = messages(
        "[capture]\nsnaplen = \"big\"\nworkerz = 2\n\n[stream]\ndepth = \"12 parsecs\"\n\n[sandbox]\napi = \"joe\"\n\n[nonsense]\nx = 1\n",
    );
    assert_eq!(errs.len(), 5, "{errs:#?}");
    assert!(errs[0].starts_with("/etc/weir/weir.toml:2: [capture]"), "{}", errs[0]);
    assert!(errs[1].starts_with("/etc/weir/weir.toml:3: [capture] unknown field `workerz`"), "{}", errs[1]);
    assert!(errs[2].starts_with("/etc/weir/weir.toml:6: [stream]") && errs[2].contains("unknown size unit"), "{}", errs[2]);
    assert!(errs[3].starts_with("/etc/weir/weir.toml:9: [sandbox]") && errs[3].contains("joe"), "{}", errs[3]);
    assert!(errs[4].starts_with("/etc/weir/weir.toml:11: unknown section [nonsense]"), "{}", errs[4]);
}

#[test]
fn syntax_errors_name_the_line() {
    let errs = messages("[output]\ndir = \"x\"\nfilestore = \n");
    assert!(errs[0].starts_with("/etc/weir/weir.toml:3:"), "{errs:?}");
}

#[test]
fn nested_tables_reject_unknown_keys() {
    let errs = messages("[stream.timeouts.tcp]\nnew = 5\nestablished = 10\nhalf_open = 3\n");
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].contains("half_open"), "{}", errs[0]);
    let errs = messages("[[detect.feeds]]\nname = \"a\"\npath = \"a.csv\"\nformat = \"csv\"\n");
    assert!(errs[0].contains("unknown variant `csv`"), "{errs:?}");
}

#[test]
fn cross_key_rules_are_checked() {
    let errs = messages("[central]\nenabled = true\nurl = \"https://cn:8443/\"\n");
    assert_eq!(errs.len(), 4, "{errs:?}");
    assert!(errs.iter().all(|e| e.contains("[central] enabled without")));
    let errs = messages("[vars]\nhome_net = \"[10.0.0.0/8]\"\n");
    assert!(errs[0].contains("not a group name"), "{errs:?}");
}

#[test]
fn worker_counts_outside_1_to_64_are_errors() {
    let errs = messages("[capture]\nworkers = 0\n");
    assert!(errs[0].contains("give 1 to 64"), "{errs:?}");
    let errs = messages("[capture]\nworkers = 65\n");
    assert!(errs[0].contains("give 1 to 64"), "{errs:?}");
    assert_eq!(parse("[capture]\nworkers = 2\n").unwrap().capture.workers, 2);
}

#[test]
fn sizes_accept_suricata_spellings() {
    assert_eq!(ByteSize::parse("64mb"), Ok(ByteSize(64 << 20)));
    assert_eq!(ByteSize::parse("512KiB"), Ok(ByteSize(512 << 10)));
    assert_eq!(ByteSize::parse("1gb"), Ok(ByteSize(1 << 30)));
    assert_eq!(ByteSize::parse("4096"), Ok(ByteSize(4096)));
    assert!(ByteSize::parse("99999999999999gb").is_err());
    assert!(ByteSize::parse("mb").is_err());
}

#[test]
fn vars_take_strings_or_lists() {
    let c = parse("[vars]\nHOME_NET = [\"10.0.0.0/8\", \"192.168.0.0/16\"]\nHTTP_PORTS = \"[80,8080]\"\n").unwrap();
    assert_eq!(c.vars.0["HOME_NET"].to_rule_syntax(), "[10.0.0.0/8,192.168.0.0/16]");
    assert_eq!(c.vars.0["HTTP_PORTS"].to_rule_syntax(), "[80,8080]");
}

#[test]
fn relative_paths_are_relative_to_the_config_file() {
    let c = parse("[detect]\nrules = [\"local.rules\", \"/abs.rules\"]\n").unwrap();
    assert_eq!(c.detect.rules, vec![Path::new("/etc/weir/local.rules").to_path_buf(), "/abs.rules".into()]);
}

#[test]
fn the_example_config_is_valid_and_states_the_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("weir.example.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let c = Config::parse(&text, &path).unwrap();
    // The example spells out defaults; only the sections it enables differ.
    assert_eq!(c.capture, Config::default().capture);
    assert_eq!(c.stream, Config::default().stream);
    assert_eq!(c.output, Config::default().output);
    assert_eq!(c.app_layer, Config::default().app_layer);
}

#[test]
fn stream_inline_and_host_os_policy_reach_reassembly() {
    let c = parse("[stream]\ninline = true\n\n[stream.host_os_policy]\nold-linux = [\"10.0.0.0/8\"]\nwindows = [\"10.1.0.0/16\"]\n")
        .unwrap();
    let s = crate::build::stream_config(&c);
    assert!(s.inline);
    let policy_of = |ip: &str| s.host_os_policy.lookup(ip.parse().unwrap());
    assert_eq!(policy_of("10.9.9.9"), Some(weir_reassembly::OverlapPolicy::OldLinux));
    assert_eq!(policy_of("10.1.2.3"), Some(weir_reassembly::OverlapPolicy::Windows));
    assert_eq!(policy_of("192.0.2.1"), None);
    assert!(!crate::build::stream_config(&Config::default()).inline);
    let errs = messages("[stream.host_os_policy]\nlinux = [\"10.0.0.0/40\"]\n");
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].contains("host_os_policy: `10.0.0.0/40` is not an address"), "{}", errs[0]);
    let errs = messages("[stream.host_os_policy]\nplan9 = [\"10.0.0.0/8\"]\n");
    assert!(errs[0].contains("plan9"), "{errs:?}");
}

#[test]
fn exception_policies_take_a_master_switch_and_refuse_inline_only_values() {
    let c = Config::default();
    for cap in ExceptionCap::ALL {
        assert_eq!(c.exception_policy.policy(cap), ExceptionPolicyName::Ignore, "{cap:?}");
    }
    let c = parse(
        "[exception_policy]\ndefault = \"bypass\"\nstream_memcap = \"ignore\"\napp_layer_error = \"pass-flow\"\n",
    )
    .unwrap();
    let e = &c.exception_policy;
    assert_eq!(e.policy(ExceptionCap::StreamMemcap), ExceptionPolicyName::Ignore);
    assert_eq!(e.policy(ExceptionCap::FlowMemcap), ExceptionPolicyName::Bypass);
    assert_eq!(e.policy(ExceptionCap::AppLayerError), ExceptionPolicyName::PassFlow);
    assert_eq!(e.policy(ExceptionCap::HttpHeaderMemcap), ExceptionPolicyName::Bypass);
    // The master switch leaves midstream pickup alone unless it is named.
    assert_eq!(e.policy(ExceptionCap::Midstream), ExceptionPolicyName::Ignore);
    let c = parse("[exception_policy]\nmidstream = \"pass-flow\"\ndepth = \"auto\"\n").unwrap();
    assert_eq!(c.exception_policy.policy(ExceptionCap::Midstream), ExceptionPolicyName::PassFlow);
    assert_eq!(c.exception_policy.policy(ExceptionCap::Depth), ExceptionPolicyName::Ignore);

    let errs = messages("[exception_policy]\nstream_memcap = \"drop-flow\"\n");
    assert!(errs.iter().any(|e| e.contains("drop-flow") && e.contains("inline")), "{errs:?}");
    let errs = messages("[exception_policy]\ndefault = \"pass-packet\"\n");
    assert!(errs.iter().any(|e| e.contains("pass-packet")), "{errs:?}");
    let errs = messages("[exception_policy]\nmail_memcap = \"maybe\"\n");
    assert!(errs.iter().any(|e| e.contains("unknown exception policy `maybe`")), "{errs:?}");
    // A packet without a flow has no flow to pass: the master switch's pass-flow leaves the
    // flow table at ignore, and naming it there is an error.
    let c = parse("[exception_policy]\ndefault = \"pass-flow\"\n").unwrap();
    assert_eq!(c.exception_policy.policy(ExceptionCap::FlowTable), ExceptionPolicyName::Ignore);
    let errs = messages("[exception_policy]\nflow_table = \"pass-flow\"\n");
    assert!(errs.iter().any(|e| e.contains("flow_table takes")), "{errs:?}");
    let errs = messages("[exception_policy]\nparser_error = \"bypass\"\n");
    assert!(errs.iter().any(|e| e.contains("parser_error")), "{errs:?}");
}

#[test]
fn mail_message_memcaps_are_per_protocol_and_bounded_below() {
    let c = parse("[app_layer.smtp]\nmessage_memcap = \"1mb\"\n").unwrap();
    assert_eq!(c.app_layer.smtp.message_memcap.0, 1 << 20);
    assert_eq!(c.app_layer.imap.message_memcap.0, 256 << 20);
    let errs = messages("[app_layer.pop3]\nmessage_memcap = 0\n");
    assert!(errs.iter().any(|e| e.contains("[app_layer.pop3] message_memcap must be at least 64kb")), "{errs:?}");
    let errs = messages("[app_layer.http]\nheader_memcap = 10\n");
    assert!(errs.iter().any(|e| e.contains("header_memcap must be at least 1kb")), "{errs:?}");
}
