//! Genesys Cloud regions and API endpoints (see `docs/contract.md`, "Genesys Cloud").
//!
//! `GENESYS_REGION` accepts a Genesys domain (`mypurecloud.ie`) or the AWS region it runs in
//! (`eu-west-1`). `GENESYS_API_BASE` / `GENESYS_LOGIN_BASE` override both, for tests and
//! private endpoints; plain `http://` is allowed only for loopback addresses.

use std::net::IpAddr;

use reqwest::Url;

/// Every Genesys Cloud region: (AWS region, Genesys domain).
pub const REGIONS: &[(&str, &str)] = &[
    ("us-east-1", "mypurecloud.com"),
    ("us-east-2", "use2.us-gov-pure.cloud"),
    ("us-west-2", "usw2.pure.cloud"),
    ("ca-central-1", "cac1.pure.cloud"),
    ("sa-east-1", "sae1.pure.cloud"),
    ("eu-west-1", "mypurecloud.ie"),
    ("eu-west-2", "euw2.pure.cloud"),
    ("eu-central-1", "mypurecloud.de"),
    ("eu-central-2", "euc2.pure.cloud"),
    ("ap-south-1", "aps1.pure.cloud"),
    ("ap-northeast-1", "mypurecloud.jp"),
    ("ap-northeast-2", "apne2.pure.cloud"),
    ("ap-northeast-3", "apne3.pure.cloud"),
    ("ap-southeast-1", "apse1.pure.cloud"),
    ("ap-southeast-2", "mypurecloud.com.au"),
    ("me-central-1", "mec1.pure.cloud"),
    ("mx-central-1", "mxc1.pure.cloud"),
];

/// Where the API and the OAuth login live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// e.g. `https://api.mypurecloud.ie/`
    pub api_base: Url,
    /// e.g. `https://login.mypurecloud.ie/`
    pub login_base: Url,
}

/// A region or base URL that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegionError {
    /// Not a known region.
    #[error("unknown Genesys Cloud region {given:?}; valid: {valid}")]
    Unknown {
        /// What was given.
        given: String,
        /// The valid names, domains and AWS regions.
        valid: String,
    },
    /// Neither a region nor an API base.
    #[error("set GENESYS_REGION (e.g. mypurecloud.ie or eu-west-1) or GENESYS_API_BASE")]
    Missing,
    /// A base URL that is not a usable http(s) URL.
    #[error("{name} {url:?} is not usable: {reason}")]
    BadUrl {
        /// The setting.
        name: &'static str,
        /// The value.
        url: String,
        /// Why.
        reason: String,
    },
}

/// Looks a region up by Genesys domain or AWS region name (case-insensitive); returns the domain.
pub fn domain_for(region: &str) -> Result<&'static str, RegionError> {
    let wanted = region.trim().trim_end_matches('/').to_ascii_lowercase();
    let wanted = wanted
        .strip_prefix("https://")
        .unwrap_or(&wanted)
        .trim_start_matches("api.")
        .trim_start_matches("login.");
    REGIONS
        .iter()
        .find(|(aws, domain)| *aws == wanted || *domain == wanted)
        .map(|(_, domain)| *domain)
        .ok_or_else(|| RegionError::Unknown {
            given: region.to_owned(),
            valid: REGIONS
                .iter()
                .map(|(aws, domain)| format!("{domain} ({aws})"))
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// Resolves the endpoints from a region and the two overrides (a **contract**: `docs/contract.md`).
pub fn resolve(
    region: Option<&str>,
    api_base: Option<&str>,
    login_base: Option<&str>,
) -> Result<Endpoints, RegionError> {
    let (region, api_base, login_base) =
        (nonempty(region), nonempty(api_base), nonempty(login_base));
    let api = match (api_base, region) {
        (Some(url), _) => parse_base("GENESYS_API_BASE", url)?,
        (None, Some(region)) => parse_base(
            "GENESYS_REGION",
            &format!("https://api.{}/", domain_for(region)?),
        )?,
        (None, None) => return Err(RegionError::Missing),
    };
    let login = match (login_base, api_base, region) {
        (Some(url), _, _) => parse_base("GENESYS_LOGIN_BASE", url)?,
        (None, Some(url), _) => {
            let derived = if url.contains("//api.") {
                url.replacen("//api.", "//login.", 1)
            } else {
                url.to_owned()
            };
            parse_base("GENESYS_API_BASE", &derived)?
        }
        (None, None, Some(region)) => parse_base(
            "GENESYS_REGION",
            &format!("https://login.{}/", domain_for(region)?),
        )?,
        (None, None, None) => return Err(RegionError::Missing),
    };
    Ok(Endpoints {
        api_base: api,
        login_base: login,
    })
}

fn nonempty(s: Option<&str>) -> Option<&str> {
    s.map(str::trim).filter(|s| !s.is_empty())
}

fn parse_base(name: &'static str, raw: &str) -> Result<Url, RegionError> {
    let bad = |reason: &str| RegionError::BadUrl {
        name,
        url: redact_url(raw),
        reason: reason.to_owned(),
    };
    let mut url = Url::parse(raw).map_err(|e| bad(&e.to_string()))?;
    let host = url.host_str().ok_or_else(|| bad("no host"))?.to_owned();
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&host) => {}
        "http" => {
            return Err(bad(
                "plain http is allowed only for loopback addresses; use https",
            ));
        }
        other => return Err(bad(&format!("unsupported scheme {other}"))),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("credentials do not belong in the URL"));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    url.set_query(None);
    Ok(url)
}

/// A URL fit for an error message or a log: user name, password and query string removed,
/// whether or not the URL parses.
pub fn redact_url(raw: &str) -> String {
    if let Ok(mut url) = Url::parse(raw) {
        let had_userinfo = !url.username().is_empty() || url.password().is_some();
        let _ = url.set_username("");
        let _ = url.set_password(None);
        let had_query = url.query().is_some();
        url.set_query(None);
        let mut shown = url.to_string();
        if had_query {
            shown.push_str("?…");
        }
        return match (had_userinfo, shown.split_once("://")) {
            (true, Some((scheme, rest))) => format!("{scheme}://***@{rest}"),
            _ => shown,
        };
    }
    // Unparseable: drop anything between the scheme and an `@` of the authority, and the query.
    let (scheme, rest) = raw.split_once("://").unwrap_or(("", raw));
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rfind('@') {
        Some(at) => format!("***@{}", &authority[at + 1..]),
        None => authority.to_owned(),
    };
    let tail = tail.split(['?', '#']).next().unwrap_or_default();
    let prefix = if scheme.is_empty() {
        String::new()
    } else {
        format!("{scheme}://")
    };
    format!("{prefix}{authority}{tail}")
}

fn is_loopback(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.trim_matches(|c| c == '[' || c == ']')
        .parse::<IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Genesys Cloud's own list of regions and API hosts: the `PureCloudRegionHosts` enum of
    /// the official .NET SDK (MyPureCloud/platform-client-sdk-dotnet,
    /// build/src/PureCloudPlatform.Client.V2/Client/PureCloudRegionHosts.cs), copied as is.
    const SDK_REGION_HOSTS: &[(&str, &str)] = &[
        ("us_east_1", "https://api.mypurecloud.com"),
        ("eu_west_1", "https://api.mypurecloud.ie"),
        ("eu_central_1", "https://api.mypurecloud.de"),
        ("ap_northeast_1", "https://api.mypurecloud.jp"),
        ("ap_southeast_2", "https://api.mypurecloud.com.au"),
        ("us_west_2", "https://api.usw2.pure.cloud"),
        ("ca_central_1", "https://api.cac1.pure.cloud"),
        ("ap_northeast_2", "https://api.apne2.pure.cloud"),
        ("eu_west_2", "https://api.euw2.pure.cloud"),
        ("ap_south_1", "https://api.aps1.pure.cloud"),
        ("us_east_2", "https://api.use2.us-gov-pure.cloud"),
        ("sa_east_1", "https://api.sae1.pure.cloud"),
        ("me_central_1", "https://api.mec1.pure.cloud"),
        ("ap_northeast_3", "https://api.apne3.pure.cloud"),
        ("eu_central_2", "https://api.euc2.pure.cloud"),
        ("mx_central_1", "https://api.mxc1.pure.cloud"),
        ("ap_southeast_1", "https://api.apse1.pure.cloud"),
    ];

    #[test]
    fn every_region_of_the_genesys_sdk_resolves_to_its_api_host_and_no_other() {
        for (name, host) in SDK_REGION_HOSTS {
            let aws_region = name.replace('_', "-");
            let by_region = resolve(Some(&aws_region), None, None)
                .unwrap_or_else(|e| panic!("{aws_region}: {e}"));
            assert_eq!(
                by_region.api_base.as_str(),
                format!("{host}/"),
                "{aws_region}"
            );
            let domain = host.trim_start_matches("https://api.");
            let by_domain = resolve(Some(domain), None, None).unwrap();
            assert_eq!(by_domain, by_region, "{domain}");
            assert_eq!(
                by_domain.login_base.as_str(),
                format!("https://login.{domain}/")
            );
        }
        for (aws_region, domain) in REGIONS {
            assert!(
                SDK_REGION_HOSTS
                    .iter()
                    .any(|(n, h)| n.replace('_', "-") == *aws_region
                        && h.trim_start_matches("https://api.") == *domain),
                "{aws_region} {domain} is not in Genesys Cloud's list"
            );
        }
    }

    #[test]
    fn rejected_urls_are_never_echoed_with_their_credentials() {
        for raw in [
            "https://ops:pa55word@api.example.com/",
            "http://ops:pa55word@api.example.com/",
            "ftp://ops:pa55word@api.example.com/",
            "https://ops:pa55word@/",
            "ht tp://ops:pa55word@api example.com/x?token=pa55word",
        ] {
            let err = resolve(None, Some(raw), None).unwrap_err().to_string();
            assert!(!err.contains("pa55word"), "{raw} -> {err}");
            assert!(!err.contains("ops:"), "{raw} -> {err}");
            let err = resolve(Some("mypurecloud.ie"), None, Some(raw))
                .unwrap_err()
                .to_string();
            assert!(!err.contains("pa55word"), "{raw} -> {err}");
        }
        assert_eq!(
            redact_url("https://api.example.com/x?token=pa55word"),
            "https://api.example.com/x?…"
        );
    }

    #[test]
    fn region_names_are_forgiving_about_case_and_prefixes() {
        assert_eq!(domain_for(" EU-WEST-1 ").unwrap(), "mypurecloud.ie");
        assert_eq!(domain_for("api.mypurecloud.de").unwrap(), "mypurecloud.de");
        assert_eq!(
            domain_for("https://api.mypurecloud.jp/").unwrap(),
            "mypurecloud.jp"
        );
    }

    #[test]
    fn an_unknown_region_lists_the_valid_ones() {
        let err = resolve(Some("mars-1"), None, None).unwrap_err().to_string();
        assert!(err.contains("mars-1"), "{err}");
        assert!(err.contains("mypurecloud.ie (eu-west-1)"), "{err}");
        assert!(err.contains("mxc1.pure.cloud (mx-central-1)"), "{err}");
    }

    #[test]
    fn api_base_alone_derives_the_login_base() {
        let e = resolve(None, Some("https://api.example.internal/genesys"), None).unwrap();
        assert_eq!(e.api_base.as_str(), "https://api.example.internal/genesys/");
        assert_eq!(
            e.login_base.as_str(),
            "https://login.example.internal/genesys/"
        );
        let e = resolve(None, Some("http://127.0.0.1:8080"), None).unwrap();
        assert_eq!(e.login_base.as_str(), "http://127.0.0.1:8080/");
    }

    #[test]
    fn overrides_win_over_the_region() {
        let e = resolve(
            Some("eu-west-1"),
            Some("http://127.0.0.1:1"),
            Some("http://[::1]:2"),
        )
        .unwrap();
        assert_eq!(e.api_base.as_str(), "http://127.0.0.1:1/");
        assert_eq!(e.login_base.as_str(), "http://[::1]:2/");
    }

    #[test]
    fn plain_http_is_only_for_loopback() {
        for url in [
            "http://api.mypurecloud.ie",
            "http://10.0.0.1:8080",
            "ftp://127.0.0.1",
        ] {
            assert!(
                matches!(
                    resolve(None, Some(url), None),
                    Err(RegionError::BadUrl { .. })
                ),
                "{url}"
            );
        }
        assert!(resolve(None, Some("http://localhost:9"), None).is_ok());
    }

    #[test]
    fn nothing_configured_is_an_error() {
        assert_eq!(resolve(None, None, None), Err(RegionError::Missing));
        assert_eq!(
            resolve(Some(" "), Some(""), None),
            Err(RegionError::Missing)
        );
    }
}
