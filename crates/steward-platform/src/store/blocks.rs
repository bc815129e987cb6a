//! The encoding of SLI point blocks: the points of one series (from one push or one run),
//! stored together in one row rather than a row each, so that writing a point costs a few
//! bytes in a buffer instead of a B-tree insert.
//!
//! Layout: a version byte (1), then per point its time (milliseconds since the epoch, i64)
//! and value (f64), little-endian, in time order.

/// The only layout so far.
const VERSION: u8 = 1;
/// Bytes per point.
const POINT: usize = 16;

/// `points` (time, value), in time order, as a block.
pub(crate) fn encode(points: impl ExactSizeIterator<Item = (i64, f64)>) -> Vec<u8> {
    let mut data = Vec::with_capacity(1 + points.len() * POINT);
    data.push(VERSION);
    for (time, value) in points {
        data.extend_from_slice(&time.to_le_bytes());
        data.extend_from_slice(&value.to_le_bytes());
    }
    data
}

/// A block's points, or why it cannot be read.
pub(crate) fn decode(data: &[u8]) -> Result<Vec<(i64, f64)>, String> {
    let Some((&version, body)) = data.split_first() else {
        return Err("empty block".into());
    };
    if version != VERSION {
        return Err(format!("block version {version} is not known"));
    }
    if body.len() % POINT != 0 {
        return Err(format!(
            "block of {} bytes is not whole {POINT}-byte points",
            body.len()
        ));
    }
    Ok(body
        .chunks_exact(POINT)
        .map(|point| {
            let (time, value) = point.split_at(8);
            (
                i64::from_le_bytes(time.try_into().expect("8 bytes")),
                f64::from_le_bytes(value.try_into().expect("8 bytes")),
            )
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_round_trip_exactly() {
        let points = vec![
            (-5, f64::MIN_POSITIVE),
            (0, 0.1 + 0.2),
            (1_700_000_000_123, -3.5),
        ];
        let data = encode(points.iter().copied());
        assert_eq!(data.len(), 1 + 3 * POINT);
        assert_eq!(decode(&data).unwrap(), points);
        assert_eq!(decode(&encode(std::iter::empty())).unwrap(), vec![]);
    }

    #[test]
    fn damaged_blocks_are_refused_with_the_reason() {
        assert!(decode(&[]).unwrap_err().contains("empty"));
        assert!(decode(&[9, 0]).unwrap_err().contains("version 9"));
        let mut cut = encode([(1, 1.0)].into_iter());
        cut.pop();
        assert!(decode(&cut).unwrap_err().contains("not whole"));
    }
}
