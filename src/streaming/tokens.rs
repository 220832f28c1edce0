//! Single-use, short-lived tokens naming a validated streaming request.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;

use super::StreamRequest;
use crate::error::{Error, Result};

/// kubelet's streaming server keeps a request for a minute.
pub const TOKEN_TTL: Duration = Duration::from_secs(60);
/// At most this many minted tokens wait for their client (kubelet: 1000).
pub const MAX_OUTSTANDING: usize = 1000;
/// 128 bits: guessing one within its minute is hopeless.
const TOKEN_BYTES: usize = 16;

pub struct TokenCache {
    entries: Mutex<HashMap<String, (Instant, StreamRequest)>>,
    ttl: Duration,
    max: usize,
}

impl Default for TokenCache {
    fn default() -> Self {
        TokenCache::new(TOKEN_TTL, MAX_OUTSTANDING)
    }
}

impl TokenCache {
    pub fn new(ttl: Duration, max: usize) -> Self {
        TokenCache {
            entries: Mutex::new(HashMap::new()),
            ttl,
            max,
        }
    }

    /// Stores the request under a fresh token. Expired entries are dropped
    /// first; a cache still full refuses (ResourceExhausted).
    pub fn insert(&self, request: StreamRequest) -> Result<String> {
        let mut raw = [0u8; TOKEN_BYTES];
        getrandom::fill(&mut raw)
            .map_err(|e| Error::internal(format!("no randomness for a token: {e}")))?;
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
        let now = Instant::now();
        let mut entries = self.lock();
        entries.retain(|_, (expires, _)| *expires > now);
        if entries.len() >= self.max {
            return Err(Error::ResourceExhausted(format!(
                "{} streaming requests are already waiting for their clients",
                entries.len()
            )));
        }
        entries.insert(token.clone(), (now + self.ttl, request));
        Ok(token)
    }

    /// Takes the request out: a token works once, and only before expiry.
    pub fn consume(&self, token: &str) -> Option<StreamRequest> {
        let (expires, request) = self.lock().remove(token)?;
        (expires > Instant::now()).then_some(request)
    }

    pub fn outstanding(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, StreamRequest)>> {
        // A panic elsewhere while holding the lock leaves a usable map.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> StreamRequest {
        StreamRequest::PortForward {
            sandbox_id: "s".into(),
            ports: vec![80],
        }
    }

    #[test]
    fn a_token_works_once() {
        let cache = TokenCache::default();
        let token = cache.insert(req()).unwrap();
        assert!(cache.consume(&token).is_some());
        assert!(cache.consume(&token).is_none());
        assert!(cache.consume("made-up").is_none());
    }

    #[test]
    fn tokens_are_long_and_distinct() {
        let cache = TokenCache::default();
        let a = cache.insert(req()).unwrap();
        let b = cache.insert(req()).unwrap();
        assert_ne!(a, b);
        // 16 bytes in unpadded base64url.
        assert_eq!(a.len(), 22);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
    }

    #[test]
    fn an_expired_token_is_refused() {
        let cache = TokenCache::new(Duration::from_millis(20), 10);
        let token = cache.insert(req()).unwrap();
        std::thread::sleep(Duration::from_millis(40));
        assert!(cache.consume(&token).is_none());
    }

    #[test]
    fn the_number_outstanding_is_bounded_and_expiry_frees_room() {
        let cache = TokenCache::new(Duration::from_millis(30), 3);
        for _ in 0..3 {
            cache.insert(req()).unwrap();
        }
        assert!(matches!(
            cache.insert(req()),
            Err(Error::ResourceExhausted(_))
        ));
        std::thread::sleep(Duration::from_millis(50));
        cache.insert(req()).unwrap();
        assert_eq!(cache.outstanding(), 1);
    }
}
