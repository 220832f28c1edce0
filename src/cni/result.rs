//! Plugin results and errors as the CNI spec writes them: `ips` with CIDR
//! addresses (0.3.0 and later, including 1.0.0 and 1.1.0), `ip4`/`ip6`
//! (0.1.0, 0.2.0), and the error object (`code`, `msg`, `details`).

use std::net::IpAddr;

use serde_json::Value;

/// The pod's IPs from an ADD result, IPv4 before IPv6, without prefix
/// lengths. Only addresses on the container's side count: an `ips` entry
/// whose `interface` points at a host-side interface is skipped.
pub fn pod_ips(result: &Value) -> Result<Vec<IpAddr>, String> {
    let mut ips = Vec::new();
    if let Some(list) = result.get("ips") {
        let list = list
            .as_array()
            .ok_or_else(|| "\"ips\" is not a list".to_string())?;
        let interfaces = result.get("interfaces").and_then(Value::as_array);
        for (i, entry) in list.iter().enumerate() {
            let address = entry
                .get("address")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("ips[{i}] has no address"))?;
            let on_host_side = entry
                .get("interface")
                .and_then(Value::as_u64)
                .and_then(|idx| interfaces.and_then(|ifs| ifs.get(idx as usize)))
                .is_some_and(|iface| {
                    iface
                        .get("sandbox")
                        .and_then(Value::as_str)
                        .is_none_or(str::is_empty)
                });
            if !on_host_side {
                ips.push(parse_cidr_ip(address).map_err(|e| format!("ips[{i}]: {e}"))?);
            }
        }
    } else {
        for key in ["ip4", "ip6"] {
            if let Some(ip) = result.get(key).and_then(|v| v.get("ip")) {
                let text = ip
                    .as_str()
                    .ok_or_else(|| format!("{key}.ip is not a string"))?;
                ips.push(parse_cidr_ip(text).map_err(|e| format!("{key}: {e}"))?);
            }
        }
    }
    ips.sort_by_key(|ip| ip.is_ipv6());
    ips.dedup();
    Ok(ips)
}

fn parse_cidr_ip(text: &str) -> Result<IpAddr, String> {
    let (addr, prefix) = text
        .split_once('/')
        .ok_or_else(|| format!("{text:?} is not CIDR notation"))?;
    let ip: IpAddr = addr
        .parse()
        .map_err(|_| format!("{text:?} is not an IP address"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    match prefix.parse::<u8>() {
        Ok(p) if p <= max => Ok(ip),
        _ => Err(format!("{text:?} has a bad prefix length")),
    }
}

/// A failed plugin call in words: the CNI error object when the plugin
/// printed one, then whatever it wrote to stderr.
pub fn describe_failure(stdout: &[u8], stderr: &[u8], status: &str) -> String {
    let mut out = match serde_json::from_slice::<Value>(stdout) {
        Ok(v) if v.get("code").is_some() || v.get("msg").is_some() => {
            let code = v.get("code").and_then(Value::as_u64).unwrap_or(0);
            let msg = v.get("msg").and_then(Value::as_str).unwrap_or("");
            let mut s = format!("CNI error {code}: {msg}");
            if let Some(d) = v
                .get("details")
                .and_then(Value::as_str)
                .filter(|d| !d.is_empty())
            {
                s.push_str(&format!(" ({d})"));
            }
            s
        }
        _ => {
            let text = String::from_utf8_lossy(stdout).trim().to_string();
            if text.is_empty() {
                status.to_string()
            } else {
                format!("{status}: {text}")
            }
        }
    };
    let err = String::from_utf8_lossy(stderr).trim().to_string();
    if !err.is_empty() {
        out.push_str(&format!("; stderr: {err}"));
    }
    out
}
