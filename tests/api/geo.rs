//! Country at ingest: a pageview keeps the country of its client IP from the `GEOIP_DB` database
//! (both record layouts), never the IP; the breakdown by country reads it back.

use std::net::Ipv4Addr;

use crate::api_client::{ApiClient, unique_email};
use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(pageviews_keep_the_country_of_the_client_ip);

/// A one-network IPv4 MaxMind DB (format 2.0, 24-bit records) mapping `net/prefix` to `record`,
/// the MMDB encoding of one map. Enough of the format for a test, written by hand.
fn mmdb(net: Ipv4Addr, prefix: u32, record: &[u8]) -> Vec<u8> {
    let bits = u32::from(net);
    let node_count = prefix;
    let data_pointer = node_count + 16;
    let mut out = Vec::new();
    for depth in 0..prefix {
        let bit = (bits >> (31 - depth)) & 1;
        let next = if depth + 1 == prefix { data_pointer } else { depth + 1 };
        let (left, right) = if bit == 0 { (next, node_count) } else { (node_count, next) };
        out.extend_from_slice(&left.to_be_bytes()[1..]);
        out.extend_from_slice(&right.to_be_bytes()[1..]);
    }
    out.extend_from_slice(&[0; 16]);
    out.extend_from_slice(record);
    out.extend_from_slice(b"\xAB\xCD\xEFMaxMind.com");
    let mut meta = vec![0xE9];
    let uint16 = |v: u16| [0xA2, (v >> 8) as u8, v as u8];
    meta.extend(string("binary_format_major_version"));
    meta.extend(uint16(2));
    meta.extend(string("binary_format_minor_version"));
    meta.extend(uint16(0));
    meta.extend(string("build_epoch"));
    meta.extend([0x08, 0x02]);
    meta.extend(1_700_000_000u64.to_be_bytes());
    meta.extend(string("database_type"));
    meta.extend(string("Test-Country"));
    meta.extend(string("description"));
    meta.push(0xE0);
    meta.extend(string("ip_version"));
    meta.extend(uint16(4));
    meta.extend(string("languages"));
    meta.extend([0x00, 0x04]);
    meta.extend(string("node_count"));
    meta.push(0xC4);
    meta.extend(node_count.to_be_bytes());
    meta.extend(string("record_size"));
    meta.extend(uint16(24));
    out.extend(meta);
    out
}

/// An MMDB UTF-8 string shorter than 29 bytes.
fn string(s: &str) -> Vec<u8> {
    assert!(s.len() < 29);
    let mut out = vec![0x40 | s.len() as u8];
    out.extend_from_slice(s.as_bytes());
    out
}

fn map1(key: &str, value: Vec<u8>) -> Vec<u8> {
    let mut out = vec![0xE1];
    out.extend(string(key));
    out.extend(value);
    out
}

async fn pageviews_keep_the_country_of_the_client_ip(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let layouts = [
        ("geoip2.mmdb", map1("country", map1("iso_code", string("GB")))),
        ("flat.mmdb", map1("country_code", string("gb"))),
    ];
    for (file, record) in layouts {
        let path = dir.path().join(file);
        std::fs::write(&path, mmdb(Ipv4Addr::new(81, 2, 69, 0), 24, &record)).unwrap();
        let app = spawn_app_with(backend, |config| {
            config.ingest.geoip_db = Some(path.clone());
            config.http.trusted_proxies = squirrel::config::TrustedProxies::parse("127.0.0.1").unwrap();
        })
        .await;
        let alice = ApiClient::signup(&app, &unique_email()).await;
        let site = alice.create_site("Blog").await;
        let sid = site["identifier"].as_str().unwrap();
        for xff in ["81.2.69.160", "8.8.8.8"] {
            let response = app
                .http
                .get(format!("{}/pv?sid={sid}&h=https://e.com&p=/", app.base))
                .header("user-agent", MAC_CHROME)
                .header("x-forwarded-for", xff)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
        }
        let stored = app.store.site_by_identifier(sid).await.unwrap().unwrap();
        let countries: Vec<String> = app.pageviews(&stored).await.into_iter().map(|p| p.row.country).collect();
        assert_eq!(countries, ["GB", ""], "{file}");
        let id = site["id"].as_str().unwrap();
        let answer = alice.get(&format!("/api/v1/stats?site_id={id}&breakdown=countries")).await;
        assert_eq!(
            answer.body["breakdown"]["results"],
            serde_json::json!([{"value": "GB", "pageviews": 1, "visitors": 1}])
        );
    }

    let db = TestDb::create(backend).await;
    let missing = squirrel::config::Config {
        ingest: squirrel::config::IngestConfig {
            geoip_db: Some(dir.path().join("nope.mmdb")),
            ..squirrel::config::Config::for_tests("sqlite://unused.db").ingest
        },
        ..squirrel::config::Config::for_tests(&db.url)
    };
    let err = squirrel::app::App::build(missing).await.err().expect("refuses to start");
    assert!(format!("{err:#}").contains("GEOIP_DB"), "{err:#}");
}
