//! The Docker log driver docker-cri gives every app container it creates.

use std::collections::HashMap;

use bollard::models::HostConfigLogConfig;

/// json-file, set explicitly: the daemon's default driver may be one Docker
/// cannot read back (`none`, `syslog`), and the CRI log file is copied from
/// what Docker reads back. Its size bounds what docker-cri can still copy
/// after being down.
pub fn docker_log_config(max_size: &str, max_file: u32) -> HostConfigLogConfig {
    HostConfigLogConfig {
        typ: Some("json-file".to_string()),
        config: Some(HashMap::from([
            ("max-size".to_string(), max_size.to_string()),
            ("max-file".to_string(), max_file.to_string()),
        ])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_file_with_the_configured_buffer() {
        let c = docker_log_config("10m", 5);
        assert_eq!(c.typ.as_deref(), Some("json-file"));
        let opts = c.config.unwrap();
        assert_eq!(opts.len(), 2);
        assert_eq!(opts["max-size"], "10m");
        assert_eq!(opts["max-file"], "5");
    }
}
