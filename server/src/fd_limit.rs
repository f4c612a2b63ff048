//! The descriptor budget: how many clients fit under the process's open-file limit
//! (`RLIMIT_NOFILE`) while the descriptors the store and the runtime need stay free.
//!
//! Redis's rule (`adjustOpenFilesLimit`): the server wants `maxclients` plus a reserve of
//! descriptors; it raises its soft limit towards that if it can, and otherwise lowers
//! `maxclients` to what fits and says so. Here the reserve is [`RESERVED_FDS`] plus one per
//! segment the store has open (the store keeps every live segment open). The listener counts
//! its clients against the fitted `maxclients`, so a full client table still leaves the store
//! the descriptors it needs to open its next segment, replace its manifest and sync its
//! directory: a flood of clients cannot fail a write or poison the store.
//!
//! Windows has no such limit: there `maxclients` is kept as asked.

/// Descriptors kept free for everything but the clients and the store's open segments. About
/// 10 are taken while serving: standard input, output and error, the listener, the runtime's
/// pollers, waker and signal pipe, the store's lock file. About 8 more are opened at once at
/// worst: the store's next segment, a manifest being replaced, the directory to sync, a
/// compaction's output segment and hint file, a backup's files. The rest is room for segments
/// the store adds while the client table is full (one per `Options::segment_bytes` written).
/// The same number as Redis's `CONFIG_MIN_RESERVED_FDS`.
pub const RESERVED_FDS: usize = 32;

/// What fitting `maxclients` to the open-file limit found and did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fit {
    /// The clients asked for.
    pub requested: usize,
    /// The descriptors that needs: `requested` plus the reserve.
    pub wanted: usize,
    /// The soft open-file limit before (`None` where there is no such limit).
    pub limit_before: Option<usize>,
    /// The soft open-file limit now.
    pub limit: Option<usize>,
    /// Why the limit could not be raised to `wanted` (the system's error), if it could not.
    pub raise_error: Option<String>,
    /// The clients the server may take at once: `requested`, or fewer if the limit is lower.
    /// 0 when the limit leaves nothing beyond the reserve.
    pub maxclients: usize,
}

impl Fit {
    /// Redis's log lines for what happened (none if the limit was already enough).
    pub fn messages(&self) -> Vec<String> {
        let (Some(before), Some(limit)) = (self.limit_before, self.limit) else { return Vec::new() };
        if self.maxclients == 0 {
            return vec![format!(
                "Your current 'ulimit -n' of {before} is not enough for the server to start. Please increase your \
                 open file limit to at least {}. Exiting.",
                self.wanted
            )];
        }
        if self.maxclients < self.requested {
            let error = self.raise_error.as_deref().unwrap_or("the hard limit is lower");
            return vec![
                format!(
                    "You requested maxclients of {} requiring at least {} max file descriptors.",
                    self.requested, self.wanted
                ),
                format!("Server can't set maximum open files to {} because of OS error: {error}.", self.wanted),
                format!(
                    "Current maximum open files is {limit}. maxclients has been reduced to {} to compensate for \
                     low ulimit. If you need higher maxclients increase 'ulimit -n'.",
                    self.maxclients
                ),
            ];
        }
        if limit > before {
            return vec![format!(
                "Increased maximum number of open files to {limit} (it was originally set to {before})."
            )];
        }
        Vec::new()
    }
}

/// Fits `requested` clients under the open-file limit, raising the soft limit towards what they
/// need (with `store_fds` descriptors the store holds open) if the hard limit allows, as Redis
/// does at startup. Changes the process's limit: for a server's `main`, once.
pub fn fit_maxclients(requested: usize, store_fds: usize) -> Fit {
    let wanted = requested.saturating_add(RESERVED_FDS).saturating_add(store_fds);
    let Some(before) = os::soft_limit() else {
        return Fit { requested, wanted, limit_before: None, limit: None, raise_error: None, maxclients: requested };
    };
    let (limit, raise_error) = if before < wanted { os::raise_soft_limit(before, wanted) } else { (before, None) };
    let maxclients = requested.min(clients_within(limit, store_fds));
    Fit { requested, wanted, limit_before: Some(before), limit: Some(limit), raise_error, maxclients }
}

/// The clients the current open-file limit leaves room for, at most `requested`, with
/// `store_fds` descriptors held by the store; changes nothing.
pub fn clients_max(requested: usize, store_fds: usize) -> usize {
    os::soft_limit().map_or(requested, |limit| requested.min(clients_within(limit, store_fds)))
}

fn clients_within(limit: usize, store_fds: usize) -> usize {
    limit.saturating_sub(RESERVED_FDS).saturating_sub(store_fds)
}

#[cfg(unix)]
mod os {
    use std::io;

    fn get() -> Option<libc::rlimit> {
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit writes one rlimit through a pointer to a live, writable one.
        let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
        ok.then_some(limit)
    }

    fn set_soft(limit: libc::rlimit, soft: usize) -> io::Result<()> {
        let wanted = libc::rlimit { rlim_cur: soft as libc::rlim_t, rlim_max: limit.rlim_max };
        // SAFETY: setrlimit only reads the rlimit behind the pointer.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) } == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    fn to_usize(value: libc::rlim_t) -> usize {
        usize::try_from(value).unwrap_or(usize::MAX)
    }

    /// The soft limit (`usize::MAX` if unlimited).
    pub(super) fn soft_limit() -> Option<usize> {
        get().map(|limit| to_usize(limit.rlim_cur))
    }

    /// Raises the soft limit as far towards `wanted` as the system lets it: `wanted` itself,
    /// else the hard limit, else (some systems refuse more than a fixed maximum below the hard
    /// limit) in steps of 16 down, as Redis does. Returns the limit now and the first refusal.
    pub(super) fn raise_soft_limit(before: usize, wanted: usize) -> (usize, Option<String>) {
        /// Redis's step when a limit is refused.
        const STEP: usize = 16;
        let Some(limit) = get() else { return (before, None) };
        let error = match set_soft(limit, wanted) {
            Ok(()) => return (wanted, None),
            // The system's text alone, as strerror gives it to Redis.
            Err(e) => e.to_string().split(" (os error").next().unwrap_or_default().to_string(),
        };
        let mut candidate = wanted.min(to_usize(limit.rlim_max));
        while candidate > before {
            if set_soft(limit, candidate).is_ok() {
                return (candidate, Some(error));
            }
            candidate = candidate.saturating_sub(STEP);
        }
        (before, Some(error))
    }
}

#[cfg(not(unix))]
mod os {
    pub(super) fn soft_limit() -> Option<usize> {
        None
    }

    pub(super) fn raise_soft_limit(before: usize, _wanted: usize) -> (usize, Option<String>) {
        (before, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fit(requested: usize, before: usize, limit: usize, maxclients: usize) -> Fit {
        let raise_error = (limit < requested + RESERVED_FDS).then(|| "Operation not permitted".to_string());
        Fit {
            requested,
            wanted: requested + RESERVED_FDS,
            limit_before: Some(before),
            limit: Some(limit),
            raise_error,
            maxclients,
        }
    }

    #[test]
    fn a_reduced_maxclients_is_reported_in_redis_words() {
        let lines = fit(10_000, 64, 64, 32).messages();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0], "You requested maxclients of 10000 requiring at least 10032 max file descriptors.");
        assert_eq!(
            lines[1],
            "Server can't set maximum open files to 10032 because of OS error: Operation not permitted."
        );
        assert!(lines[2].contains("maxclients has been reduced to 32 to compensate for low ulimit"), "{}", lines[2]);
    }

    #[test]
    fn a_raised_limit_is_reported_and_an_enough_one_is_not() {
        assert_eq!(
            fit(100, 64, 132, 100).messages(),
            ["Increased maximum number of open files to 132 (it was originally set to 64)."]
        );
        assert!(fit(100, 1024, 1024, 100).messages().is_empty());
        assert!(fit(100, 16, 16, 0).messages()[0].contains("is not enough for the server to start"));
    }

    #[test]
    fn the_reserve_and_the_store_descriptors_come_off_the_limit() {
        assert_eq!(clients_within(64, 1), 64 - RESERVED_FDS - 1);
        assert_eq!(clients_within(20, 1), 0);
    }
}
