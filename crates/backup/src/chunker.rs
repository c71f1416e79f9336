//! Content-defined chunking of a stream (FastCDC 2020, normalization
//! level 1: the cut points of `fastcdc::v2020::StreamCDC`), over one
//! buffer reused for every file of a backup.
//!
//! `StreamCDC` allocates (and zeroes) a buffer of the largest chunk's size
//! for each stream, and shifts what is left of it after every chunk; a
//! backup of many files spent more time on that than on finding the cut
//! points. Here the buffer holds one and a half largest chunks, is
//! allocated once, and what is left is moved down only when less than a
//! largest chunk fits after it.

use std::io::Read;

use fastcdc::v2020::{cut, select_masks, Normalization};

/// A chunker for one size setting.
pub struct Chunker {
    min: usize,
    avg: usize,
    max: usize,
    masks: (u64, u64),
    buf: Vec<u8>,
}

impl Chunker {
    /// Chunks of `min..=max` bytes, `avg` on average.
    pub fn new(min: usize, avg: usize, max: usize) -> Chunker {
        Chunker { min, avg, max, masks: select_masks(avg, Normalization::Level1), buf: Vec::new() }
    }

    /// Calls `f` with each chunk of `source`, in order.
    pub fn chunks<R: Read>(
        &mut self,
        mut source: R,
        mut f: impl FnMut(&[u8]) -> crate::Result<()>,
    ) -> std::io::Result<crate::Result<()>> {
        let cap = self.max + self.max / 2;
        if self.buf.len() != cap {
            self.buf = vec![0u8; cap];
        }
        let (mut start, mut end, mut eof) = (0usize, 0usize, false);
        loop {
            if !eof && end - start < self.max {
                if cap - start < self.max {
                    self.buf.copy_within(start..end, 0);
                    end -= start;
                    start = 0;
                }
                while !eof && end < cap {
                    match source.read(&mut self.buf[end..]) {
                        Ok(0) => eof = true,
                        Ok(n) => end += n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            if start == end {
                return Ok(Ok(()));
            }
            let (mask_s, mask_l) = self.masks;
            let (_, n) =
                cut(&self.buf[start..end], self.min, self.avg, self.max, mask_s, mask_l, mask_s << 1, mask_l << 1);
            let n = n.max(1).min(end - start);
            if let Err(e) = f(&self.buf[start..start + n]) {
                return Ok(Err(e));
            }
            start += n;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn data(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 32) as u8
            })
            .collect()
    }

    #[test]
    fn cuts_where_streamcdc_cuts() {
        let (min, avg, max) = (4096, 16384, 65536);
        let mut chunker = Chunker::new(min, avg, max);
        for (n, seed) in [(0, 1), (100, 2), (4096, 3), (65_536, 4), (1_000_000, 5), (3_333_333, 6)] {
            let input = data(n, seed);
            let expected: Vec<Vec<u8>> =
                fastcdc::v2020::StreamCDC::new(&input[..], min, avg, max).map(|c| c.unwrap().data).collect();
            let mut got = Vec::new();
            chunker
                .chunks(&input[..], |c| {
                    got.push(c.to_vec());
                    Ok(())
                })
                .unwrap()
                .unwrap();
            assert_eq!(got, expected, "{n} bytes");
        }
    }

    #[test]
    fn short_reads_change_nothing() {
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = buf.len().min(self.0.len()).min(777);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let input = data(500_000, 9);
        let mut a = Vec::new();
        let mut b = Vec::new();
        let mut chunker = Chunker::new(4096, 16384, 65536);
        for (source, out) in [(Box::new(&input[..]) as Box<dyn Read>, &mut a), (Box::new(Trickle(&input)), &mut b)] {
            chunker
                .chunks(source, |c| {
                    out.push(c.len());
                    Ok(())
                })
                .unwrap()
                .unwrap();
        }
        assert_eq!(a, b);
        assert_eq!(a.iter().sum::<usize>(), input.len());
    }
}
