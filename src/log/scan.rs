//! Walking the frames of a segment's bytes, and the torn-tail rule that tells where its data
//! ends. Pure: no I/O, shared by recovery, `verify`, `dump`, compaction and hint writing.

use crate::format::{
    decode_frame, DecodeError, DecodeErrorKind, FrameSalt, FrameView, FRAME_MAGIC, SEGMENT_HEADER_BYTES,
};

/// How a walk over frames ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ScanEnd {
    /// At `end`, the rest of the input is zero (or there is no rest): a clean end of data.
    Clean { end: usize },
    /// At `at`, the bytes are not a valid frame, or not the frame expected next.
    Bad { at: usize, error: BadFrame },
}

/// Why a walk stopped early.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BadFrame {
    /// The bytes do not decode as a frame.
    Undecodable(DecodeError),
    /// A valid frame whose group number does not follow the previous frame's.
    GroupOutOfOrder { expected: u64, found: u64 },
}

impl BadFrame {
    pub(crate) fn describe(&self) -> String {
        match self {
            BadFrame::Undecodable(e) => e.to_string(),
            BadFrame::GroupOutOfOrder { expected, found } => {
                format!("frame of group {found} where group {expected} or the next was expected")
            }
        }
    }
}

/// Group numbers a log segment's frames must carry: the first frame has the segment's first group,
/// each later frame the same group as its predecessor (no sync between them) or the next one.
#[derive(Clone, Copy, Debug)]
pub(crate) struct GroupRule {
    /// The group of the last accepted frame; `first_group - 1` before any.
    pub(crate) last: u64,
    /// True before the first frame: only `last + 1` is allowed.
    pub(crate) first: bool,
}

impl GroupRule {
    pub(crate) fn new(first_group: u64) -> GroupRule {
        GroupRule { last: first_group.wrapping_sub(1), first: true }
    }

    fn admits(&self, group: u64) -> bool {
        group == self.last.wrapping_add(1) || (!self.first && group == self.last)
    }
}

/// Walks frames from `start`, calling `on_frame(offset, frame)` for each valid one, until the data
/// ends cleanly or a bad frame is met. `bytes` are a segment's whose frame salt is `salt`.
/// `groups` (log segments only) checks group order.
pub(crate) fn scan_frames<'a>(
    bytes: &'a [u8],
    salt: FrameSalt,
    start: usize,
    mut groups: Option<&mut GroupRule>,
    mut on_frame: impl FnMut(usize, &FrameView<'a>),
) -> ScanEnd {
    let mut at = start;
    loop {
        if at >= bytes.len() {
            return ScanEnd::Clean { end: at };
        }
        match decode_frame(&bytes[at..], salt) {
            Ok(frame) => {
                if let Some(rule) = groups.as_deref_mut() {
                    if !rule.admits(frame.group) {
                        let expected = rule.last.wrapping_add(1);
                        let error = BadFrame::GroupOutOfOrder { expected, found: frame.group };
                        return ScanEnd::Bad { at, error };
                    }
                    rule.last = frame.group;
                    rule.first = false;
                }
                on_frame(at, &frame);
                at += frame.len;
            }
            Err(e) if e.kind == DecodeErrorKind::Zero && all_zero(&bytes[at..]) => return ScanEnd::Clean { end: at },
            Err(e) => return ScanEnd::Bad { at, error: BadFrame::Undecodable(e) },
        }
    }
}

/// The first offset at or after `from` holding a valid frame whose group is at least
/// `group_min`, if any. Such a frame after a bad one proves the bad one was durable (see
/// DESIGN.md, "Torn tail or corruption"). Only frames checksummed under the segment's `salt`
/// count, so bytes inside a stored value, however frame-like, are never found.
pub(crate) fn find_frame_from(bytes: &[u8], salt: FrameSalt, from: usize, group_min: u64) -> Option<usize> {
    let magic = FRAME_MAGIC.to_le_bytes();
    let mut at = from;
    while at + magic.len() <= bytes.len() {
        let next = bytes[at..].windows(magic.len()).position(|w| w == magic)?;
        at += next;
        if let Ok(frame) = decode_frame(&bytes[at..], salt) {
            if frame.group >= group_min {
                return Some(at);
            }
        }
        at += 1;
    }
    None
}

/// Where a segment's valid data ends, as walked by [`walk_segment`].
pub(crate) struct Replayed {
    /// Offset just past the last frame kept.
    pub(crate) data_end: u64,
    /// Where a torn tail starts (active segment only).
    pub(crate) torn_at: Option<u64>,
    /// The group rule after the last frame kept (log segments).
    pub(crate) rule: Option<GroupRule>,
}

/// A damaged range met by [`walk_segment`].
pub(crate) struct BadRange {
    /// First damaged byte.
    pub(crate) start: usize,
    /// Where the walk would resume: the next valid frame, or the end of the bytes.
    pub(crate) resume: usize,
    /// What is wrong at `start`.
    pub(crate) reason: String,
}

/// How [`walk_segment`] ended.
pub(crate) enum Walked {
    /// The data ended cleanly, at a torn tail, or (when damage was skipped) at the end of the bytes.
    Done(Replayed),
    /// `on_damage` declined to skip this range.
    Stopped(BadRange),
}

/// Walks a segment's frames after its header, applying the torn-tail rule (DESIGN.md, "Torn tail
/// or corruption"): in the active segment (`active`), a bad frame not followed by a frame of a
/// later sync group is a torn tail and ends the data. Any other bad frame is damage: `on_damage`
/// decides whether to skip it and resume at the next valid frame (true) or stop (false). Shared by
/// recovery and [`crate::inspect`].
pub(crate) fn walk_segment<'a>(
    bytes: &'a [u8],
    salt: FrameSalt,
    mut rule: Option<GroupRule>,
    active: bool,
    mut on_frame: impl FnMut(usize, &FrameView<'a>),
    mut on_damage: impl FnMut(&BadRange) -> bool,
) -> Walked {
    let mut start = SEGMENT_HEADER_BYTES;
    loop {
        let end = scan_frames(bytes, salt, start, rule.as_mut(), &mut on_frame);
        let (at, error) = match end {
            ScanEnd::Clean { end } => return Walked::Done(Replayed { data_end: end as u64, torn_at: None, rule }),
            ScanEnd::Bad { at, error } => (at, error),
        };
        let group_min = rule.map_or(0, |r| r.last.wrapping_add(2));
        let later =
            if active { find_frame_from(bytes, salt, at, group_min) } else { find_frame_from(bytes, salt, at + 1, 0) };
        if active && later.is_none() {
            return Walked::Done(Replayed { data_end: at as u64, torn_at: Some(at as u64), rule });
        }
        let mut reason = error.describe();
        if active {
            reason.push_str("; frames of a later sync group follow, so this damage is in acknowledged data");
        }
        let resume = later.unwrap_or(bytes.len());
        let bad = BadRange { start: at, resume, reason };
        if !on_damage(&bad) {
            return Walked::Stopped(bad);
        }
        if resume >= bytes.len() {
            return Walked::Done(Replayed { data_end: at as u64, torn_at: None, rule });
        }
        let group = decode_frame(&bytes[resume..], salt).map(|f| f.group).unwrap_or(0);
        rule = rule.map(|_| GroupRule::new(group));
        start = resume;
    }
}

fn all_zero(bytes: &[u8]) -> bool {
    bytes.iter().all(|&b| b == 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{encode_record, finish_frame, start_frame, RecordKind};

    const SALT: FrameSalt = FrameSalt(0x0123_4567_89ab_cdef);

    fn frame(group: u64, key: &[u8]) -> Vec<u8> {
        let mut buf = Vec::new();
        let start = start_frame(&mut buf);
        encode_record(&mut buf, RecordKind::Put, group, 0, key, b"value");
        finish_frame(&mut buf, start, group, 1, SALT);
        buf
    }

    #[test]
    fn scan_stops_cleanly_at_zeros() {
        let mut bytes = [frame(1, b"a"), frame(2, b"b")].concat();
        let data_end = bytes.len();
        bytes.resize(data_end + 100, 0);
        let mut seen = Vec::new();
        let end = scan_frames(&bytes, SALT, 0, Some(&mut GroupRule::new(1)), |at, f| seen.push((at, f.group)));
        assert_eq!(end, ScanEnd::Clean { end: data_end });
        assert_eq!(seen.len(), 2);
    }

    #[test]
    fn scan_reports_garbage_and_group_gaps() {
        let a = frame(1, b"a");
        let bytes = [a.clone(), vec![0xAB; 30]].concat();
        assert!(matches!(scan_frames(&bytes, SALT, 0, None, |_, _| {}), ScanEnd::Bad { at, .. } if at == a.len()));
        let bytes = [frame(1, b"a"), frame(3, b"b")].concat();
        let end = scan_frames(&bytes, SALT, 0, Some(&mut GroupRule::new(1)), |_, _| {});
        assert!(matches!(end, ScanEnd::Bad { error: BadFrame::GroupOutOfOrder { expected: 2, found: 3 }, .. }));
    }

    #[test]
    fn later_frames_are_found_past_garbage() {
        let bytes = [frame(1, b"a"), vec![0x11; 7], frame(3, b"c")].concat();
        let first_len = frame(1, b"a").len();
        assert_eq!(find_frame_from(&bytes, SALT, first_len, 3), Some(first_len + 7));
        assert_eq!(find_frame_from(&bytes, SALT, first_len, 4), None);
    }
}
