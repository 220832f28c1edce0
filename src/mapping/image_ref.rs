//! Image references as Docker understands them (`[domain/]path[:tag][@digest]`)
//! and the lookup keys docker-cri sends to Docker. References are validated
//! here before they reach a Docker URL, so no caller input ends up in a path
//! unchecked.

use std::fmt;

use crate::error::{Error, Result};

const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
const OFFICIAL_PREFIX: &str = "library/";
const MAX_NAME_LEN: usize = 255;

/// A parsed, validated image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// Registry host (with port), `None` for Docker Hub.
    pub domain: Option<String>,
    /// Repository path inside the registry, e.g. `library/busybox`.
    pub path: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl ImageRef {
    pub fn parse(text: &str) -> Result<ImageRef> {
        let bad = |why: &str| Error::invalid(format!("invalid image reference {text:?}: {why}"));
        if text.is_empty() {
            return Err(bad("empty"));
        }
        let (rest, digest) = match text.split_once('@') {
            Some((name, digest)) => {
                validate_digest(digest).map_err(|w| bad(&w))?;
                (name, Some(digest.to_string()))
            }
            None => (text, None),
        };
        // A ':' after the last '/' starts the tag; one before it is a port.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].find(':') {
            Some(i) => {
                let tag = &rest[last_slash + i + 1..];
                validate_tag(tag).map_err(|w| bad(&w))?;
                (&rest[..last_slash + i], Some(tag.to_string()))
            }
            None => (rest, None),
        };
        if name.is_empty() {
            return Err(bad("no repository name"));
        }
        if name.len() > MAX_NAME_LEN {
            return Err(bad("repository name longer than 255 characters"));
        }
        let (domain, path) = match name.split_once('/') {
            Some((first, remainder)) if looks_like_domain(first) => {
                validate_domain(first).map_err(|w| bad(&w))?;
                (Some(first.to_string()), remainder)
            }
            _ => (None, name),
        };
        for component in path.split('/') {
            validate_path_component(component).map_err(|w| bad(&w))?;
        }
        let (domain, path) = match domain.as_deref() {
            None | Some(DEFAULT_DOMAIN) | Some(LEGACY_DEFAULT_DOMAIN) => {
                let path = if path.contains('/') {
                    path.to_string()
                } else {
                    format!("{OFFICIAL_PREFIX}{path}")
                };
                (None, path)
            }
            Some(_) => (domain, path.to_string()),
        };
        Ok(ImageRef {
            domain,
            path,
            tag,
            digest,
        })
    }

    /// The repository in Docker's short ("familiar") form: `busybox`,
    /// `someone/app`, `registry.example:5000/app`.
    pub fn familiar_repository(&self) -> String {
        match &self.domain {
            Some(domain) => format!("{domain}/{}", self.path),
            None => self
                .path
                .strip_prefix(OFFICIAL_PREFIX)
                .unwrap_or(&self.path)
                .to_string(),
        }
    }

    /// The registry host to authenticate against.
    pub fn registry(&self) -> &str {
        self.domain.as_deref().unwrap_or(DEFAULT_DOMAIN)
    }

    /// What Docker's pull wants in `tag`: the digest if there is one, else
    /// the tag, else `latest` (an empty tag would pull every tag).
    pub fn pull_tag(&self) -> String {
        self.digest
            .clone()
            .or_else(|| self.tag.clone())
            .unwrap_or_else(|| "latest".to_string())
    }

    /// Familiar form with `:latest` added when neither tag nor digest is given.
    pub fn normalized(&self) -> String {
        let mut out = self.familiar_repository();
        match (&self.tag, &self.digest) {
            (None, None) => out.push_str(":latest"),
            (tag, digest) => {
                if let Some(tag) = tag {
                    out.push(':');
                    out.push_str(tag);
                }
                if let Some(digest) = digest {
                    out.push('@');
                    out.push_str(digest);
                }
            }
        }
        out
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.normalized())
    }
}

/// What a CRI image field may name when looking an image up: a reference,
/// a full `sha256:` ID, or a (possibly short) hex ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageLookup {
    Reference(ImageRef),
    Id(String),
}

impl ImageLookup {
    pub fn parse(text: &str) -> Result<ImageLookup> {
        if let Some(hex) = text.strip_prefix("sha256:") {
            if hex.len() == 64 && is_lower_hex(hex) {
                return Ok(ImageLookup::Id(text.to_string()));
            }
            return Err(Error::invalid(format!(
                "invalid image ID {text:?}: sha256: must be followed by 64 hex digits"
            )));
        }
        match ImageRef::parse(text) {
            Ok(r) => Ok(ImageLookup::Reference(r)),
            // A short ID like "0123abcd" is also a valid repository name, so
            // only a hex string that failed as a reference lands here.
            Err(e) if is_lower_hex(text) && text.len() <= 64 => {
                let _ = e;
                Ok(ImageLookup::Id(text.to_string()))
            }
            Err(e) => Err(e),
        }
    }

    /// The string to put in Docker's `/images/{name}` path. Docker resolves
    /// references and ID prefixes itself; an untagged name is left untagged so
    /// that Docker still tries it as a short ID when no `:latest` exists.
    pub fn docker_key(&self) -> String {
        match self {
            ImageLookup::Reference(r) if r.tag.is_none() && r.digest.is_none() => {
                r.familiar_repository()
            }
            ImageLookup::Reference(r) => r.normalized(),
            ImageLookup::Id(id) => id.clone(),
        }
    }
}

fn is_lower_hex(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn looks_like_domain(first: &str) -> bool {
    first.contains('.') || first.contains(':') || first == "localhost"
}

fn validate_domain(domain: &str) -> std::result::Result<(), String> {
    let (host, port) = match domain.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (domain, None),
    };
    if let Some(port) = port
        && (!port.bytes().all(|b| b.is_ascii_digit()) || !port.parse::<u16>().is_ok_and(|p| p > 0))
    {
        return Err(format!("bad registry port {port:?} (must be 1..65535)"));
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if host.is_empty() || !host.split('.').all(label_ok) {
        return Err(format!("bad registry host {host:?}"));
    }
    Ok(())
}

/// `[a-z0-9]+` runs joined by `.`, `_`, `__` or any number of `-`.
fn validate_path_component(c: &str) -> std::result::Result<(), String> {
    let why = || format!("bad repository path component {c:?} (lowercase letters, digits, . _ -)");
    let bytes = c.as_bytes();
    if bytes.is_empty() || !is_alnum_lower(bytes[0]) || !is_alnum_lower(bytes[bytes.len() - 1]) {
        return Err(why());
    }
    let mut i = 0;
    while i < bytes.len() {
        if is_alnum_lower(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !is_alnum_lower(bytes[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-');
        if !ok {
            return Err(why());
        }
    }
    Ok(())
}

fn is_alnum_lower(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

fn validate_tag(tag: &str) -> std::result::Result<(), String> {
    let bytes = tag.as_bytes();
    let first_ok = bytes
        .first()
        .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_');
    let rest_ok = bytes
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if !first_ok || !rest_ok || bytes.len() > 128 {
        return Err(format!("bad tag {tag:?}"));
    }
    Ok(())
}

fn validate_digest(digest: &str) -> std::result::Result<(), String> {
    let why = || format!("bad digest {digest:?} (algorithm:hex)");
    let (algo, hex) = digest.split_once(':').ok_or_else(why)?;
    let algo_ok = !algo.is_empty()
        && algo.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'+' | b'.' | b'_' | b'-')
        });
    let hex_ok = hex.len() >= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit());
    if !algo_ok || !hex_ok || (algo == "sha256" && hex.len() != 64) {
        return Err(why());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn normalizes_references() {
        let digest_ref = format!("busybox@{D}");
        let digest_norm = format!("busybox@{D}");
        let cases: Vec<(&str, &str, &str, &str)> = vec![
            // input, normalized, registry, pull tag
            ("busybox", "busybox:latest", "docker.io", "latest"),
            ("busybox:1.36", "busybox:1.36", "docker.io", "1.36"),
            (
                "docker.io/library/busybox",
                "busybox:latest",
                "docker.io",
                "latest",
            ),
            ("index.docker.io/foo/bar:x", "foo/bar:x", "docker.io", "x"),
            (
                "registry.k8s.io/pause:3.10",
                "registry.k8s.io/pause:3.10",
                "registry.k8s.io",
                "3.10",
            ),
            (
                "127.0.0.1:5000/a/b:v1",
                "127.0.0.1:5000/a/b:v1",
                "127.0.0.1:5000",
                "v1",
            ),
            ("localhost/x", "localhost/x:latest", "localhost", "latest"),
            (&digest_ref, &digest_norm, "docker.io", D),
            (
                "a__b-c---d/f_g.h",
                "a__b-c---d/f_g.h:latest",
                "docker.io",
                "latest",
            ),
        ];
        for (input, normalized, registry, pull_tag) in cases {
            let r = ImageRef::parse(input).unwrap();
            assert_eq!(r.normalized(), normalized, "{input}");
            assert_eq!(r.registry(), registry, "{input}");
            assert_eq!(r.pull_tag(), pull_tag, "{input}");
        }
    }

    #[test]
    fn tag_and_digest_together_pull_by_digest() {
        let r = ImageRef::parse(&format!("busybox:1@{D}")).unwrap();
        assert_eq!(r.pull_tag(), D);
        assert_eq!(r.normalized(), format!("busybox:1@{D}"));
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "UPPER",
            "busybox:",
            ":tag",
            "a//b",
            "-a",
            "a-",
            "a...b",
            "busybox@sha256:123",
            "busybox@nodigest",
            "host:port/x",
            "exa mple",
            "busybox:-x",
            "../etc",
            "a/../b",
            "x?y=1",
            "x#y",
            "bad_host_.com/x",
            "localhost:0/x",
            "127.0.0.1:99999/x",
            "registry.example.com:65536/x:v1",
            "registry.example.com:/x",
        ] {
            assert!(ImageRef::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        let long = "a".repeat(256);
        assert!(ImageRef::parse(&long).is_err());
        let long_tag = format!("a:{}", "t".repeat(129));
        assert!(ImageRef::parse(&long_tag).is_err());
    }

    #[test]
    fn lookup_accepts_ids() {
        assert_eq!(ImageLookup::parse(D).unwrap(), ImageLookup::Id(D.into()));
        // A short hex ID is also a valid name; Docker resolves either.
        assert!(matches!(
            ImageLookup::parse("0123abcd").unwrap(),
            ImageLookup::Reference(_)
        ));
        assert_eq!(
            ImageLookup::parse("0123abcd").unwrap().docker_key(),
            "0123abcd"
        );
        assert!(ImageLookup::parse("sha256:xyz").is_err());
        assert!(ImageLookup::parse("Foo").is_err());
    }
}
