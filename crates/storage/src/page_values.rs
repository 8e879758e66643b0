//! Single values out of a decompressed Parquet v1 data page, without a
//! column reader.
//!
//! A point read wants one row of a 2K-row page. Parquet's column reader
//! decodes every value before it to skip them, and for a dictionary column
//! first decodes the whole dictionary into values of their own (a thousand
//! device names for one). The encodings tempora writes for floats
//! (BYTE_STREAM_SPLIT), fixed-width PLAIN values and dictionary-encoded
//! byte arrays (RLE_DICTIONARY over a PLAIN dictionary) place value `k` at
//! a position found from the levels and indices alone, which is what this
//! module reads (the layouts are in Parquet's `Encodings.md`):
//!
//! - a v1 data page is its definition levels (a 4-byte little-endian
//!   length, then the RLE/bit-packed hybrid of width 1 for a nullable,
//!   non-nested column; nothing for a NOT NULL one), then its values;
//! - the hybrid is runs, each a ULEB128 header: even, a repeated run of
//!   `header >> 1` copies of one value in `ceil(width / 8)` bytes; odd,
//!   `header >> 1` groups of eight values, `width` bits each, least
//!   significant bit first;
//! - BYTE_STREAM_SPLIT of `n` values of `w` bytes puts byte `j` of value
//!   `k` at `j * n + k`; PLAIN puts value `k` at `k * w`;
//! - RLE_DICTIONARY is one byte of bit width, then the hybrid of the
//!   indices; a PLAIN byte-array dictionary is entries of a 4-byte
//!   little-endian length and the bytes.
//!
//! Anything else (DELTA encodings, v2 pages, booleans) is left to the
//! column reader: every function here answers `None` for what it does not
//! read, and the caller falls back.

/// Where row `row` of a v1 data page of `num_levels` rows is among its
/// stored (non-null) values (None for a NULL row), how many values the
/// page stores, and its value section. A page of a column that is not
/// `nullable` has no levels: every row is a value.
pub(crate) fn locate(
    page: &[u8],
    num_levels: usize,
    nullable: bool,
    row: usize,
) -> Option<(Option<usize>, usize, &[u8])> {
    if row >= num_levels {
        return None;
    }
    if !nullable {
        return Some((Some(row), num_levels, page));
    }
    let length = u32::from_le_bytes(page.get(..4)?.try_into().ok()?) as usize;
    let levels = page.get(4..4 + length)?;
    let values = page.get(4 + length..)?;
    let mut hybrid = Hybrid::new(levels, 1)?;
    let (mut at, mut stored) = (0usize, 0usize);
    let mut position = None;
    while at < num_levels {
        let run = hybrid.next_run()?;
        let count = run.len().min(num_levels - at);
        match run {
            Run::Repeated { value, .. } => {
                let present = value == 1;
                if (at..at + count).contains(&row) {
                    position = Some(present.then_some(stored + (row - at)));
                }
                if present {
                    stored += count;
                }
            }
            Run::Packed { .. } => {
                for index in 0..count {
                    let present = hybrid.packed(&run, index)? == 1;
                    if at + index == row {
                        position = Some(present.then_some(stored));
                    }
                    stored += usize::from(present);
                }
            }
        }
        at += count;
    }
    Some((position?, stored, values))
}

/// Value `index` of `count` values of `width` bytes, BYTE_STREAM_SPLIT.
pub(crate) fn byte_stream_split<const W: usize>(
    values: &[u8],
    count: usize,
    index: usize,
) -> Option<[u8; W]> {
    if index >= count || values.len() < count.checked_mul(W)? {
        return None;
    }
    let mut out = [0u8; W];
    for (byte, slot) in out.iter_mut().enumerate() {
        *slot = values[byte * count + index];
    }
    Some(out)
}

/// Value `index` of PLAIN values of `W` bytes each.
pub(crate) fn plain_fixed<const W: usize>(values: &[u8], index: usize) -> Option<[u8; W]> {
    let start = index.checked_mul(W)?;
    values.get(start..start + W)?.try_into().ok()
}

/// Entry `index` of PLAIN byte arrays (a dictionary page, or a data page
/// of byte arrays written without a dictionary).
pub(crate) fn plain_byte_array(values: &[u8], index: usize) -> Option<&[u8]> {
    let mut at = 0usize;
    for _ in 0..index {
        let length = u32::from_le_bytes(values.get(at..at + 4)?.try_into().ok()?) as usize;
        at = at.checked_add(4 + length)?;
    }
    let length = u32::from_le_bytes(values.get(at..at + 4)?.try_into().ok()?) as usize;
    values.get(at + 4..at + 4 + length)
}

/// Dictionary index `index` of an RLE_DICTIONARY value section.
pub(crate) fn dictionary_index(values: &[u8], index: usize) -> Option<usize> {
    let (&width, indices) = values.split_first()?;
    if width > 32 {
        return None;
    }
    if width == 0 {
        return Some(0);
    }
    let mut hybrid = Hybrid::new(indices, width)?;
    let mut at = 0usize;
    loop {
        let run = hybrid.next_run()?;
        let count = run.len();
        if index < at + count {
            return match run {
                Run::Repeated { value, .. } => usize::try_from(value).ok(),
                Run::Packed { .. } => usize::try_from(hybrid.packed(&run, index - at)?).ok(),
            };
        }
        at += count;
    }
}

/// One run of the RLE/bit-packed hybrid.
enum Run {
    Repeated {
        value: u64,
        count: usize,
    },
    /// `count` values packed from byte `start` of the data.
    Packed {
        start: usize,
        count: usize,
    },
}

impl Run {
    fn len(&self) -> usize {
        match self {
            Run::Repeated { count, .. } | Run::Packed { count, .. } => *count,
        }
    }
}

/// A reader of the runs of the RLE/bit-packed hybrid of `width`-bit values.
struct Hybrid<'a> {
    data: &'a [u8],
    at: usize,
    width: u8,
}

impl<'a> Hybrid<'a> {
    fn new(data: &'a [u8], width: u8) -> Option<Self> {
        (1..=32)
            .contains(&width)
            .then_some(Hybrid { data, at: 0, width })
    }

    fn next_run(&mut self) -> Option<Run> {
        let header = self.uleb128()?;
        let count = usize::try_from(header >> 1).ok()?;
        if header & 1 == 0 {
            let bytes = usize::from(self.width).div_ceil(8);
            let mut value = 0u64;
            for (shift, byte) in self.data.get(self.at..self.at + bytes)?.iter().enumerate() {
                value |= u64::from(*byte) << (8 * shift);
            }
            self.at += bytes;
            // A run of nothing would never end a search.
            (count > 0).then_some(Run::Repeated { value, count })
        } else {
            let values = count.checked_mul(8)?;
            let bytes = count.checked_mul(usize::from(self.width))?;
            let start = self.at;
            self.at = start.checked_add(bytes)?;
            (self.at <= self.data.len() && values > 0).then_some(Run::Packed {
                start,
                count: values,
            })
        }
    }

    /// Value `index` of a packed run.
    fn packed(&self, run: &Run, index: usize) -> Option<u64> {
        let Run::Packed { start, count } = run else {
            return None;
        };
        if index >= *count {
            return None;
        }
        let width = usize::from(self.width);
        let first_bit = index * width;
        let mut value = 0u64;
        for bit in 0..width {
            let at = first_bit + bit;
            let byte = *self.data.get(start + at / 8)?;
            value |= u64::from((byte >> (at % 8)) & 1) << bit;
        }
        Some(value)
    }

    fn uleb128(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.data.get(self.at)?;
            self.at += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        // Pages come from checksummed files, but a reader of bytes must
        // still answer None, not panic, for any of them.
        #[test]
        fn any_bytes_are_read_or_refused(
            bytes in proptest::collection::vec(any::<u8>(), 0..96),
            rows in 0usize..5000,
            row in 0usize..5000,
        ) {
            let _ = locate(&bytes, rows, true, row);
            let _ = dictionary_index(&bytes, row);
            let _ = plain_byte_array(&bytes, row % 16);
            let _ = byte_stream_split::<8>(&bytes, rows, row);
        }
    }

    /// The hybrid of `values` (each < 2^width) as bit-packed groups of 8.
    fn packed(values: &[u64], width: u8) -> Vec<u8> {
        let groups = values.len().div_ceil(8);
        let mut out = vec![((groups as u8) << 1) | 1];
        let mut bits = vec![0u8; groups * width as usize];
        for (index, value) in values.iter().enumerate() {
            for bit in 0..width as usize {
                if value >> bit & 1 == 1 {
                    let at = index * width as usize + bit;
                    bits[at / 8] |= 1 << (at % 8);
                }
            }
        }
        out.extend(bits);
        out
    }

    fn with_length(levels: Vec<u8>, values: &[u8]) -> Vec<u8> {
        let mut page = (levels.len() as u32).to_le_bytes().to_vec();
        page.extend(levels);
        page.extend_from_slice(values);
        page
    }

    #[test]
    fn levels_say_where_a_row_is_stored() {
        // Levels 1,0,1,1,0,1,1,1 bit-packed, then a repeated run of three 1s.
        let mut levels = packed(&[1, 0, 1, 1, 0, 1, 1, 1], 1);
        levels.extend([3 << 1, 1]);
        let page = with_length(levels, b"values");
        let located: Vec<_> = (0..11)
            .map(|row| locate(&page, 11, true, row).map(|(p, n, v)| (p, n, v.len())))
            .collect();
        let positions = [
            Some(0),
            None,
            Some(1),
            Some(2),
            None,
            Some(3),
            Some(4),
            Some(5),
            Some(6),
            Some(7),
            Some(8),
        ];
        assert_eq!(
            located,
            positions.map(|p| Some((p, 9, 6))).to_vec(),
            "nine values among eleven rows"
        );
        assert_eq!(locate(&page, 11, true, 11), None);
        assert_eq!(locate(&page, 12, true, 3), None, "levels end early");
        // The last packed group is padded past the page's rows.
        let page = with_length(packed(&[1, 0, 1, 1, 0], 1), b"v");
        assert_eq!(locate(&page, 5, true, 3), Some((Some(2), 3, &b"v"[..])));
        assert_eq!(locate(b"abc", 3, false, 2), Some((Some(2), 3, &b"abc"[..])));
        assert_eq!(locate(&[9, 0, 0, 0, 1], 1, true, 0), None, "truncated");
    }

    #[test]
    fn values_are_found_by_their_position() {
        let values: Vec<f64> = vec![1.5, -2.25, 1e300];
        let mut split = vec![0u8; 24];
        for (k, v) in values.iter().enumerate() {
            for (j, byte) in v.to_le_bytes().iter().enumerate() {
                split[j * 3 + k] = *byte;
            }
        }
        for (k, v) in values.iter().enumerate() {
            assert_eq!(
                byte_stream_split::<8>(&split, 3, k).map(f64::from_le_bytes),
                Some(*v)
            );
        }
        assert_eq!(byte_stream_split::<8>(&split, 3, 3), None);
        assert_eq!(byte_stream_split::<8>(&split, 4, 0), None);
        let plain: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(
            plain_fixed::<8>(&plain, 2).map(f64::from_le_bytes),
            Some(1e300)
        );
        assert_eq!(plain_fixed::<8>(&plain, 3), None);
        let mut arrays = Vec::new();
        for text in ["", "device_0001", "x"] {
            arrays.extend((text.len() as u32).to_le_bytes());
            arrays.extend(text.as_bytes());
        }
        assert_eq!(plain_byte_array(&arrays, 0), Some(&b""[..]));
        assert_eq!(plain_byte_array(&arrays, 1), Some(&b"device_0001"[..]));
        assert_eq!(plain_byte_array(&arrays, 2), Some(&b"x"[..]));
        assert_eq!(plain_byte_array(&arrays, 3), None);
    }

    #[test]
    fn dictionary_indices_in_both_kinds_of_run() {
        // Width 10: a repeated run of 5 copies of 700, then packed 0..16.
        let mut section = vec![10u8, 5 << 1, (700 & 0xff) as u8, (700 >> 8) as u8];
        let packed_values: Vec<u64> = (0..16).map(|v| v * 60).collect();
        section.extend(packed(&packed_values, 10));
        for index in 0..5 {
            assert_eq!(dictionary_index(&section, index), Some(700));
        }
        for (offset, value) in packed_values.iter().enumerate() {
            assert_eq!(
                dictionary_index(&section, 5 + offset),
                Some(*value as usize)
            );
        }
        assert_eq!(dictionary_index(&section, 21), None);
        assert_eq!(dictionary_index(&[0], 7), Some(0), "a dictionary of one");
        assert_eq!(dictionary_index(&[10, 0], 0), None, "a run of nothing");
        assert_eq!(dictionary_index(&[40, 2], 0), None, "too wide");
    }
}
