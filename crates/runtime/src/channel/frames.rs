//! gRPC message framing as it streams past: each message is a flag byte and
//! a 4-byte big-endian length, then that many bytes. [`PrefixScan`] reads
//! the lengths from a byte stream cut anywhere, so a message limit can be
//! enforced before the message is buffered.

use tonic::Status;

/// Length of a gRPC message prefix.
const PREFIX: usize = 5;

/// Finds the first message whose declared length exceeds a limit.
#[derive(Debug, Clone)]
pub(crate) struct PrefixScan {
    limit: usize,
    prefix: [u8; PREFIX],
    have: usize,
    /// Bytes of the current message not seen yet.
    remaining: usize,
}

impl PrefixScan {
    pub(crate) fn new(limit: usize) -> PrefixScan {
        PrefixScan {
            limit,
            prefix: [0; PREFIX],
            have: 0,
            remaining: 0,
        }
    }

    /// Reads the next piece of the stream. `Err` carries the declared
    /// length of the first message over the limit.
    pub(crate) fn feed(&mut self, mut data: &[u8]) -> Result<(), usize> {
        while !data.is_empty() {
            if self.remaining > 0 {
                let n = self.remaining.min(data.len());
                self.remaining -= n;
                data = data.get(n..).unwrap_or_default();
                continue;
            }
            let n = (PREFIX - self.have).min(data.len());
            if let (Some(dst), Some(src)) =
                (self.prefix.get_mut(self.have..self.have + n), data.get(..n))
            {
                dst.copy_from_slice(src);
            }
            self.have += n;
            data = data.get(n..).unwrap_or_default();
            if self.have == PREFIX {
                self.have = 0;
                let [_, a, b, c, d] = self.prefix;
                let len = u32::from_be_bytes([a, b, c, d]) as usize;
                if len > self.limit {
                    return Err(len);
                }
                self.remaining = len;
            }
        }
        Ok(())
    }

    /// The status a refused message gets, worded as tonic's own codec does.
    pub(crate) fn refusal(&self, declared: usize, direction: &str) -> Status {
        Status::resource_exhausted(format!(
            "{direction} message length too large: found {declared} bytes, the limit is: {} bytes",
            self.limit
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(len: u32) -> Vec<u8> {
        let mut out = vec![0];
        out.extend_from_slice(&len.to_be_bytes());
        out.extend(std::iter::repeat_n(7u8, len as usize));
        out
    }

    #[test]
    fn passes_messages_within_the_limit_cut_anywhere() {
        let stream: Vec<u8> = [message(3), message(10), message(0), message(10)].concat();
        for cut in 1..stream.len() {
            let mut scan = PrefixScan::new(10);
            for piece in stream.chunks(cut) {
                assert_eq!(scan.feed(piece), Ok(()), "cut {cut}");
            }
        }
    }

    #[test]
    fn refuses_the_first_message_over_the_limit_cut_anywhere() {
        let stream: Vec<u8> = [message(3), message(11)].concat();
        for cut in 1..stream.len() {
            let mut scan = PrefixScan::new(10);
            let refused = stream.chunks(cut).find_map(|piece| scan.feed(piece).err());
            assert_eq!(refused, Some(11), "cut {cut}");
        }
    }

    #[test]
    fn refusal_is_resource_exhausted() {
        let status = PrefixScan::new(10).refusal(11, "decoded");
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert!(status.message().contains("11 bytes"), "{status}");
    }
}
