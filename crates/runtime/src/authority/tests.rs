use super::*;
use tokio::io::AsyncReadExt;

const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = (payload.len() as u32).to_be_bytes();
    let mut f = vec![len[1], len[2], len[3], kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

async fn pass(input: Vec<u8>) -> Vec<u8> {
    let mut fixed = AuthorityFix::new(&input[..]);
    let mut out = Vec::new();
    fixed.read_to_end(&mut out).await.unwrap();
    out
}

/// Decodes the HEADERS frame right after the preface.
fn decode_headers(out: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let frame = &out[PREFACE.len()..];
    assert_eq!(frame[3], TYPE_HEADERS);
    let len = usize::from(frame[0]) << 16 | usize::from(frame[1]) << 8 | usize::from(frame[2]);
    let block = &frame[FRAME_HEADER_LEN..FRAME_HEADER_LEN + len];
    loona_hpack::Decoder::new().decode(block).unwrap()
}

#[tokio::test]
async fn percent_encoded_authority_becomes_localhost() {
    let headers = [
        (b":method".to_vec(), b"POST".to_vec()),
        (b":authority".to_vec(), b"tmp%2Fx%2Fplugin1".to_vec()),
        (b":path".to_vec(), b"/proto.KV/Get".to_vec()),
    ];
    let block = loona_hpack::Encoder::new().encode(headers.iter().map(|(n, v)| (&n[..], &v[..])));
    let mut input = PREFACE.to_vec();
    input.extend(frame(TYPE_HEADERS, FLAG_END_HEADERS, 1, &block));
    input.extend(frame(0x0, FLAG_END_STREAM, 1, b"hello"));
    let out = pass(input).await;
    let got = decode_headers(&out);
    assert_eq!(got[1], (b":authority".to_vec(), b"localhost".to_vec()));
    assert_eq!(got[0].1, b"POST");
    assert!(out.ends_with(&frame(0x0, FLAG_END_STREAM, 1, b"hello")));
}

#[tokio::test]
async fn valid_authority_and_other_frames_pass_unchanged_in_meaning() {
    let headers = [(&b":authority"[..], &b"localhost:1234"[..])];
    let block = loona_hpack::Encoder::new().encode(headers);
    let settings = frame(0x4, 0, 0, &[0, 3, 0, 0, 0, 100]);
    let mut input = PREFACE.to_vec();
    input.extend(&settings);
    input.extend(frame(TYPE_HEADERS, 0, 3, &block[..1]));
    input.extend(frame(TYPE_CONTINUATION, FLAG_END_HEADERS, 3, &block[1..]));
    // A valid authority: the connection passes through byte for byte.
    assert_eq!(pass(input.clone()).await, input);
}

#[tokio::test]
async fn a_valid_first_authority_switches_to_pass_through() {
    let mut encoder = loona_hpack::Encoder::new();
    let first = encoder.encode([(&b":authority"[..], &b"localhost"[..]), (b":path", b"/a")]);
    // Indexed references into the client's table: only valid if h2
    // sees the original first block too.
    let second = encoder.encode([(&b":authority"[..], &b"localhost"[..]), (b":path", b"/a")]);
    let mut input = PREFACE.to_vec();
    input.extend(frame(TYPE_HEADERS, FLAG_END_HEADERS, 1, &first));
    input.extend(frame(0x0, 0, 1, b"body"));
    input.extend(frame(TYPE_HEADERS, FLAG_END_HEADERS, 3, &second));
    assert_eq!(pass(input.clone()).await, input);
}

#[tokio::test]
async fn once_fixing_every_later_block_is_re_encoded() {
    let mut encoder = loona_hpack::Encoder::new();
    let bad = [(&b":authority"[..], &b"tmp%2Fp"[..])];
    let first = encoder.encode(bad);
    let second = encoder.encode(bad);
    let mut input = PREFACE.to_vec();
    input.extend(frame(TYPE_HEADERS, FLAG_END_HEADERS, 1, &first));
    input.extend(frame(TYPE_HEADERS, FLAG_END_HEADERS, 3, &second));
    let out = pass(input).await;
    // Both blocks come out as literals h2 decodes without shared state.
    let mut decoder = loona_hpack::Decoder::new();
    let mut rest = &out[PREFACE.len()..];
    for _ in 0..2 {
        let len = usize::from(rest[0]) << 16 | usize::from(rest[1]) << 8 | usize::from(rest[2]);
        let got = decoder
            .decode(&rest[FRAME_HEADER_LEN..FRAME_HEADER_LEN + len])
            .unwrap();
        assert_eq!(got, vec![(b":authority".to_vec(), b"localhost".to_vec())]);
        rest = &rest[FRAME_HEADER_LEN + len..];
    }
}

#[tokio::test]
async fn garbage_is_an_error_not_a_panic() {
    let mut input = PREFACE.to_vec();
    input.extend(frame(
        TYPE_HEADERS,
        FLAG_END_HEADERS | FLAG_PADDED,
        1,
        &[200, 1, 2],
    ));
    let mut fixed = AuthorityFix::new(&input[..]);
    let mut out = Vec::new();
    assert!(fixed.read_to_end(&mut out).await.is_err());
}

#[test]
fn an_hpack_bomb_is_refused_before_it_expands() {
    // One 4000-byte header added to the dynamic table, then 250,000
    // one-byte references to it: 254 KB that decode to 1 GB.
    let mut block = vec![0x40, 1, b'x'];
    encode_integer(4000, 7, 0, &mut block);
    block.extend(std::iter::repeat_n(b'v', 4000));
    block.extend(std::iter::repeat_n(0xbe, 250_000));
    let mut input = PREFACE.to_vec();
    input.extend(frame(TYPE_HEADERS, FLAG_END_HEADERS, 1, &block));
    // Refused, not expanded: the decoded list is bounded as it is
    // built, so this returns without holding 1 GB.
    assert_eq!(fuzz_authority_filter(&input), None);
    // Just under the limit still passes.
    let mut block = vec![0x40, 1, b'x'];
    encode_integer(4000, 7, 0, &mut block);
    block.extend(std::iter::repeat_n(b'v', 4000));
    block.extend(std::iter::repeat_n(0xbe, 200));
    let mut input = PREFACE.to_vec();
    input.extend(frame(TYPE_HEADERS, FLAG_END_HEADERS, 1, &block));
    // No authority to fix, so it passes through untouched.
    assert_eq!(fuzz_authority_filter(&input).unwrap(), input);
}

#[test]
fn a_continuation_flood_is_refused() {
    // A header block that never ends: one HEADERS frame without
    // END_HEADERS, then empty CONTINUATION frames (CVE-2023-45288).
    let mut input = PREFACE.to_vec();
    input.extend(frame(TYPE_HEADERS, 0, 1, &[0x82]));
    for _ in 0..100_000 {
        input.extend(frame(TYPE_CONTINUATION, 0, 1, &[]));
    }
    assert_eq!(fuzz_authority_filter(&input), None);
}

#[test]
fn a_block_split_into_the_most_frames_allowed_passes() {
    let block = loona_hpack::Encoder::new().encode([
        (&b":authority"[..], &b"tmp%2Fp"[..]),
        (b":path", b"/proto.KV/Get"),
    ]);
    let mut input = PREFACE.to_vec();
    input.extend(frame(TYPE_HEADERS, 0, 1, &block[..1]));
    for _ in 0..MAX_BLOCK_FRAMES - 2 {
        input.extend(frame(TYPE_CONTINUATION, 0, 1, &[]));
    }
    input.extend(frame(TYPE_CONTINUATION, FLAG_END_HEADERS, 1, &block[1..]));
    let out = fuzz_authority_filter(&input).unwrap();
    let got = decode_headers(&out);
    assert_eq!(got[0], (b":authority".to_vec(), b"localhost".to_vec()));
    // One frame more is refused.
    let mut input = PREFACE.to_vec();
    input.extend(frame(TYPE_HEADERS, 0, 1, &block[..1]));
    for _ in 0..MAX_BLOCK_FRAMES - 1 {
        input.extend(frame(TYPE_CONTINUATION, 0, 1, &[]));
    }
    input.extend(frame(TYPE_CONTINUATION, FLAG_END_HEADERS, 1, &block[1..]));
    assert_eq!(fuzz_authority_filter(&input), None);
}

#[test]
fn integers_round_trip_through_the_prefix_encoding() {
    for value in [0usize, 1, 126, 127, 128, 300, 16_384, 1 << 20] {
        let mut out = Vec::new();
        encode_integer(value, 7, 0, &mut out);
        // Decode per RFC 7541 5.1.
        let mut v = usize::from(out[0] & 0x7f);
        if v == 127 {
            let mut m = 0;
            for b in &out[1..] {
                v += usize::from(b & 0x7f) << m;
                m += 7;
            }
        }
        assert_eq!(v, value);
    }
}
