//! When to compact, decided from per-segment live and dead bytes. No I/O, no locks.

/// What compaction needs to know of one sealed segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SegmentUsage {
    pub(crate) id: u64,
    /// Bytes of frames in the segment (header included).
    pub(crate) data_bytes: u64,
    /// Bytes of records the index points to.
    pub(crate) live_bytes: u64,
}

/// The outcome of a policy check, with its reason (for logs and the report).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Leave the segments alone.
    Skip(String),
    /// Rewrite these segments (all sealed segments: see `decide`).
    Compact { segments: Vec<u64>, reason: String },
}

/// Decides whether to compact. Compaction always takes every sealed segment: then every record a
/// tombstone could shadow is in the set being rewritten, so all tombstones can be dropped without
/// a deleted key coming back (DESIGN.md, "Compaction").
pub(crate) fn decide(sealed: &[SegmentUsage], dead_ratio_min: f64, dead_bytes_min: u64) -> Decision {
    let total: u64 = sealed.iter().map(|s| s.data_bytes).sum();
    let live: u64 = sealed.iter().map(|s| s.live_bytes.min(s.data_bytes)).sum();
    let dead = total - live;
    if sealed.is_empty() || dead == 0 {
        return Decision::Skip("no dead bytes in sealed segments".into());
    }
    if dead < dead_bytes_min {
        return Decision::Skip(format!("{dead} dead bytes, below the minimum of {dead_bytes_min}"));
    }
    let ratio = dead as f64 / total as f64;
    if ratio < dead_ratio_min {
        return Decision::Skip(format!("dead ratio {ratio:.2} below {dead_ratio_min:.2}"));
    }
    Decision::Compact {
        segments: sealed.iter().map(|s| s.id).collect(),
        reason: format!("{dead} of {total} sealed bytes are dead (ratio {ratio:.2})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(id: u64, data: u64, live: u64) -> SegmentUsage {
        SegmentUsage { id, data_bytes: data, live_bytes: live }
    }

    #[test]
    fn nothing_sealed_or_nothing_dead_is_skipped() {
        assert!(matches!(decide(&[], 0.0, 0), Decision::Skip(_)));
        assert!(matches!(decide(&[usage(1, 100, 100)], 0.0, 0), Decision::Skip(_)));
    }

    #[test]
    fn thresholds_are_both_required() {
        let sealed = [usage(1, 1000, 400), usage(2, 1000, 900)];
        // 700 dead of 2000: ratio 0.35
        assert!(matches!(decide(&sealed, 0.5, 0), Decision::Skip(_)));
        assert!(matches!(decide(&sealed, 0.3, 800), Decision::Skip(_)));
        match decide(&sealed, 0.3, 700) {
            Decision::Compact { segments, .. } => assert_eq!(segments, vec![1, 2]),
            other => panic!("expected compaction, got {other:?}"),
        }
    }
}
