//! The EVE `http` object, with Suricata 8's field names.

use serde_json::{Map, Value};
use weir_core::Direction;

use super::tx::{Header, HttpTx};

fn text(b: &[u8]) -> Value {
    Value::String(String::from_utf8_lossy(b).into_owned())
}

fn headers_array(headers: &[Header]) -> Value {
    Value::Array(
        headers
            .iter()
            .map(|h| {
                let mut m = Map::new();
                m.insert("name".into(), text(&h.name));
                m.insert("value".into(), text(&h.value));
                Value::Object(m)
            })
            .collect(),
    )
}

/// The `http` object of a transaction. `with_headers` adds `request_headers` and
/// `response_headers` (Suricata's `dump-all-headers: both`).
pub fn http_object(tx: &HttpTx, with_headers: bool) -> Value {
    let mut m = Map::new();
    if let Some(host) = tx.host_normalized() {
        m.insert("hostname".into(), text(&host));
    }
    if let Some(port) = tx.host_port() {
        m.insert("http_port".into(), port.into());
    }
    if !tx.uri_raw.is_empty() {
        m.insert("url".into(), text(&tx.uri_raw));
    }
    if let Some(ua) = tx.user_agent() {
        m.insert("http_user_agent".into(), text(ua));
    }
    if let Some(ct) = tx.content_type() {
        // Suricata logs the media type without parameters.
        let media = ct.split(|&b| b == b';').next().unwrap_or(ct).trim_ascii();
        m.insert("http_content_type".into(), text(media));
    }
    if let Some(referer) = tx.referer() {
        m.insert("http_refer".into(), text(referer));
    }
    if !tx.method.is_empty() {
        m.insert("http_method".into(), text(&tx.method));
    }
    let protocol = if tx.request_protocol.is_empty() { &tx.response_protocol } else { &tx.request_protocol };
    if !protocol.is_empty() {
        m.insert("protocol".into(), text(protocol));
    }
    if let Some(status) = tx.status_code {
        m.insert("status".into(), status.into());
    }
    if let Some(location) = tx.header(Direction::ToClient, "location") {
        m.insert("redirect".into(), text(location));
    }
    m.insert("length".into(), tx.response_message_len.into());
    if with_headers {
        m.insert("request_headers".into(), headers_array(&tx.request_headers));
        m.insert("response_headers".into(), headers_array(&tx.response_headers));
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_follow_suricata_names() {
        let tx = HttpTx {
            method: b"GET".to_vec(),
            uri_raw: b"/a?b=1".to_vec(),
            request_protocol: b"HTTP/1.1".to_vec(),
            request_headers: vec![
                Header { name: b"Host".to_vec(), value: b"Example.COM:8080".to_vec() },
                Header { name: b"User-Agent".to_vec(), value: b"curl/8".to_vec() },
                Header { name: b"Referer".to_vec(), value: b"http://r/".to_vec() },
            ],
            status_code: Some(302),
            response_headers: vec![
                Header { name: b"Content-Type".to_vec(), value: b"text/html; charset=utf-8".to_vec() },
                Header { name: b"Location".to_vec(), value: b"/next".to_vec() },
            ],
            response_message_len: 12,
            ..Default::default()
        };
        assert_eq!(
            http_object(&tx, false),
            json!({"hostname": "example.com", "http_port": 8080, "url": "/a?b=1", "http_user_agent": "curl/8",
                   "http_content_type": "text/html", "http_refer": "http://r/", "http_method": "GET",
                   "protocol": "HTTP/1.1", "status": 302, "redirect": "/next", "length": 12})
        );
        let with = http_object(&tx, true);
        assert_eq!(with["request_headers"][0], json!({"name": "Host", "value": "Example.COM:8080"}));
        assert_eq!(with["response_headers"].as_array().map(Vec::len), Some(2));
    }
}
