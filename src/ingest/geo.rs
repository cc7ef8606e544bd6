//! The client's country at ingest: the IP address is looked up in a MaxMind-format database
//! (`GEOIP_DB`) and only the ISO 3166-1 alpha-2 code is kept; the address itself is never stored.
//!
//! Two record layouts are understood: GeoIP2/GeoLite2 (`country.iso_code`) and the flat one of
//! ip-location-db and similar free databases (`country_code`). No database: every country is empty.
//! The whole file is read into memory once at start (a country database is a few MB).

use std::net::IpAddr;
use std::path::Path;

use maxminddb::{Reader, path};

#[derive(Debug, thiserror::Error)]
#[error("GEOIP_DB: cannot open '{path}' as a MaxMind .mmdb database: {source}")]
pub struct GeoError {
    path: String,
    #[source]
    source: maxminddb::MaxMindDbError,
}

pub struct GeoIp {
    reader: Reader<Vec<u8>>,
}

impl std::fmt::Debug for GeoIp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeoIp").field("database_type", &self.reader.metadata().database_type).finish()
    }
}

impl GeoIp {
    /// # Errors
    /// The file is missing or not an MMDB database: the server refuses to start rather than
    /// silently recording no countries.
    pub fn open(path: &Path) -> Result<GeoIp, GeoError> {
        Reader::open_readfile(path)
            .map(|reader| GeoIp { reader })
            .map_err(|source| GeoError { path: path.display().to_string(), source })
    }

    /// The upper-case two-letter country of `ip`, if the database knows it.
    pub fn country(&self, ip: IpAddr) -> Option<String> {
        let found = self.reader.lookup(ip.to_canonical()).ok()?;
        let code: Option<String> = found
            .decode_path(&path!["country", "iso_code"])
            .ok()
            .flatten()
            .or_else(|| found.decode_path(&path!["country_code"]).ok().flatten());
        code.map(|c| c.trim().to_ascii_uppercase())
            .filter(|c| c.len() == 2 && c.bytes().all(|b| b.is_ascii_alphabetic()))
    }
}
