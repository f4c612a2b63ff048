//! A durable session cache for a desktop app: sessions are typed values that expire, the cache
//! survives restarts, a settings screen lists active sessions, and a nightly job backs it up.
//!
//! Run with `cargo run --example session_cache`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ferrocask::{Options, Store, SyncMode, TypedStore};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Session {
    user: String,
    device: String,
    scopes: Vec<String>,
}

/// Sessions keyed by token, each valid for a while.
struct SessionCache {
    sessions: TypedStore<String, Session>,
}

impl SessionCache {
    fn open(dir: &Path) -> ferrocask::Result<SessionCache> {
        // Losing the last fraction of a second of logins on power loss is acceptable for a
        // cache; `logout` syncs explicitly because a revoked session must stay revoked.
        let options = Options { sync: SyncMode::Every(Duration::from_millis(500)), ..Options::default() };
        Ok(SessionCache { sessions: TypedStore::open_with(dir, options)? })
    }

    fn login(&self, token: &str, session: &Session, ttl: Duration) -> ferrocask::Result<()> {
        self.sessions.put_with_ttl(&token.to_string(), session, ttl)
    }

    fn lookup(&self, token: &str) -> ferrocask::Result<Option<Session>> {
        self.sessions.get(&token.to_string())
    }

    fn logout(&self, token: &str) -> ferrocask::Result<()> {
        self.sessions.delete(&token.to_string())?;
        self.sessions.store().sync()
    }

    /// Every live session, for the "signed-in devices" screen.
    fn active(&self) -> ferrocask::Result<Vec<(String, Session)>> {
        let mut all = self.sessions.iter().collect::<ferrocask::Result<Vec<_>>>()?;
        all.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(all)
    }

    fn store(&self) -> &Arc<Store> {
        self.sessions.store()
    }
}

fn session(user: &str, device: &str) -> Session {
    Session { user: user.into(), device: device.into(), scopes: vec!["read".into(), "sync".into()] }
}

fn main() -> ferrocask::Result<()> {
    let root = std::env::temp_dir().join(format!("ferrocask-session-cache-{}", std::process::id()));
    let data = root.join("sessions");
    {
        let cache = SessionCache::open(&data)?;
        cache.login("tok-laptop", &session("ada", "laptop"), Duration::from_secs(3600))?;
        cache.login("tok-phone", &session("ada", "phone"), Duration::from_secs(3600))?;
        cache.login("tok-otp", &session("grace", "browser"), Duration::from_millis(1))?;
        cache.logout("tok-phone")?;
        println!("ada's laptop: {:?}", cache.lookup("tok-laptop")?.map(|s| s.device));
        println!("after logout, phone: {:?}", cache.lookup("tok-phone")?);
    } // dropping the store syncs it

    // Restart: the cache comes back. The one-millisecond session has expired by now (the clock
    // is the system clock; it only moves forward).
    let cache = SessionCache::open(&data)?;
    for (token, s) in cache.active()? {
        println!("active: {token} -> {} on {}", s.user, s.device);
    }

    // Nightly backup, while the app keeps running.
    let backup_dir = root.join("backup-nightly");
    let report = cache.store().backup_to(&backup_dir)?;
    println!("backup: {} segments, {} bytes in {:?}", report.segments, report.bytes, report.duration);
    let restored: TypedStore<String, Session> = TypedStore::open(&backup_dir)?;
    println!("backup holds {} live session(s)", restored.len());

    drop(restored);
    drop(cache);
    let _ = std::fs::remove_dir_all(&root);
    Ok(())
}
